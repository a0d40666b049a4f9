"""A helper process never outlives the process that started it, whoever adopts it.

An orphan's new parent is PID 1, or a subreaper such as systemd; either way it must not go on
working (a sending process would mail beside the send started again). Linux's parent-death
signal covers a parent that dies from now on, a check of the parent's pid one that died
before, and a pipe from the parent, which closes when it dies, covers the rest.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies
ORPHANED = 3  # the exit status of a helper process whose parent died before it could work


def signal_on_parent_death(number: int = signal.SIGTERM) -> None:
    """Have Linux send this process `number` when its parent dies (a `preexec_fn`).

    The setting survives exec, so a program started by subprocess gets it: SIGTERM lets a
    `syndicate worker` whose `syndicate run` was killed stop as gracefully as when told to.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, number)
    except (OSError, AttributeError):
        pass  # not Linux: the parent stops its companions itself when it can


def die_with_parent(parent: int) -> None:
    """End this process the moment its parent, process `parent`, dies, or now if it has.

    Whoever adopts an orphan (PID 1, or a subreaper such as systemd), its parent's pid is no
    longer `parent`; comparing against 1 would miss a subreaper.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # from now on Linux kills us with it
    except (OSError, AttributeError):
        pass  # not Linux: the pipe below still tells
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(ORPHANED)
    # The parent holds the other end of this pipe until it dies, whatever kills it.
    from_parent = multiprocessing.parent_process()
    if from_parent is not None:
        threading.Thread(
            target=_exit_when_closed, args=(from_parent.sentinel,), name="parent", daemon=True
        ).start()


def _exit_when_closed(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(ORPHANED)
