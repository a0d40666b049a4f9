"""The web front: the feeds folder at /feeds/, the pages mounted beside it, and /healthz."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from syndicate.web.static_feeds import FeedFiles, Receive, Scope, Send

# The build writes this last, so its presence means at least one complete build is on disk.
READY_MARKER = "index.opml"


FEEDS_PREFIX = "/feeds/"


class FeedsFirst:
    """Hands /feeds/ requests straight to the feed files, everything else to the Starlette app.

    Polling partners make nearly all requests, and nearly all of those end in a 304; skipping
    Starlette's middleware and route matching for them more than doubles the rate.
    """

    def __init__(self, feeds: FeedFiles, pages: Starlette) -> None:
        """Route between the feed files and the rest of the site."""
        self.feeds = feeds
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one connection event."""
        if scope["type"] == "http" and scope["path"].startswith(FEEDS_PREFIX):
            await self.feeds.respond(scope, scope["path"][len(FEEDS_PREFIX) :], send)
        else:
            await self.pages(scope, receive, send)


def create_app(
    feeds_dir: Path | str, *, max_age: int = 300, routes: Sequence[BaseRoute] = ()
) -> FeedsFirst:
    """The ASGI app serving `feeds_dir` at /feeds/, /healthz, and `routes` (other pages)."""
    folder = Path(feeds_dir)
    feeds = FeedFiles(folder, max_age=max_age)

    async def healthz(request: Request) -> Response:
        """200 when a build is on disk to serve, 503 (so no traffic is sent here) until then."""
        ready = (folder / READY_MARKER).is_file()
        return JSONResponse(
            {"status": "ok" if ready else "no feeds built yet"},
            status_code=200 if ready else 503,
            headers={"cache-control": "no-store"},
        )

    async def to_feeds(request: Request) -> Response:
        """Send visitors of the bare site or /feeds to the feeds index."""
        return RedirectResponse("/feeds/", status_code=308)

    pages = Starlette(
        routes=[
            Route("/", to_feeds, methods=["GET", "HEAD"]),
            Route("/feeds", to_feeds, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            *routes,
        ]
    )
    return FeedsFirst(feeds, pages)
