"""Watching a send that workers carry out in batches: its progress and its end, from the store.

Progress is the ledger's: the rows written since the send was asked for, by every worker
(each recipient's row is written once a send, whatever became of the message). The end is the
queue's: every batch of the send finished, its state the latest job of its range (a batch
handed back, or retried after its worker died, goes on under the same range). The report is
then the ledger's again, so it counts what was done, not what workers said.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, text

from syndicate.delivery.ledger import SendReport, Stop
from syndicate.delivery.recorder import DeliveryStatus
from syndicate.queue.names import SEND_BATCH
from syndicate.send.batches import Audience, Batch
from syndicate.send.pause import bounce_pause
from syndicate.settings import Settings
from syndicate.store.database import reading
from syndicate.store.schema import delivery

LOOK_EVERY = 0.5  # seconds between looks at the ledger and the queue
PENDING = ("todo", "doing")
SUCCEEDED = "succeeded"

# Each range's latest job among the send's (from `first_job` on): a range's story goes on
# under a new job when it is handed back, under the same one when it is retried.
_LATEST = text(
    "SELECT DISTINCT ON ((args->>'first')::bigint) (args->>'first')::bigint AS first,"
    " (args->>'last')::bigint AS last, status::text AS status"
    " FROM procrastinate_jobs WHERE task_name = :task AND args->>'edition_id' = :edition"
    " AND id >= :first_job ORDER BY (args->>'first')::bigint, id DESC"
)


@dataclass(frozen=True)
class QueuedSend:
    """A send handed to the workers: its batches, and where its progress is read from."""

    edition_id: str
    batches: int  # batches in the queue for it: deferred now, or waiting already
    deferred: int  # of which this request deferred
    first_job: int | None  # the lowest job id among them (None: nobody is left to send to)
    since: datetime  # the store's clock when asked: the ledger's rows since are this send's
    audience: Audience  # the edition's recipients then
    workers: int  # workers alive then


def batch_states(engine: Engine, queued: QueuedSend) -> dict[Batch, str]:
    """Each batch of the send and the status of its latest job (todo, doing, succeeded, ...)."""
    if queued.first_job is None:
        return {}
    arguments = {"task": SEND_BATCH, "edition": queued.edition_id, "first_job": queued.first_job}
    with engine.connect() as connection:
        rows = connection.execute(_LATEST, arguments).all()
    return {Batch(row.first, row.last): row.status for row in rows}


def watch_send(
    engine: Engine,
    settings: Settings,
    queued: QueuedSend,
    *,
    on_progress: Callable[[int], None] | None = None,
    stop: Stop | None = None,
) -> tuple[SendReport, tuple[str, ...]]:
    """Wait until every batch of `queued` has ended; the report and the batches that failed.

    Once `stop` is set the watch ends early (the batches go on in the workers), and the
    report says `stopped`.
    """
    started = time.monotonic()
    seen = 0
    stopped = False
    while True:
        states = batch_states(engine, queued)
        handled = sum(ledger_tally(engine, queued).values())
        if on_progress is not None and handled > seen:
            on_progress(handled - seen)
            seen = handled
        if not any(status in PENDING for status in states.values()):
            break
        if stop is not None and stop.is_set():
            stopped = True
            break
        time.sleep(LOOK_EVERY)
    failed = tuple(str(batch) for batch, status in sorted(states.items()) if status != SUCCEEDED)
    report = _report(engine, queued, time.monotonic() - started)
    report.stopped = stopped
    if failed and (pause := _paused(engine, settings, queued.edition_id)):
        report.stopped, report.paused = True, pause
    return report, () if stopped else failed


def ledger_tally(engine: Engine, queued: QueuedSend) -> Counter[str]:
    """The ledger's rows of the send (written since it was asked for), by status."""
    with reading(engine).connect() as connection:
        rows = connection.execute(
            select(delivery.c.status, func.count())
            .where(delivery.c.edition_id == queued.edition_id, delivery.c.at >= queued.since)
            .group_by(delivery.c.status)
        ).all()
    return Counter({status: count for status, count in rows})


def _report(engine: Engine, queued: QueuedSend, seconds: float) -> SendReport:
    """The send's report, as the ledger tells it."""
    tally = ledger_tally(engine, queued)
    return SendReport(
        queued.edition_id,
        sent=tally[DeliveryStatus.SENT],
        failed=sum(
            tally[status]
            for status in (DeliveryStatus.BOUNCED, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED)
        ),
        suppressed=queued.audience.suppressed + tally[DeliveryStatus.SUPPRESSED],
        skipped=queued.audience.done,
        seconds=seconds,
    )


def _paused(engine: Engine, settings: Settings, edition_id: str) -> str:
    """Why the edition's send pauses itself now (its hard-bounce rate), or ""."""
    with reading(engine).connect() as connection:
        pause = bounce_pause(settings.bounces, edition_id)(connection)
    return pause.reason() if pause is not None else ""
