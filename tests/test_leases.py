"""Leases: one holder at a time per job, across processes, and free again when a holder dies."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from syndicate.store.leases import LeaseHeld, acquire, holder_name, release, renew

MINUTE = timedelta(minutes=1)


def test_second_holder_is_refused_while_the_first_holds(engine: Engine) -> None:
    """A lease held by one process is refused to another, with the holder named."""
    acquire(engine, "send:daily-en-2026-11-24", "worker-a", MINUTE)
    with pytest.raises(LeaseHeld, match="worker-a"):
        acquire(engine, "send:daily-en-2026-11-24", "worker-b", MINUTE)
    acquire(engine, "send:daily-fa-2026-11-24", "worker-b", MINUTE)  # another job is free


def test_holder_may_take_its_own_lease_again(engine: Engine) -> None:
    """Re-acquiring one's own lease succeeds (a restart with the same holder name)."""
    acquire(engine, "scheduler", "worker-a", MINUTE)
    acquire(engine, "scheduler", "worker-a", MINUTE)


def test_a_lease_that_ran_out_can_be_taken(engine: Engine) -> None:
    """A holder that stopped renewing (it died) loses the lease when it runs out."""
    acquire(engine, "scheduler", "dead", timedelta(seconds=-1))
    acquire(engine, "scheduler", "alive", MINUTE)
    assert not renew(engine, "scheduler", "dead", MINUTE)
    assert renew(engine, "scheduler", "alive", MINUTE)


def test_release_frees_the_lease_only_for_its_holder(engine: Engine) -> None:
    """Releasing someone else's lease does nothing; releasing one's own frees it."""
    acquire(engine, "scheduler", "worker-a", MINUTE)
    release(engine, "scheduler", "worker-b")
    with pytest.raises(LeaseHeld):
        acquire(engine, "scheduler", "worker-b", MINUTE)
    release(engine, "scheduler", "worker-a")
    acquire(engine, "scheduler", "worker-b", MINUTE)


def test_holder_names_are_unique() -> None:
    """Two holders in one process still get different names."""
    assert holder_name() != holder_name()


def test_a_dead_local_holder_frees_the_lease_at_once(engine: Engine) -> None:
    """A lease whose holder process on this machine is gone can be taken before it runs out."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{finished.stdout.strip()}:deadbeef"
    acquire(engine, "send:x", dead, MINUTE)
    acquire(engine, "send:x", holder_name(), MINUTE)
    with pytest.raises(LeaseHeld):  # a live local holder (this test process) is respected
        acquire(engine, "send:x", "elsewhere:1:ab", MINUTE)
