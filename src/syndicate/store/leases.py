"""Leases: a job that only one process may do at a time, held through the database.

A lease is a row naming its holder and when it runs out. Taking one is a single atomic
statement (insert, or take over a row that has run out), so two processes on two machines
sharing a PostgreSQL database can never both hold it. A holder renews well before it runs out;
a holder that dies simply stops renewing, and the lease is free again after `ttl`. A holder
on this same machine whose process is gone (killed, say) frees it at once: an operator who
runs a killed send again should not have to wait out the lease.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from syndicate.store.schema import lease


class LeaseHeld(Exception):
    """Another holder has the lease."""


def holder_name() -> str:
    """A name for this process that no other process shares: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(engine: Engine, name: str, holder: str, ttl: timedelta) -> None:
    """Take lease `name` for `holder`, or raise LeaseHeld naming who has it."""
    now = datetime.now(UTC)
    with engine.connect() as connection:
        current = connection.execute(
            select(lease.c.holder).where(lease.c.name == name)
        ).scalar_one_or_none()
    replaceable = [holder] + ([current] if current and _is_dead(current) else [])
    # The write transaction starts with its write: on SQLite a read first would make this
    # transaction fail at once, instead of waiting, when another process wrote meanwhile.
    with engine.begin() as connection:
        taken = connection.execute(
            update(lease)
            .where(
                lease.c.name == name,
                or_(lease.c.expires_at <= now, lease.c.holder.in_(replaceable)),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        if taken.rowcount == 1:
            return
    try:
        with engine.begin() as connection:
            connection.execute(
                lease.insert().values(name=name, holder=holder, expires_at=now + ttl)
            )
    except IntegrityError:
        with engine.connect() as connection:
            row = connection.execute(lease.select().where(lease.c.name == name)).one_or_none()
        who = (
            f"{row.holder} until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC"
            if row
            else "another process"
        )
        raise LeaseHeld(f"{name} is held by {who}") from None


def _is_dead(holder: str) -> bool:
    """Whether `holder` was a process of this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: only its lease running out tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def renew(engine: Engine, name: str, holder: str, ttl: timedelta) -> bool:
    """Extend `holder`'s lease; False when it was lost (it ran out and someone took it)."""
    with engine.begin() as connection:
        result = connection.execute(
            update(lease)
            .where(lease.c.name == name, lease.c.holder == holder)
            .values(expires_at=datetime.now(UTC) + ttl)
        )
    return result.rowcount == 1


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up (only if `holder` still has it)."""
    with engine.begin() as connection:
        connection.execute(
            delete(lease).where(and_(lease.c.name == name, lease.c.holder == holder))
        )
