"""What each scheduled job last did, kept in the database for `syndicate status` and catch-up.

One `state` row a job (`job.poll`, `job.digest-daily`, …) holding its last run as JSON, so
any process (the status command, a scheduler that starts after a crash) can read it; and one
row, `scheduler.first_run`, holding when a scheduler first led on this database, so catch-up
never reaches back to times before the service existed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, select

from syndicate.store.database import reading
from syndicate.store.schema import state
from syndicate.store.sql import upsert

PREFIX = "job."
FIRST_RUN = "scheduler.first_run"


class JobResult(StrEnum):
    """How a job's run ended, as `syndicate status` and the state row show it."""

    OK = "ok"
    STOPPED = "stopped"  # asked to stop (SIGTERM) before it was done: owed again
    FAILED = "failed"  # it ran, but some of it failed (messages deferred, an edition not made)
    ERROR = "error"  # it raised, or a source or a feed failed


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job: the moment it was due, when it ran, and how it ended."""

    job: str
    scheduled: datetime  # the moment the run was for (a digest's send time)
    started: datetime
    finished: datetime
    result: JobResult
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the run did all it had to."""
        return self.result == JobResult.OK

    def to_json(self) -> str:
        """The run as the JSON stored in its state row."""
        data: dict[str, Any] = asdict(self)
        for key in ("scheduled", "started", "finished"):
            data[key] = data[key].isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> JobRun:
        """A run read back from its state row."""
        data = json.loads(text)
        for key in ("scheduled", "started", "finished"):
            data[key] = datetime.fromisoformat(data[key])
        data["result"] = JobResult(data["result"])
        return cls(**data)


def record_run(engine: Engine, run: JobRun) -> None:
    """Store `run` as its job's last run."""
    with engine.begin() as connection:
        upsert(connection, state, [{"name": PREFIX + run.job, "value": run.to_json()}], ["name"])


def last_runs(engine: Engine) -> dict[str, JobRun]:
    """Every job's last run, by job name."""
    with reading(engine).connect() as connection:
        return _last_runs(connection)


def _last_runs(connection: Connection) -> dict[str, JobRun]:
    rows = connection.execute(
        select(state.c.name, state.c.value).where(state.c.name.startswith(PREFIX))
    )
    return {name.removeprefix(PREFIX): JobRun.from_json(value) for name, value in rows}


def first_run(engine: Engine, now: datetime) -> datetime:
    """When a scheduler first led on this database: remembered the first time it is asked."""
    with engine.begin() as connection:
        known = connection.scalar(select(state.c.value).where(state.c.name == FIRST_RUN))
        if known is not None:
            return datetime.fromisoformat(known)
        # A database kept before this row was has job history instead. Each job keeps only
        # its last run, so the earliest start recorded may be later than the true first run:
        # a catch-up then passes over a time it might have owed rather than mail one from
        # before the service existed. Its digest runs that did not finish are still caught
        # up (see scheduler.missed_digests), so a stopped send is never left behind.
        starts = [run.started for run in _last_runs(connection).values()]
        since = min(starts, default=now)
        # Two schedulers starting at once: the first write stays, and both read it back.
        upsert(
            connection, state, [{"name": FIRST_RUN, "value": since.isoformat()}], ["name"],
            update=False,
        )  # fmt: skip
        written = connection.scalar(select(state.c.value).where(state.c.name == FIRST_RUN))
        return datetime.fromisoformat(str(written))
