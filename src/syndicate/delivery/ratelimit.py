"""A rate limit shared by every connection of a transport: at most so many sends a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    """Something that spaces sends out: this process's RateLimiter, or one shared by a cluster."""

    async def wait(self) -> None:
        """Wait for this caller's turn."""
        ...


class RateLimiter:
    """At most `rate` events a second, shared by every caller (0 for no limit).

    The generic cell rate algorithm with a burst of one: each event is given a start time at
    least 1/rate after the previous one, so any span of T seconds holds at most rate * T + 1.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        """A limiter of `rate` events a second measured on `clock`."""
        self.rate = rate
        self._clock = clock
        self._next = float("-inf")

    def reserve(self) -> float:
        """Claim the next free start time; the seconds from now until it (0 when free now)."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        start = max(now, self._next)
        self._next = start + 1.0 / self.rate
        return start - now

    async def wait(self) -> None:
        """Wait for this caller's turn."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
