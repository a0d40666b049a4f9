"""The `syndicate worker`s a `syndicate run` starts beside itself on PostgreSQL ([queue] run_workers).

One machine on PostgreSQL then needs nothing more than `syndicate run`, as on SQLite; a cluster
sets run_workers = 0 on nodes that only serve and schedule. Each companion is a process of its
own (the same program, settings and log level, its log lines on the same standard error). When
the service stops, it tells them to stop (one SIGTERM each) and waits: a worker finishes the messages in flight
and hands the rest of its batch back. If the service dies instead, Linux sends each the same
SIGTERM (the parent-death signal), so none works on unwatched.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections.abc import Sequence

from syndicate.workers.orphans import signal_on_parent_death

log = logging.getLogger(__name__)

STOP_WAIT = 120.0  # seconds a companion may take to finish its job in flight


class Companions:
    """`syndicate worker` processes started from given command lines, stopped together."""

    def __init__(self, commands: Sequence[Sequence[str]]) -> None:
        """Nothing runs until `start`."""
        self.commands = [list(command) for command in commands]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start every companion."""
        for command in self.commands:
            # A session of its own: Ctrl-C at a terminal reaches the service alone, which then
            # stops each companion with one SIGTERM (a worker's second signal ends it at once).
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                preexec_fn=signal_on_parent_death,
                start_new_session=True,
            )
            self.processes.append(process)
            log.info("companion worker started pid=%d", process.pid)

    def stop(self) -> None:
        """SIGTERM every companion still running, and wait for each to end."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                status = process.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                status = process.wait()
            log.info("companion worker stopped pid=%d status=%d", process.pid, status)
