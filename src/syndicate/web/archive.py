"""The newsletter archive: every edition's "view in browser" copy at /digests/{edition_id}."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from syndicate.digests.editions import load_edition
from syndicate.digests.model import Edition
from syndicate.digests.render import render_web_copy

NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No such edition</title></head>
<body><h1>No such edition</h1><p>This newsletter edition does not exist (yet).</p></body></html>
"""


def archive_routes(
    engine: Engine, *, site_title: Callable[[str], str], web_url: str, max_html_bytes: int
) -> list[Route]:
    """Routes serving each stored edition's web copy (its content is frozen, so it caches)."""

    async def web_copy(request: Request) -> Response:
        """One edition as a web page, without anyone's personal links."""
        edition: Edition | None = load_edition(engine, request.path_params["edition_id"])
        if edition is None:
            return HTMLResponse(NOT_FOUND, status_code=404)
        html = render_web_copy(
            edition,
            site_title=site_title(edition.language),
            web_url=web_url,
            max_html_bytes=max_html_bytes,
        )
        return HTMLResponse(
            html,
            headers={
                "cache-control": "public, max-age=3600",
                "x-content-type-options": "nosniff",
                "referrer-policy": "no-referrer",
            },
        )

    return [Route("/digests/{edition_id:str}", web_copy, methods=["GET", "HEAD"])]
