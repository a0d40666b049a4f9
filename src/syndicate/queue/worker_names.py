"""Who each queue worker is: its `--name`, host and pid beside procrastinate's numeric id.

procrastinate knows a worker by a number only. Each `syndicate worker` records, once it is
registered, what an operator knows it by, so that `syndicate status` can say which machine's
worker is beating, stalled or sending. The row goes with procrastinate's own (a foreign key that
cascades), when the worker stops or is pruned as dead.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from procrastinate import App

_RECORD = (
    "INSERT INTO queue_worker (worker_id, name, host, pid)"
    " VALUES (%(worker_id)s, %(name)s, %(host)s, %(pid)s)"
    " ON CONFLICT (worker_id) DO UPDATE SET name = excluded.name, host = excluded.host,"
    " pid = excluded.pid"
)


@dataclass(frozen=True, slots=True)
class WorkerName:
    """A worker as an operator knows it."""

    name: str
    host: str
    pid: int

    def __str__(self) -> str:
        """`name on host, pid N`."""
        return f"{self.name} on {self.host}, pid {self.pid}"


async def record_worker_name(app: App, worker_id: int, name: str) -> None:
    """Record this process (`name`, this host, this pid) as the queue's worker `worker_id`."""
    await app.connector.execute_query_async(
        _RECORD, worker_id=worker_id, name=name, host=socket.gethostname(), pid=os.getpid()
    )
