"""Running the whole service in one process: the HTTP server in front, the scheduler behind.

SIGTERM (or Ctrl-C) stops both: the server stops accepting and finishes open requests, the
running jobs finish the message or file in flight and record it, the lease is given up, and
the process exits 0. A send stopped this way goes on where it left off at the next start.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from sqlalchemy import Engine

from syndicate.service.companions import Companions
from syndicate.service.preflight import warn_about_settings
from syndicate.service.scheduler import Scheduler
from syndicate.settings import Settings
from syndicate.web.server import server_config
from syndicate.web.site import create_site
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn, telling the scheduler to stop the moment a signal arrives."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop the jobs at once; uvicorn then drains open requests."""
        self.on_exit()
        super().handle_exit(sig, frame)


def run_service(
    engine: Engine,
    settings: Settings,
    listener: socket.socket,
    processes: WorkerProcesses,
    companions: Companions | None = None,
) -> None:
    """Serve on `listener` (see web.server.listen) and schedule until SIGTERM or SIGINT.

    Builds and sends large enough to repay it spread over worker processes started by
    `processes`; `companions`, the queue's workers on this machine, run as long as it does.

    Returns once everything has stopped.
    """
    warn_about_settings(settings)
    scheduler = Scheduler(engine, settings, processes)

    def stop(_signal: int = 0, _frame: FrameType | Any = None) -> None:
        scheduler.stop.set()

    # uvicorn re-raises the signal it caught once it has stopped; with these handlers in
    # place that lands here (a no-op) instead of killing the process before the jobs finish.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = _Server(server_config(create_site(engine, settings), settings.web), stop)
    companions = companions or Companions([])
    companions.start()
    scheduler.start()
    try:
        server.run(sockets=[listener])
    finally:
        scheduler.shutdown()
        companions.stop()
    log.info("service stopped")
