"""The cluster as the queue sees it: jobs waiting and running, workers, stalled and failed jobs.

Read-only, from procrastinate's tables in the store, so any process (`syndicate status`, the
web's /metrics) sees what every worker on every machine is doing. Ages come from the
database's clock, the one the workers' heartbeats are written by, so a machine whose clock
drifts still reads them right. On SQLite there is no queue, and nothing to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from syndicate.queue.engine import uses_queue
from syndicate.queue.names import FEED_BUILD, FEED_SHARD, SEND_BATCH
from syndicate.queue.send_progress import SendProgress, running_sends
from syndicate.queue.worker_names import WorkerName
from syndicate.store.database import reading

# The job kinds an operator is shown even when none is queued: a gauge at 0 is an answer,
# a series that vanishes is not. Others (the queue's own upkeep) show once they have jobs.
KINDS = (FEED_BUILD, FEED_SHARD, SEND_BATCH)
STATES = ("todo", "doing", "failed")  # procrastinate's statuses counted: waiting, running, failed
FAILED_SHOWN = 5  # the newest failed jobs listed; the count covers them all

_COUNTS = text(
    "SELECT task_name, status::text AS status, count(*) AS jobs FROM procrastinate_jobs"
    " WHERE status IN ('todo', 'doing', 'failed') GROUP BY task_name, status"
)
_WORKERS = text(
    "SELECT worker.id, extract(epoch FROM now() - worker.last_heartbeat)::float AS age,"
    " named.name, named.host, named.pid FROM procrastinate_workers worker"
    " LEFT JOIN queue_worker named ON named.worker_id = worker.id ORDER BY worker.id"
)
# As procrastinate's own select_stalled_jobs_by_heartbeat: running, and its worker gone
# (the row deleted, so worker_id is null) or silent for longer than the bound.
_STALLED = text(
    "SELECT job.id, job.task_name, job.args, job.worker_id FROM procrastinate_jobs job"
    " LEFT JOIN procrastinate_workers worker ON worker.id = job.worker_id"
    " WHERE job.status = 'doing' AND (worker.id IS NULL"
    " OR worker.last_heartbeat < now() - make_interval(secs => :seconds))"
    " ORDER BY job.id"
)
_FAILED = text(
    "SELECT job.id, job.task_name, job.args, job.attempts,"
    " (SELECT max(event.at) FROM procrastinate_events event WHERE event.job_id = job.id) AS at"
    " FROM procrastinate_jobs job WHERE job.status = 'failed' ORDER BY job.id DESC LIMIT :limit"
)


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """A worker registered in the queue and how long ago it last beat."""

    id: int
    age: float  # seconds since its last heartbeat
    live: bool  # it beat within [queue] stalled_seconds
    name: WorkerName | None = None  # None for a worker that has not said (or not yet)

    @property
    def label(self) -> str:
        """The worker for people: its id, then its name, host and pid when known."""
        return f"{self.id} ({self.name})" if self.name else str(self.id)


@dataclass(frozen=True, slots=True)
class JobLine:
    """One job an operator should look at: a stalled or a failed one."""

    id: int
    task: str
    args: Mapping[str, object]
    worker_id: int | None = None  # a stalled job's worker, if its row is still there
    attempts: int = 0
    at: datetime | None = None  # when it failed

    @property
    def summary(self) -> str:
        """The job's arguments as `key=value` pairs, cut short if long."""
        pairs = " ".join(f"{key}={value}" for key, value in sorted(self.args.items()))
        return pairs if len(pairs) <= 100 else pairs[:99] + "…"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Everything the queue says about the cluster's work."""

    jobs: dict[tuple[str, str], int]  # (task name, status) -> jobs, each of KINDS x STATES
    workers: list[WorkerBeat]
    stalled: list[JobLine]
    failed: list[JobLine]  # the newest FAILED_SHOWN
    sends: list[SendProgress] = field(default_factory=list)

    @property
    def live_workers(self) -> list[WorkerBeat]:
        """The workers beating now."""
        return [worker for worker in self.workers if worker.live]

    def worker_label(self, worker_id: int) -> str:
        """A worker by id for people: with its name, host and pid when it is registered."""
        found = next((worker for worker in self.workers if worker.id == worker_id), None)
        return found.label if found else str(worker_id)

    @property
    def kinds(self) -> list[str]:
        """The job kinds counted: KINDS first, then any other with jobs."""
        return [*KINDS, *sorted({task for task, _ in self.jobs} - set(KINDS))]

    def count(self, task: str, status: str) -> int:
        """Jobs of `task` in `status` (todo, doing or failed)."""
        return self.jobs.get((task, status), 0)

    @property
    def failed_count(self) -> int:
        """Every failed job of every kind, shown or not."""
        return sum(jobs for (_, status), jobs in self.jobs.items() if status == "failed")


def read_cluster(engine: Engine, stalled_seconds: float) -> Cluster | None:
    """The cluster as the queue has it now; None on a store with no queue (SQLite).

    A worker silent for `stalled_seconds` ([queue] stalled_seconds) is dead, and its jobs stalled.
    """
    if not uses_queue(engine.url):
        return None
    with reading(engine).connect() as connection:
        return Cluster(
            _job_counts(connection),
            [
                WorkerBeat(
                    row.id,
                    max(0.0, row.age),
                    row.age <= stalled_seconds,
                    WorkerName(row.name, row.host, row.pid) if row.name is not None else None,
                )
                for row in connection.execute(_WORKERS)
            ],
            [
                JobLine(row.id, row.task_name, row.args, worker_id=row.worker_id)
                for row in connection.execute(_STALLED, {"seconds": stalled_seconds})
            ],
            [
                JobLine(row.id, row.task_name, row.args, attempts=row.attempts, at=row.at)
                for row in connection.execute(_FAILED, {"limit": FAILED_SHOWN})
            ],
            running_sends(connection),
        )


def _job_counts(connection: Connection) -> dict[tuple[str, str], int]:
    counts = {(task, status): 0 for task in KINDS for status in STATES}
    for row in connection.execute(_COUNTS):
        counts[(row.task_name, row.status)] = int(row.jobs)
    for task in {task for task, _ in counts}:  # a kind seen in one state is shown in all
        for status in STATES:
            counts.setdefault((task, status), 0)
    return counts
