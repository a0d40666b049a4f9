"""Waiting on a condition, never on a time: how a test knows that something has happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# How long any one condition may take on a loaded machine before the test fails: generous, as
# it costs nothing when the condition comes true at once.
PATIENCE = 60.0


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


async def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """`wait_for` inside an event loop: poll `condition` without blocking the loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)
