"""The HTTP access log ([web] access_log): one `request key=value` line per answered request.

The path is logged without its query string: subscription links carry signed tokens there,
and a log is no place for them. Every value a client chose is quoted as one logfmt value, so
no path can forge a line or a field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from syndicate.observe.logs import logfmt

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
App = Callable[..., Awaitable[None]]


class AccessLog:
    """ASGI middleware logging method, path, status, body bytes sent, duration and client."""

    def __init__(self, app: App) -> None:
        """Log the requests `app` answers."""
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        """Pass the request on, counting what goes back, and log it once it is answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what uvicorn answers when the app fails before it starts a response
        sent = 0
        head = scope["method"] == "HEAD"  # the server drops a body an app gives a HEAD

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not head:
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            client = scope.get("client")
            log.info(
                "request method=%s path=%s status=%s bytes=%s duration_ms=%.1f client=%s",
                logfmt(scope["method"]),
                logfmt(scope["path"]),
                status,
                sent,
                (time.perf_counter() - started) * 1000,
                logfmt(client[0]) if client else "-",
            )
