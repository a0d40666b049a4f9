"""An ASGI app under a real uvicorn server in a thread, on a loopback port, for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from tests.support.waiting import PATIENCE, wait_for


def serve_in_thread(app: Any, port: int) -> Iterator[str]:
    """Run `app` on `port`; yield its base URL, then stop the server."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), PATIENCE, "the server to start")
    assert server.started, f"the server on port {port} did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class RequestsInFlight:
    """An ASGI app wrapped to count the requests it is handling, their background work included.

    A response reaches the client before its background tasks (a confirmation mail, say) have
    run; once no request is in flight, every task of every answered request has finished, so
    a test can assert what did not happen without waiting for a time.
    """

    def __init__(self, app: Any) -> None:
        """Wrap `app`; nothing is in flight yet."""
        self.app = app
        self._count = 0
        self._changed = threading.Condition()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Handle one ASGI call, counted in while it runs (HTTP only)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self._changed:
            self._count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self._changed:
                self._count -= 1
                self._changed.notify_all()

    def wait_idle(self, timeout: float = PATIENCE) -> None:
        """Wait until no request is being handled (answered, and its background work done)."""
        with self._changed:
            idle = self._changed.wait_for(lambda: self._count == 0, timeout)
        assert idle, f"{self._count} requests still in flight after {timeout:.0f} s"
