"""Limits every process sharing a PostgreSQL database keeps together: a rate and a number of slots.

A rate is a schedule in a row of `rate_schedule`: the moment, in seconds on the database's own
clock (`clock_timestamp()`, so machines whose clocks differ agree), before which its capacity
is booked. Booking a span is one statement that moves it on, so bookings never overlap, whoever
makes them. Slots are session advisory locks, `pg_try_advisory_lock(key, slot)`: held by a
connection while it stays open, and given back by PostgreSQL when its process dies, with no row
to clean up. PostgreSQL only: SQLite serves one machine, whose limits are kept in-process.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

# Now is read once (a CTE with a volatile function is evaluated once), so the start and the
# time the caller is told are of the same instant.
_BOOK = text(
    """
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)
    INSERT INTO rate_schedule AS schedule (name, next_at)
    SELECT :name, clock.now + :span FROM clock
    ON CONFLICT (name) DO UPDATE
    SET next_at = greatest(schedule.next_at, (SELECT now FROM clock)) + :span
    RETURNING schedule.next_at - :span AS start, (SELECT now FROM clock) AS now
    """
)


@dataclass(frozen=True)
class Booking:
    """A span of a shared schedule: it starts at `start`; `now` is when it was booked."""

    start: float  # seconds since the epoch, on the database's clock
    now: float


def book_span(engine: Engine, name: str, seconds: float) -> Booking:
    """Book the next `seconds` of schedule `name` (made on first use), on the database's clock."""
    with engine.connect() as connection:
        row = connection.execute(_BOOK, {"name": name, "span": seconds}).one()
        connection.commit()
    return Booking(float(row.start), float(row.now))


def slot_key(name: str) -> int:
    """The advisory lock key (a signed 32-bit integer) of the slots called `name`."""
    return int.from_bytes(zlib.crc32(name.encode()).to_bytes(4, "big"), "big", signed=True)


def try_slot(connection: Connection, key: int, slots: int) -> int | None:
    """Take one of the `slots` slots of `key` for `connection`'s session: its number, or None.

    Tried from a random one, so that processes asking at once do not all queue on slot 0.
    """
    first = random.randrange(slots)  # noqa: S311 - spreading, not a secret
    for step in range(slots):
        slot = (first + step) % slots
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key, :slot)"), {"key": key, "slot": slot}
        ).scalar_one()
        if taken:
            return slot
    return None


def free_slots(connection: Connection, key: int, slots: list[int]) -> None:
    """Give back `slots` of `key`, held by `connection`'s session."""
    for slot in slots:
        connection.execute(
            text("SELECT pg_advisory_unlock(:key, :slot)"), {"key": key, "slot": slot}
        )
