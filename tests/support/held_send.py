"""`syndicate digest send` whose sending processes wait at their start until a test lets them go.

Run as `python -m tests.support.held_send digest send EDITION` with SYNDICATE_TEST_SEND_GATE naming a
FIFO: each child process, before anything of its own (even tying its life to its parent's), opens
the FIFO and reads it to its end, so it waits until the test has opened it for writing and closed
it again. A test can so kill the parent at the moment a child is starting, before the child could
protect itself.
"""

from __future__ import annotations

import os
from typing import Any

from syndicate.workers import processes

GATE = "SYNDICATE_TEST_SEND_GATE"
# In a child this module is imported afresh: the real entry point of a worker process.
_run_process = processes._run_process


def held_process(*args: Any) -> None:
    """Wait at the gate, then be the child process as usual."""
    with open(os.environ[GATE], "rb") as gate:
        gate.read()
    _run_process(*args)


if __name__ == "__main__":
    from syndicate.cli.commands import main

    processes._run_process = held_process  # type: ignore[assignment]
    main()
