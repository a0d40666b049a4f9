"""Leases: a job that only one process may do at a time, held through the database.

A lease is a row naming its holder and when it runs out. Taking one is one write transaction
(look, then insert or take over), so two processes on two machines sharing a database can never
both hold it. A holder renews well before it runs out; a holder that dies simply stops
renewing, and the lease is free again after `ttl`. A holder on this same machine whose process
is gone (killed, say) frees it at once: an operator who runs a killed send again should not have
to wait out the lease.

A job may run in several processes of its holder's machine (a send's sharing children). Each
is recorded with `join` as a row of its own, named `{lease}#{pid}`, and the lease is free only
once its holder and every one of them are gone: a restarted send refuses to start beside an
orphaned child of the one that was killed. A process is told by its start time as well as its
pid, so a pid the system hands out again is not mistaken for it.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from syndicate.store.database import reading
from syndicate.store.schema import lease
from syndicate.store.sql import upsert

MEMBER_MARK = "#"  # between a lease's name and the pid of one of its processes


class LeaseHeld(Exception):
    """Another holder has the lease."""


def holder_name() -> str:
    """A name for this process that no other process shares: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(engine: Engine, name: str, holder: str, ttl: timedelta) -> None:
    """Take lease `name` for `holder`, or raise LeaseHeld naming who has it."""
    now = datetime.now(UTC)
    try:
        # A write transaction from its first look (see store.database): nobody can take or
        # join the lease between this look and this take.
        with engine.begin() as connection:
            current = connection.execute(
                select(lease.c.holder, lease.c.expires_at)
                .where(lease.c.name == name)
                .with_for_update()
            ).one_or_none()
            if current is None:
                connection.execute(
                    lease.insert().values(name=name, holder=holder, expires_at=now + ttl)
                )
                return
            if current.holder != holder:
                _refuse_if_held(connection, name, current.holder, current.expires_at, now)
                # The old holder and all its processes are gone: so are their rows.
                connection.execute(delete(lease).where(_members(name)))
            connection.execute(
                update(lease)
                .where(lease.c.name == name)
                .values(holder=holder, expires_at=now + ttl)
            )
    except IntegrityError:  # another process inserted it first, at the same moment
        raise LeaseHeld(f"{name} is held by another process") from None


def _refuse_if_held(
    connection: Connection, name: str, holder: str, expires_at: datetime, now: datetime
) -> None:
    """Raise LeaseHeld while `holder`, or any process it counted in the lease, still runs."""
    if expires_at > now and not _is_dead(holder):
        raise LeaseHeld(f"{name} is held by {holder} until {expires_at:%Y-%m-%d %H:%M:%S} UTC")
    members = connection.execute(select(lease.c.holder).where(_members(name))).scalars()
    for member in members:
        if _member_runs(member):
            raise LeaseHeld(f"{name} is held by {member}, a process of {holder} that still runs")


def join(engine: Engine, name: str, holder: str, pid: int, ttl: timedelta) -> None:
    """Count process `pid` of this machine as one of `holder`'s, for lease `name`.

    Until that process ends, nobody else can take the lease, even once `holder` is gone.
    Raises LeaseHeld if `holder` does not hold the lease (any more).
    """
    now = datetime.now(UTC)
    with engine.begin() as connection:
        current = connection.execute(
            select(lease.c.holder).where(lease.c.name == name).with_for_update()
        ).scalar_one_or_none()
        if current != holder:
            raise LeaseHeld(f"{name} is held by {current or 'nobody'}, not by {holder}")
        member = {
            "name": f"{name}{MEMBER_MARK}{pid}",
            "holder": process_name(pid),
            "expires_at": now + ttl,
        }
        upsert(connection, lease, [member], ["name"])


def process_name(pid: int) -> str:
    """A process of this machine as its lease rows name it: host, pid and its start time."""
    stat = _proc_stat(pid)
    return f"{socket.gethostname()}:{pid}:{stat[1] if stat else ''}"


def _members(name: str) -> ColumnElement[bool]:
    return lease.c.name.startswith(name + MEMBER_MARK, autoescape=True)


def _is_dead(holder: str) -> bool:
    """Whether `holder` was a process of this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: only its lease running out tells
    return not _runs(int(pid))


def _member_runs(member: str) -> bool:
    """Whether the process `member` (see `process_name`) still runs.

    Processes of a lease run on its holder's machine; one named from another machine is
    covered by the lease itself, which every process of the job renews while it runs.
    """
    host, _, rest = member.partition(":")
    pid, _, started = rest.partition(":")
    return host == socket.gethostname() and pid.isdigit() and _runs(int(pid), started)


def _runs(pid: int, started: str = "") -> bool:
    """Whether process `pid` runs (and, given its start time, is still that process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc to read (or it is hidden): the signal's answer stands
    state, start = stat
    # A zombie has ended: only its parent's wait is missing (a killed send's children wait
    # for nobody once their parent is gone).
    return state not in ("Z", "X") and (not started or start == started)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """The state and start time (clock ticks since boot) of process `pid`, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: fields are counted after it.
    fields = stat.rpartition(")")[2].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def live_holder(engine: Engine, name: str, now: datetime | None = None) -> str | None:
    """Who holds lease `name` now: None when nobody does, or its holder ran out or died."""
    with reading(engine).connect() as connection:
        row = connection.execute(
            select(lease.c.holder, lease.c.expires_at).where(lease.c.name == name)
        ).one_or_none()
    if row is None or row.expires_at <= (now or datetime.now(UTC)) or _is_dead(row.holder):
        return None
    return str(row.holder)


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
    """Give the lease up, and forget its processes (only if `holder` still has it)."""
    with engine.begin() as connection:
        gone = connection.execute(
            delete(lease).where(lease.c.name == name, lease.c.holder == holder)
        )
        if gone.rowcount:
            connection.execute(delete(lease).where(_members(name)))
