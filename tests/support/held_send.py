"""`syndicate digest send` whose sending processes wait at their start until a test lets them go.

Run as `python -m tests.support.held_send digest send EDITION` with SYNDICATE_TEST_SEND_GATE naming a
FIFO: each child sending process, before anything of its own, opens the FIFO and reads it to its end,
so it waits until the test has opened it for writing and closed it again. A test can so kill the
parent at the moment a child is starting, before the child could protect itself.
"""

from __future__ import annotations

import os
from typing import Any

from syndicate.send import processes as sending

GATE = "SYNDICATE_TEST_SEND_GATE"
# In a child this module is imported afresh: the real entry point.
_child_sends_part = sending._child_sends_part


def held_part(*args: Any) -> None:
    """Wait at the gate, then be the child sending process as usual."""
    with open(os.environ[GATE], "rb") as gate:
        gate.read()
    _child_sends_part(*args)


if __name__ == "__main__":
    from syndicate.cli.commands import main

    sending._child_sends_part = held_part  # type: ignore[assignment]
    main()
