"""Running an ASGI app under uvicorn with Syndicate's logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


def serve(app: Callable[..., Any], host: str, port: int, *, access_log: bool = False) -> None:
    """Serve `app` on host:port until SIGINT or SIGTERM, then finish open requests and return."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Our own logfmt handler is already on the root logger; uvicorn's would add a second
        # format. Access lines are off by default: pollers make them most of the volume.
        log_config=None,
        access_log=access_log,
        lifespan="off",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    log.info("serve host=%s port=%s", host, port)
    uvicorn.Server(config).run()
