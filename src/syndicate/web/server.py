"""Running an ASGI app under uvicorn with Syndicate's logging.

The socket is bound by `listen` before anything else starts, so a taken port is one clear line
and exit 2 before a build or a banner, rather than a banner, then uvicorn's error, then exit 3.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from syndicate.settings import WebSettings
from syndicate.web.access import AccessLog

log = logging.getLogger(__name__)

BACKLOG = 2048  # uvicorn's default


class ListenError(Exception):
    """The server cannot listen where [web] host and port say; the message names them."""


def listen(web: WebSettings) -> socket.socket:
    """A socket listening on [web] host and port, for uvicorn to serve on, or ListenError."""
    family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
    address = f"[{web.host}]:{web.port}" if family == socket.AF_INET6 else f"{web.host}:{web.port}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a port left in TIME_WAIT by the last run is free to take again at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((web.host, web.port))
        # Listening at once holds the port: bound alone, a second start could bind it too (both
        # with SO_REUSEADDR) and learn only after its build that it cannot listen. Requests that
        # come before uvicorn starts wait in the backlog.
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ListenError(
                f"cannot listen on {address}: the port is taken (another program listens "
                "there); choose another with [web] port or SYNDICATE_WEB__PORT"
            ) from None
        raise ListenError(
            f"cannot listen on {address}: {error.strerror or error}; check [web] host and "
            "[web] port (SYNDICATE_WEB__HOST, SYNDICATE_WEB__PORT)"
        ) from None
    except (OverflowError, socket.gaierror) as error:  # a host that names no address
        sock.close()
        raise ListenError(
            f"cannot listen on {address}: {error}; check [web] host (SYNDICATE_WEB__HOST)"
        ) from None
    return sock


def server_config(app: Callable[..., Any], web: WebSettings) -> uvicorn.Config:
    """The uvicorn configuration for serving `app` where `web` says."""
    log.info("serve host=%s port=%s access_log=%s", web.host, web.port, web.access_log)
    return uvicorn.Config(
        # Access lines are off by default: pollers make them most of the volume. When on, they
        # are Syndicate's own `request …` lines, not uvicorn's, which have a format of their own.
        AccessLog(app) if web.access_log else app,
        host=web.host,
        port=web.port,
        backlog=BACKLOG,
        # Our own logfmt handler is already on the root logger; uvicorn's would add a second.
        log_config=None,
        access_log=False,
        lifespan="off",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def serve(app: Callable[..., Any], web: WebSettings, listener: socket.socket) -> None:
    """Serve `app` on `listener` until SIGINT or SIGTERM, then finish open requests and return."""
    uvicorn.Server(server_config(app, web)).run(sockets=[listener])
