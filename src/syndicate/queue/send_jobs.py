"""The send batch job: a worker sends an edition to one range of its subscribers.

Each batch is deferred with a queueing lock (asking again while it waits adds nothing) and a
lock (procrastinate never runs two jobs of one batch at once), both named by the edition and
the range's first id; the batch's own lease (send.batches) covers a worker that seemed dead
and comes back. A worker killed mid-batch leaves its job stalled: the stalled retry (jobs)
hands it to another worker, which skips what the ledger has. A worker told to stop (SIGTERM)
finishes and records its messages in flight, then hands the rest of its batch back: the same
range deferred again, for another worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import DEFAULT_QUEUE, Job
from sqlalchemy import Engine

from syndicate.delivery.ledger import Stop
from syndicate.delivery.send_lease import SendInProgress
from syndicate.digests.editions import load_edition
from syndicate.queue.names import SEND_BATCH
from syndicate.send.batches import Batch, Composers, send_batch
from syndicate.settings import Settings

log = logging.getLogger(__name__)

# Below procrastinate's default (0), which the other jobs keep: a send of thousands of batches
# never holds up a feed build, nor the stalled jobs' retry that hands a dead worker's batch on.
PRIORITY = -10
# A batch whose lease another holder has (a worker thought dead that still sends, or one of
# another machine whose lease has not run out) is tried again after this long.
BUSY_RETRY = timedelta(seconds=15)


class SendPaused(Exception):
    """The edition's send paused itself (its hard-bounce rate): the batch is not finished."""


def batch_lock(edition_id: str, first: int) -> str:
    """The lock and queueing lock of the batch of `edition_id` starting at subscriber `first`."""
    return f"{SEND_BATCH}:{edition_id}:{first}"


def batch_job(edition_id: str, batch: Batch, *, delay: timedelta | None = None) -> Job:
    """The job that sends `batch` of `edition_id`, not before `delay` from now if given."""
    lock = batch_lock(edition_id, batch.first)
    return Job(
        queue=DEFAULT_QUEUE,
        priority=PRIORITY,
        lock=lock,
        queueing_lock=lock,
        task_name=SEND_BATCH,
        task_kwargs={"edition_id": edition_id, "first": batch.first, "last": batch.last},
        scheduled_at=datetime.now(UTC) + delay if delay else None,
    )


def defer_batches(app: App, edition_id: str, batches: Sequence[Batch]) -> list[int]:
    """Defer every batch in one statement; their job ids. AlreadyEnqueued if one waits already."""
    if not batches:
        return []
    jobs = app.job_manager.batch_defer_jobs([batch_job(edition_id, batch) for batch in batches])
    return [job.id for job in jobs if job.id is not None]


def hand_back(app: App, edition_id: str, batch: Batch, *, delay: timedelta | None = None) -> None:
    """Queue `batch` again for another worker (the ledger skips what is done), unless it waits."""
    try:
        job = app.job_manager.defer_job(batch_job(edition_id, batch, delay=delay))
    except AlreadyEnqueued:
        log.info("send batch handed back edition=%s batch=%s: one waits already", edition_id, batch)
        return
    log.info("send batch handed back edition=%s batch=%s id=%s", edition_id, batch, job.id)


def register_send_jobs(app: App, engine: Engine, settings: Settings, stop: Stop) -> None:
    """Register the send batch job on `app`; `stop` is set when the worker is told to stop."""
    composers = Composers()  # this worker's, across its batches

    @app.task(name=SEND_BATCH, pass_context=False)
    def send_batch_job(edition_id: str, first: int, last: int) -> None:
        """Send the edition to subscribers `first` to `last`; hand the rest back if stopped."""
        batch = Batch(first, last)
        edition = load_edition(engine, edition_id)
        if edition is None:
            raise LookupError(f"no edition {edition_id!r}")
        try:
            report = send_batch(engine, settings, edition, batch, stop=stop, composers=composers)
        except SendInProgress as busy:
            log.warning("send batch busy edition=%s batch=%s: %s", edition_id, batch, busy)
            hand_back(app, edition_id, batch, delay=BUSY_RETRY)
            return
        log.info(
            "send batch done edition=%s batch=%s sent=%d failed=%d skipped=%d stopped=%s",
            edition_id, batch, report.sent, report.failed, report.skipped, report.stopped,
        )  # fmt: skip
        if report.paused:
            raise SendPaused(report.paused)
        if report.stopped:
            hand_back(app, edition_id, batch)
