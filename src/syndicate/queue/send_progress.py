"""Each running send's progress across the workers: its batches in the queue, its ledger.

A send is running while one of its batch jobs (SEND_BATCH, args edition_id, first, last) waits
or runs. Its progress is the ledger's, not the batches': a batch half done by a worker that
died counts the messages it recorded, and a message counts once however many workers tried
it. The audience is what the send will have reached when done: those the ledger has done,
and the edition's receivers (confirmed, unsuppressed) it has not reached yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select, text

from syndicate.delivery.ledger import DONE, delivered
from syndicate.queue.names import SEND_BATCH
from syndicate.store.schema import delivery, edition, subscriber
from syndicate.subscribers.audience import receiving

# procrastinate's statuses of a batch, as an operator says them; cancelled and aborted
# batches (a twin took their work) are not the send's to count.
BATCH_STATES = {"todo": "waiting", "doing": "running", "succeeded": "done", "failed": "failed"}

_BATCHES = text(
    "SELECT args->>'edition_id' AS edition_id, status::text AS status, count(*) AS batches,"
    " array_remove(array_agg(DISTINCT worker_id), NULL) AS workers"
    " FROM procrastinate_jobs WHERE task_name = :task AND args->>'edition_id' IN ("
    "  SELECT args->>'edition_id' FROM procrastinate_jobs"
    "  WHERE task_name = :task AND status IN ('todo', 'doing'))"
    " GROUP BY 1, 2 ORDER BY 1"
)


@dataclass(frozen=True, slots=True)
class SendProgress:
    """A running send: its batches by state, the workers on it, and the ledger against its audience."""

    edition_id: str
    batches: dict[str, int]  # waiting, running, done, failed -> batches
    workers: tuple[int, ...]  # the workers running its batches now
    sent: int  # recipients the ledger has done (sent, or refused for good)
    audience: int | None  # None when the edition is gone from the store

    @property
    def ratio(self) -> float:
        """The share of the audience done, 0 to 1 (1 for an empty audience)."""
        if not self.audience:
            return 1.0 if self.audience == 0 else 0.0
        return min(1.0, self.sent / self.audience)


def running_sends(connection: Connection) -> list[SendProgress]:
    """The sends with a batch waiting or running, by edition id."""
    batches: dict[str, dict[str, int]] = {}
    workers: dict[str, set[int]] = {}
    for row in connection.execute(_BATCHES, {"task": SEND_BATCH}):
        counts = batches.setdefault(row.edition_id, dict.fromkeys(BATCH_STATES.values(), 0))
        if row.status in BATCH_STATES:
            counts[BATCH_STATES[row.status]] += int(row.batches)
        if row.status == "doing":
            workers.setdefault(row.edition_id, set()).update(row.workers)
    return [
        SendProgress(
            edition_id,
            counts,
            tuple(sorted(workers.get(edition_id, ()))),
            *_ledger(connection, edition_id),
        )
        for edition_id, counts in batches.items()
    ]


def _ledger(connection: Connection, edition_id: str) -> tuple[int, int | None]:
    """(done, audience) of the edition: the ledger's count and what it will reach."""
    done = int(
        connection.scalar(
            select(func.count())
            .select_from(delivery)
            .where(delivery.c.edition_id == edition_id, delivery.c.status.in_(DONE))
        )
        or 0
    )
    found = connection.execute(
        select(edition.c.kind, edition.c.language).where(edition.c.id == edition_id)
    ).one_or_none()
    if found is None:
        return done, None
    to_reach = connection.scalar(
        select(func.count())
        .select_from(subscriber)
        .where(
            receiving(connection, found.kind, found.language),
            ~delivered(edition_id, subscriber.c.pk),
        )
    )
    return done, done + int(to_reach or 0)
