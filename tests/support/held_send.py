"""`syndicate digest send` whose sharing processes wait at their start until a test lets them go.

Run as `python -m tests.support.held_send digest send EDITION` with SYNDICATE_TEST_SEND_GATE naming a
FIFO: each sharing process, before anything of its own, opens the FIFO and reads it to its end,
so it waits until the test has opened it for writing and closed it again. A test can so kill the
parent at the moment a child is starting, before the child could protect itself.
"""

from __future__ import annotations

import os
from typing import Any

from syndicate import sending

GATE = "SYNDICATE_TEST_SEND_GATE"
_send_share = sending._send_share  # in a child this module is imported afresh: the real one


def held_share(*args: Any) -> None:
    """Wait at the gate, then be the sharing process as usual."""
    with open(os.environ[GATE], "rb") as gate:
        gate.read()
    _send_share(*args)


if __name__ == "__main__":
    from syndicate.cli import main

    sending._send_share = held_share  # type: ignore[assignment]
    main()
