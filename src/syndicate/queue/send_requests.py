"""Asking for a send: in this process on SQLite, as batches for the workers on PostgreSQL.

On PostgreSQL the edition's audience is cut into batches (send.batches) and each deferred as a
job. While any batch of the edition waits or runs, asking again defers nothing: the request
joins the send under way (the queueing locks collapse two requests at the same moment), so
ranges never overlap and nobody is sent twice. The asker may then watch the send to its end
(send_watch), as `digest send` and the scheduler's digest job do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import Engine, func, select, text

from syndicate.delivery.ledger import SendReport, Stop
from syndicate.digests.model import Edition
from syndicate.queue.engine import queue_app, uses_queue
from syndicate.queue.liveness import count_live_workers
from syndicate.queue.names import SEND_BATCH
from syndicate.queue.send_jobs import defer_batches
from syndicate.queue.send_watch import QueuedSend, watch_send
from syndicate.send.batches import audience_batches, check_send, count_audience
from syndicate.send.processes import send
from syndicate.settings import Settings
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)

_PENDING = text(
    "SELECT id FROM procrastinate_jobs WHERE task_name = :task"
    " AND args->>'edition_id' = :edition AND status IN ('todo', 'doing') ORDER BY id"
)


@dataclass(frozen=True)
class SendOutcome:
    """What came of asking for a send: a report, the batches it was queued as, or both."""

    report: SendReport | None = None  # None: queued, not waited for
    queued: QueuedSend | None = None  # None: sent in this process (SQLite)
    failed: tuple[str, ...] = ()  # the batches that ended without sending their range


def request_send(
    engine: Engine,
    settings: Settings,
    edition: Edition,
    *,
    processes: WorkerProcesses | None = None,
    wait: bool = True,
    on_queued: Callable[[QueuedSend], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: Stop | None = None,
) -> SendOutcome:
    """Send `edition`: here on SQLite, as workers' batches on PostgreSQL (watched if `wait`).

    `on_queued` hears of the batches once queued, `on_start` how many recipients are still to
    send, `on_progress` how many more were handled since (by every worker). Once `stop` is
    set, a send here stops cleanly; a watched one is left to the workers and says `stopped`.
    On SQLite, SendInProgress and SendAborted come from the send as ever.
    """
    if not uses_queue(engine.url):
        report = send(
            engine, settings, edition,
            processes=processes, on_start=on_start, on_progress=on_progress, stop=stop,
        )  # fmt: skip
        return SendOutcome(report=report)
    queued = queue_send(engine, settings, edition)
    if on_queued is not None:
        on_queued(queued)
    if not wait:
        return SendOutcome(queued=queued)
    if on_start is not None:
        on_start(queued.audience.todo)
    report, failed = watch_send(engine, settings, queued, on_progress=on_progress, stop=stop)
    return SendOutcome(report=report, queued=queued, failed=failed)


def queue_send(engine: Engine, settings: Settings, edition: Edition) -> QueuedSend:
    """Defer the batches of `edition` that have someone still to send (PostgreSQL only).

    What would fail every batch alike (DkimKeyError, MessageError) is raised here, first.
    """
    check_send(engine, settings, edition)
    with engine.connect() as connection:
        since = connection.scalar(select(func.now()))  # the clock the workers' records share
    assert isinstance(since, datetime)
    counted = count_audience(engine, edition)
    deferred: list[int] = []
    waiting = pending_batches(engine, edition.id)
    if not waiting:
        batches = audience_batches(engine, edition, settings.queue.send_batch)
        with queue_app(engine.url.render_as_string(hide_password=False)).open() as app:
            try:
                deferred = defer_batches(app, edition.id, batches)
            except AlreadyEnqueued:  # another request queued them a moment ago
                log.info("send collapsed edition=%s: its batches wait already", edition.id)
        waiting = pending_batches(engine, edition.id)
    jobs = sorted({*deferred, *waiting})
    queued = QueuedSend(
        edition_id=edition.id,
        batches=len(jobs),
        deferred=len(deferred),
        first_job=jobs[0] if jobs else None,
        since=since,
        audience=counted,
        workers=count_live_workers(engine, settings.queue.stalled_seconds),
    )
    log.info(
        "send queued edition=%s batches=%d deferred=%d todo=%d workers=%d",
        edition.id, queued.batches, queued.deferred, counted.todo, queued.workers,
    )  # fmt: skip
    return queued


def pending_batches(engine: Engine, edition_id: str) -> list[int]:
    """The job ids of the edition's batches that wait or run."""
    with engine.connect() as connection:
        found = connection.execute(_PENDING, {"task": SEND_BATCH, "edition": edition_id})
        return list(found.scalars())
