"""The web front: the feeds folder at /feeds/, tag and topic pages, /healthz and /metrics.

Everything but /feeds/ goes through one Starlette app wrapped in the security headers
middleware and the public redirects guard; the feed files keep their own lean path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from syndicate.observe import metrics
from syndicate.store.database import is_busy
from syndicate.web.pages import HTML, FeedPages, render_page
from syndicate.web.security import PublicRedirects, SecurityHeaders
from syndicate.web.static_feeds import FeedFiles, FeedSource, Receive, Scope, Send
from syndicate.web.subscriptions.notices import BUSY_BODY, BUSY_RETRY_AFTER, BUSY_TITLE
from syndicate.web.subscriptions.pages import fill

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]

# The build writes this last, so its presence means at least one complete build is published.
READY_MARKER = "index.opml"


FEEDS_PREFIX = "/feeds/"


class FeedsFirst:
    """Hands /feeds/ requests straight to the feed files, everything else to the Starlette app.

    Polling partners make nearly all requests, and nearly all of those end in a 304; skipping
    Starlette's middleware and route matching for them more than doubles the rate.
    """

    def __init__(self, feeds: FeedSource, pages: ASGIApp) -> None:
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
    feeds_dir: Path | str,
    *,
    max_age: int = 300,
    routes: Sequence[BaseRoute] = (),
    public_url: str | None = None,
    languages: Sequence[str] | None = None,
    timezone: str = "UTC",
    more_metrics: Sequence[CollectorRegistry] = (),
    feeds: FeedSource | None = None,
) -> FeedsFirst:
    """The ASGI app: `feeds_dir` at /feeds/, tag and topic pages, /healthz, /metrics, `routes`.

    `public_url` is [web] public_url: the pages' feed links point under {public_url}/feeds/,
    and an https URL turns on Strict-Transport-Security (without it, links are root-relative).
    `languages` limits the page languages; `timezone` is the zone pages show dates in.
    `more_metrics` are served at /metrics after the process's own (the store's deliverability).
    `feeds` serves /feeds/ from elsewhere than `feeds_dir` (web.bucket_feeds, the bucket).
    """
    feeds = feeds or FeedFiles(Path(feeds_dir), max_age=max_age)
    base = public_url.rstrip("/") if public_url else ""
    pages = FeedPages(
        feeds,
        feeds_url=f"{base}{FEEDS_PREFIX}",
        languages=languages,
        max_age=max_age,
        zone=ZoneInfo(timezone),
    )

    site = Starlette(
        routes=[
            Route("/", to_feeds, methods=["GET", "HEAD"]),
            Route("/feeds", to_feeds, methods=["GET", "HEAD"]),
            Route("/healthz", _health_check(feeds), methods=["GET", "HEAD"]),
            Route("/metrics", _metrics_text(more_metrics), methods=["GET", "HEAD"]),
            # Given routes come before the pages' patterns, so theirs win where both match.
            *routes,
            *pages.routes(),
        ],
        exception_handlers={404: pages.not_found, OperationalError: _busy_page(pages)},
    )
    # Outside Starlette's own error handling, so that even a 500 page carries the headers;
    # every redirect of the site (Starlette's own trailing-slash ones too) names public_url.
    secured = SecurityHeaders(PublicRedirects(site, base), https=base.startswith("https:"))
    return FeedsFirst(feeds, secured)


def _health_check(feeds: FeedSource) -> Endpoint:
    """The /healthz endpoint for the feeds `feeds` serves."""

    async def healthz(request: Request) -> Response:
        """200 when a build is there to serve, 503 (so no traffic is sent here) until then."""
        ready = await feeds.find(READY_MARKER) is not None
        return JSONResponse(
            {"status": "ok" if ready else "no feeds built yet"},
            status_code=200 if ready else 503,
            headers={"cache-control": "no-store"},
        )

    return healthz


def _metrics_text(more: Sequence[CollectorRegistry]) -> Endpoint:
    """The /metrics endpoint: this process's counters, then those of `more`."""

    async def metrics_text(request: Request) -> Response:
        """The service's counters in Prometheus text format."""
        # `more` may read the database: in a worker thread, never on the event loop.
        text = await run_in_threadpool(metrics.exposition, *more)
        return Response(
            text, headers={"content-type": metrics.CONTENT_TYPE, "cache-control": "no-store"}
        )

    return metrics_text


async def to_feeds(request: Request) -> Response:
    """Send visitors of the bare site or /feeds to the feeds index."""
    return RedirectResponse("/feeds/", status_code=308)


def _busy_page(pages: FeedPages) -> ErrorHandler:
    """The handler of a database error: a busy page in the path's language, else re-raised."""

    async def busy(request: Request, exc: Exception) -> Response:
        """503 with Retry-After when a route's write waited out [web] lock_timeout."""
        if not is_busy(exc):
            raise exc
        log.warning(
            "database busy; answered 503 method=%s path=%s", request.method, request.url.path
        )
        language = pages.path_language(request)
        body = render_page(
            "pages/message.html",
            language,
            title=BUSY_TITLE,
            body=BUSY_BODY,
            params={},
            link=None,
            fill=fill,
            site_title=await pages.site_title(language),
            root=request.scope.get("root_path", ""),
        )
        headers = {"retry-after": str(BUSY_RETRY_AFTER), "cache-control": "no-store"}
        return Response(body, status_code=503, media_type=HTML, headers=headers)

    return busy
