"""A sending child never outlives its send, whoever adopts it when its parent is killed.

Under systemd (or any subreaper) an orphan's new parent is not PID 1. This test process makes
itself a subreaper (prctl PR_SET_CHILD_SUBREAPER), runs `digest send` with two processes against
a real SMTP server, and SIGKILLs the parent at the moment its child is starting.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, Engine, select

from syndicate.store import open_database
from syndicate.store.schema import lease, subscriber
from syndicate.workers import ORPHANED
from tests.support.held_send import GATE
from tests.support.newsroom import POOL, Newsroom, addresses
from tests.support.smtp_server import Serve
from tests.support.waiting import wait_for

PR_SET_CHILD_SUBREAPER = 36
ROOT = Path(__file__).parents[1]
WAIT = 120.0  # seconds any one step may take on a loaded machine before the test fails


def _proc_children() -> dict[int, str]:
    """Children of this process that run `multiprocessing` helpers, by pid: their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and "multiprocessing" in command:
            found[int(stat.parent.name)] = command
    return found


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Make this process the one orphans of its descendants are given to, as systemd is."""
    libc = ctypes.CDLL(None, use_errno=True)
    ours = set(_proc_children())  # this test process's own helpers, from earlier tests
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        # Helpers of the sends (multiprocessing's resource trackers) came to us as well; each
        # ends once the processes that used it have, and is collected here.
        for pid in set(_proc_children()) - ours:
            _wait_for_exit(pid)


def _wait_for_exit(pid: int) -> int:
    """The exit status of `pid`, a child of this process, once it has ended."""

    def ended() -> tuple[int, int] | None:
        done, status = os.waitpid(pid, os.WNOHANG)
        return (done, status) if done else None

    found = wait_for(ended, WAIT, f"process {pid} to end")
    assert isinstance(found, tuple)
    return os.waitstatus_to_exitcode(found[1])


def _open_gate(gate: Path) -> None:
    """Let the child waiting at `gate` go: open the FIFO for writing once it reads, and close it."""

    def opened() -> bool:
        try:
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as error:  # ENXIO: the child has not opened its end yet
            if error.errno != errno.ENXIO:
                raise
            return False
        return True

    wait_for(opened, WAIT, "the child to open its end of the gate")


def test_an_orphaned_sending_child_sends_nothing_and_holds_the_send(
    tmp_path: Path, serve: Serve, subreaper: None
) -> None:
    """Parent killed while its child starts: the restart refuses until the orphan has gone.

    The orphan, adopted by this subreaper rather than PID 1, exits without sending anything;
    the send run again then reaches everyone, at most `pool_size` of them twice.
    """
    server, settings = serve()
    room = Newsroom(tmp_path, settings.port, 600)
    room.env["SYNDICATE_MAIL__PROCESSES"] = "2"
    server.delay = 0.005
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    held = {**room.env, GATE: str(gate), "PYTHONPATH": str(ROOT)}
    engine = open_database(room.env["SYNDICATE_DATABASE__URL"], migrate=False)
    with engine.connect() as connection:
        pks = {row.email: row.pk for row in connection.execute(select(subscriber))}
    second_share = {email for email, pk in pks.items() if pk % 2 == 1}

    # Output to a file: the child shares it, and a pipe would stay open while the child lives.
    log = tmp_path / "send.log"
    with log.open("wb") as output:
        parent = subprocess.Popen(
            [sys.executable, "-m", "tests.support.held_send", "digest", "send", room.edition],
            cwd=tmp_path, env=held, stdout=output, stderr=output,
        )  # fmt: skip
    members = lease.c.name.startswith(f"send:{room.edition}#")

    def counted_child() -> int | None:
        assert parent.poll() is None, log.read_text()
        return _member_pid(engine, members)

    child = wait_for(counted_child, WAIT, "the child to be counted in the send's lease")
    assert isinstance(child, int)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert os.waitpid(child, os.WNOHANG) == (0, 0), "the orphan is ours (the subreaper's), alive"

    refused = room.process("digest", "send", room.edition, check=False)
    assert refused.returncode == 2, refused.stderr
    assert f":{child}:" in refused.stderr
    assert "still runs" in refused.stderr

    _open_gate(gate)
    assert _wait_for_exit(child) == ORPHANED
    before = Counter(server.addresses())
    assert not set(before) & second_share, "the orphan sent its share"

    server.delay = 0
    resumed = room.send()
    assert resumed.returncode == 0, resumed.stderr
    counts = Counter(server.addresses())
    assert set(counts) == set(addresses(600))  # nobody skipped
    repeats = sum(count - 1 for count in counts.values())
    assert repeats <= POOL, f"{repeats} repeats, more than one per connection"
    engine.dispose()


def _member_pid(engine: Engine, members: ColumnElement[bool]) -> int | None:
    """The pid of a process counted in the send's lease, once one is."""
    with engine.connect() as connection:
        name = connection.execute(select(lease.c.name).where(members)).scalar()
    return int(name.rpartition("#")[2]) if name else None
