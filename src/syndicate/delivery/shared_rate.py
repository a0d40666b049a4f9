"""A rate limit that every process sharing the database keeps together (PostgreSQL).

The same generic cell rate schedule as delivery.ratelimit's, kept in the database
(store.shared_limits) and read on its clock, so that processes on several machines space their
sends as one. Asking the database for every message would cost a round trip a message; each
process books a block of start times at once instead, sized from the rate so that the whole
cluster books about BOOKINGS_PER_SECOND blocks a second, and hands them to its connections.

Start times are the database's; each is turned into this process's clock by the offset seen
when its block was booked. The booking's answer arrives after the database read its clock, so
a start time lands here a little late, never early. A start time left unused until it is past
by more than what a block may spare (its process stalled, or had nothing to send) is dropped
rather than spent late, which would crowd the next ones: any T seconds carry at most
rate * T + block messages, whatever the processes do and however their bookings interleave.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from syndicate.store.shared_limits import Booking

BOOKINGS_PER_SECOND = 20  # blocks booked a second by the whole cluster, at most about


def block_size(rate: float) -> int:
    """Start times booked at once at `rate` a second: 1/BOOKINGS_PER_SECOND s of them."""
    return max(1, math.ceil(rate / BOOKINGS_PER_SECOND))


def booked_start(next_at: float, now: float) -> float:
    """Where a booking made at `now` starts, when the schedule is booked until `next_at`.

    What store.shared_limits's statement computes (it then moves `next_at` on by the span).
    """
    return max(next_at, now)


class Tickets:
    """One process's booked start times, on its own clock, taken one a message."""

    def __init__(self, rate: float, block: int) -> None:
        """Tickets for `rate` a second, booked `block` at a time."""
        self.rate = rate
        self.block = block
        # Lateness a ticket may have and still be used: what a block allows beyond the rate.
        self.grace = (block - 1) / rate
        self._times: deque[float] = deque()

    def take(self, now: float) -> float | None:
        """The next start time, dropping those too far past to use; None when none is left."""
        while self._times:
            start = self._times.popleft()
            if start >= now - self.grace:
                return start
        return None

    def fill(self, booking: Booking, now: float) -> float:
        """Keep a block booked (its answer arrived at `now`); the first start time, for the caller.

        The caller's is used however late its turn comes: the block was booked just now.
        """
        first = now + (booking.start - booking.now)
        self._times.extend(first + index / self.rate for index in range(1, self.block))
        return first

    def __len__(self) -> int:
        """How many start times are left."""
        return len(self._times)


Book = Callable[[float], Awaitable[Booking]]  # book so many seconds of the shared schedule


class SharedRateLimiter:
    """At most `rate` sends a second across every process booking through `book`."""

    def __init__(
        self, book: Book, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """A limiter of `rate` a second (above 0) whose blocks come from `book`."""
        self.rate = rate
        self.bookings = 0  # blocks booked: for tests and logs
        self._book = book
        self._clock = clock
        self._tickets = Tickets(rate, block_size(rate))
        self._booking = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for this caller's turn, booking a block when this process has none left."""
        start = self._tickets.take(self._clock())
        if start is None:
            async with self._booking:  # one booking at a time; the others wait for its block
                start = self._tickets.take(self._clock())
                if start is None:
                    booking = await self._book(self._tickets.block / self.rate)
                    self.bookings += 1
                    start = self._tickets.fill(booking, self._clock())
        delay = start - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
