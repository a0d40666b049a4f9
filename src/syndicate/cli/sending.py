"""What `syndicate digest send` says: the batches it queued, then the send's summary and status.

On SQLite the send runs in the command itself; on PostgreSQL it is queued as batches for the
workers, and the command watches their progress from the ledger until every batch has ended
(or returns at once with `--no-wait`). Either way the summary goes to standard output, what
went wrong to standard error, and the exit status tells the truth: 1 when anyone failed, a
batch failed, or the send stopped before everyone was reached.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from syndicate.queue import QueuedSend, SendOutcome

NAMED_BATCHES = 10  # failed batches named one by one; more are counted


def say_queued(queued: QueuedSend, *, waiting: bool) -> None:
    """Say how many batches the send is queued as (a result with --no-wait, else a note)."""
    joined = queued.batches - queued.deferred
    click.echo(
        f"{queued.edition_id}: {queued.batches} batches queued for the workers"
        + (f" ({joined} of them queued already)" if joined else ""),
        err=waiting,
    )
    if queued.batches and not queued.workers:
        click.echo(
            "syndicate: no worker is running: the send waits in the queue until a "
            "`syndicate worker` runs",
            err=True,
        )


def finish(outcome: SendOutcome) -> NoReturn:
    """Print the summary and what went wrong, and exit with the status it deserves."""
    report = outcome.report
    if report is None:  # queued, not waited for
        sys.exit(0)
    click.echo(report.summary())
    if outcome.failed:
        named = ", ".join(outcome.failed[:NAMED_BATCHES])
        more = len(outcome.failed) - NAMED_BATCHES
        click.echo(
            f"syndicate: {len(outcome.failed)} batches failed (subscriber ids {named}"
            + (f" and {more} more" if more > 0 else "")
            + "); the workers' logs say why; run it again to go on",
            err=True,
        )
    if report.paused:
        click.echo(
            f"syndicate: the send paused itself: {report.paused}; find out why addresses "
            "bounce (or raise [bounces] pause_rate), then run it again to go on",
            err=True,
        )
    elif report.stopped and outcome.queued is not None:
        click.echo(
            "syndicate: stopped watching; the workers go on with the send's batches", err=True
        )
    elif report.stopped:
        click.echo("syndicate: the send was stopped; run it again to go on", err=True)
    sys.exit(1 if report.failed or report.stopped or outcome.failed else 0)
