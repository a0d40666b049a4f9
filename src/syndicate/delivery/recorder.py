"""The ledger's writer: one thread commits send outcomes in groups and keeps the lease alive.

A worker waits for its message's record to be committed (its `Gate`) before the next message
completes, so a crash leaves at most one unrecorded message per connection; grouping the
commits lets the database see hundreds of commits a second, not thousands.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache

from sqlalchemy import Connection, Engine

from syndicate.delivery.send_lease import LEASE_TTL, RENEW_EVERY, SendInProgress
from syndicate.store import leases
from syndicate.store.schema import delivery

Gate = asyncio.Future[None]  # done once something (a ledger record) is safely committed


class DeliveryStatus(StrEnum):
    """What became of one recipient's message, as the ledger stores it."""

    SENT = "sent"
    BOUNCED = "bounced"  # refused for good: the address is suppressed
    DEFERRED = "deferred"  # refused for now: tried again by the next send
    FAILED = "failed"  # not sendable (cannot be composed or carried): tried again too
    SUPPRESSED = "suppressed"  # suppressed while the send ran, before its message was composed


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one recipient's message."""

    subscriber_pk: int
    email: str
    status: DeliveryStatus
    message_id: str
    detail: str


class Recorder:
    """One thread that commits outcomes as they come, in groups, and keeps the lease alive."""

    def __init__(
        self,
        engine: Engine,
        edition_id: str,
        lease_name: str,
        holder: str,
        on_bounce: Callable[[Connection, str, str], None],
    ) -> None:
        """Start the writer thread for one send of `edition_id`, holding `lease_name`."""
        self.engine = engine
        self.on_bounce = on_bounce
        self.edition_id = edition_id
        self.lease_name = lease_name
        self.holder = holder
        self.inbox: queue.Queue[tuple[Outcome, asyncio.Future[None]] | None] = queue.Queue()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name="ledger", daemon=True)
        self.thread.start()

    def submit(self, outcome: Outcome) -> Gate:
        """Queue `outcome` for the ledger; the future is done once it is committed."""
        if self.lost:
            raise SendInProgress(f"lost {self.lease_name} to another process; stopping")
        done: Gate = asyncio.get_running_loop().create_future()
        self.inbox.put((outcome, done))
        return done

    def close(self) -> None:
        """Commit what is waiting, then stop."""
        self.inbox.put(None)
        self.thread.join()

    def _run(self) -> None:
        renewed = time.monotonic()
        while True:
            try:
                first = self.inbox.get(timeout=RENEW_EVERY)
            except queue.Empty:
                continue  # nothing to commit; the lease is renewed below all the same
            finally:
                if time.monotonic() - renewed > RENEW_EVERY:
                    if not leases.renew(self.engine, self.lease_name, self.holder, LEASE_TTL):
                        # Stalled past the lease and someone else took over: stop sending.
                        self.lost = True
                    renewed = time.monotonic()
            if first is None:
                return
            group = [first]
            while True:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.inbox.put(None)  # stop after this group
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[tuple[Outcome, asyncio.Future[None]]]) -> None:
        try:
            with self.engine.begin() as connection:
                _write_outcomes(connection, self.edition_id, [outcome for outcome, _ in group])
                for outcome, _ in group:
                    if outcome.status == DeliveryStatus.BOUNCED:
                        self.on_bounce(connection, outcome.email, outcome.detail)
        except BaseException as error:  # the send must stop: it cannot record what it sends
            _settle([done for _, done in group], error)
            return
        _settle([done for _, done in group], None)


def _write_outcomes(connection: Connection, edition_id: str, outcomes: list[Outcome]) -> None:
    """Upsert the outcomes' ledger rows through the driver's executemany.

    This runs hundreds of times a second in the send's own process, where every microsecond
    is taken from composing and sending: SQLAlchemy's per-row parameter handling cost more
    than the database's work. The statement is the one `upsert` makes, written out once; the
    shared timestamp goes through the column's own type once a group.
    """
    dialect = connection.dialect
    processor = delivery.c.at.type.bind_processor(dialect)
    now = datetime.now(UTC)
    at = processor(now) if processor is not None else now
    rows = [
        (edition_id, outcome.subscriber_pk, outcome.status, outcome.message_id, outcome.detail, at)
        for outcome in outcomes
    ]
    connection.exec_driver_sql(_upsert_sql(dialect.paramstyle), rows)


@cache
def _upsert_sql(paramstyle: str) -> str:
    columns = ("edition_id", "subscriber_pk", "status", "message_id", "detail", "at")
    marks = ", ".join(["?" if paramstyle == "qmark" else "%s"] * len(columns))
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns[2:])
    # Made of the constant names above only; every value is a parameter.
    insert = f"INSERT INTO delivery ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
    return insert + f"ON CONFLICT (edition_id, subscriber_pk) DO UPDATE SET {updates}"


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """Resolve a committed group's futures, waking each event loop once, not once a message."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for done in futures:
        by_loop.setdefault(done.get_loop(), []).append(done)
    for loop, waiting in by_loop.items():
        loop.call_soon_threadsafe(_resolve_all, waiting, error)


def _resolve_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for done in futures:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
