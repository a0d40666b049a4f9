"""Leases: one holder at a time per job, across processes, and free again when a holder dies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from syndicate.store.leases import LeaseHeld, acquire, holder_name, join, release, renew
from syndicate.store.schema import lease
from tests.support.waiting import wait_for

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


@pytest.fixture
def running() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this machine that runs until the test ends it (or the test ends)."""
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as process:
        yield process
        process.kill()


def _ended_holder() -> str:
    """The holder name of a process of this machine that has ended."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return f"{socket.gethostname()}:{finished.stdout.strip()}:deadbeef"


def test_a_lease_stays_taken_while_any_process_of_its_holder_runs(
    engine: Engine, running: subprocess.Popen[bytes]
) -> None:
    """The holder died, but a process it counted in the lease runs on: nobody may take it."""
    dead = _ended_holder()
    acquire(engine, "send:x", dead, MINUTE)
    join(engine, "send:x", dead, running.pid, MINUTE)
    with pytest.raises(LeaseHeld, match=f":{running.pid}:.* still runs"):
        acquire(engine, "send:x", "restarted", MINUTE)
    running.kill()
    running.wait()
    acquire(engine, "send:x", "restarted", MINUTE)


def test_a_killed_process_not_yet_waited_for_counts_as_ended(
    engine: Engine, running: subprocess.Popen[bytes]
) -> None:
    """A zombie (killed, its exit not yet collected by anyone) holds nothing."""
    dead = _ended_holder()
    acquire(engine, "send:x", dead, MINUTE)
    join(engine, "send:x", dead, running.pid, MINUTE)
    running.kill()
    state = Path(f"/proc/{running.pid}/stat")
    wait_for(lambda: state.read_text().rpartition(")")[2].split()[0] == "Z", 30, "a zombie")
    acquire(engine, "send:x", "restarted", MINUTE)


def test_a_reused_pid_is_not_the_process_that_joined(engine: Engine) -> None:
    """A process counted in the lease is told by its start time too, not by its pid alone."""
    dead = _ended_holder()
    acquire(engine, "send:x", dead, MINUTE)
    join(engine, "send:x", dead, os.getpid(), MINUTE)  # this test's process: it runs
    with pytest.raises(LeaseHeld):
        acquire(engine, "send:x", "restarted", MINUTE)
    name, started = f"send:x#{os.getpid()}", f"{socket.gethostname()}:{os.getpid()}:"
    with engine.begin() as connection:  # as if another process had had this pid before
        connection.execute(update(lease).where(lease.c.name == name).values(holder=started + "1"))
    acquire(engine, "send:x", "restarted", MINUTE)


def test_only_the_holder_may_count_processes_in_its_lease(engine: Engine) -> None:
    """Joining a lease someone else holds (or nobody does) is refused."""
    with pytest.raises(LeaseHeld, match="nobody"):
        join(engine, "send:x", "worker-a", os.getpid(), MINUTE)
    acquire(engine, "send:x", "worker-a", MINUTE)
    with pytest.raises(LeaseHeld, match="worker-a"):
        join(engine, "send:x", "worker-b", os.getpid(), MINUTE)


def test_releasing_a_lease_forgets_its_processes(engine: Engine) -> None:
    """Once the holder gives the lease up, the processes it counted hold nothing."""
    holder = holder_name()
    acquire(engine, "send:x", holder, MINUTE)
    join(engine, "send:x", holder, os.getpid(), MINUTE)
    release(engine, "send:x", holder)
    acquire(engine, "send:x", "next", MINUTE)
    with engine.connect() as connection:
        assert connection.execute(select(lease.c.name)).scalars().all() == ["send:x"]


def test_processes_of_another_machine_are_covered_by_the_lease_itself(engine: Engine) -> None:
    """Another machine's processes cannot be looked at: the lease running out frees them."""
    acquire(engine, "send:x", "elsewhere:1:ab", timedelta(seconds=-1))
    join(engine, "send:x", "elsewhere:1:ab", os.getpid(), MINUTE)
    with engine.begin() as connection:
        connection.execute(
            update(lease)
            .where(lease.c.name == f"send:x#{os.getpid()}")
            .values(holder="elsewhere:7:1")
        )
    acquire(engine, "send:x", "here", MINUTE)
