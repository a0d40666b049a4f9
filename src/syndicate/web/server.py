"""Running an ASGI app under uvicorn with Syndicate's logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import uvicorn

from syndicate.settings import WebSettings

log = logging.getLogger(__name__)


def server_config(
    app: Callable[..., Any], web: WebSettings, *, access_log: bool = False
) -> uvicorn.Config:
    """The uvicorn configuration for serving `app` where `web` says."""
    log.info("serve host=%s port=%s", web.host, web.port)
    return uvicorn.Config(
        app,
        host=web.host,
        port=web.port,
        # Our own logfmt handler is already on the root logger; uvicorn's would add a second
        # format. Access lines are off by default: pollers make them most of the volume.
        log_config=None,
        access_log=access_log,
        lifespan="off",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def serve(app: Callable[..., Any], web: WebSettings) -> None:
    """Serve `app` until SIGINT or SIGTERM, then finish open requests and return."""
    uvicorn.Server(server_config(app, web)).run()
