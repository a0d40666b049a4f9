"""The newsletter archive: a list of editions at /digests/, each one's web copy at /digests/{id}.

An edition's content is frozen when it is built, so its web copy caches well. Nobody's
personal links appear in it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from syndicate.digests.editions import load_edition
from syndicate.digests.render import render_web_copy
from syndicate.domain.periods import DIGEST_KINDS
from syndicate.i18n.catalogs import language_name
from syndicate.store.database import reading
from syndicate.store.schema import edition
from syndicate.web.pages import render_not_found, render_page

LISTED = 90  # editions an archive page lists, newest first


@dataclass(frozen=True, slots=True)
class ListedEdition:
    """One line of the archive: the edition's id, subject and kind."""

    id: str
    subject: str
    kind: str

    @property
    def kind_name(self) -> str:
        """The kind as readers see it ("Daily digest"), to be translated."""
        return DIGEST_KINDS[self.kind].title


def archive_routes(
    engine: Engine,
    *,
    site_title: Callable[[str], str],
    web_url: str,
    max_html_bytes: int,
    languages: Sequence[str] = ("en",),
) -> list[Route]:
    """The archive's list page and every stored edition's web copy."""
    root = urlsplit(web_url).path.rstrip("/")
    reader = reading(engine)  # the archive only reads: it never waits for a writer

    def not_found(language: str) -> Response:
        html = render_not_found(
            language, site_title=site_title(language), root=root, index_url=f"{root}/digests/"
        )
        return HTMLResponse(html, status_code=404, headers={"cache-control": "public, max-age=60"})

    async def listing(request: Request) -> Response:
        """The editions of one language (`?lang=`, else the site's first), newest first."""
        language = request.query_params.get("lang", languages[0])
        if language not in languages:
            return not_found(languages[0])
        editions = await run_in_threadpool(_editions, reader, language)
        html = render_page(
            "pages/archive.html",
            language,
            root=root,
            site_title=site_title(language),
            languages=[(code, language_name(code)) for code in languages],
            editions=editions,
        )
        return HTMLResponse(html, headers={"cache-control": "public, max-age=300"})

    async def web_copy(request: Request) -> Response:
        """One edition as a web page, without anyone's personal links."""
        edition_id = request.path_params["edition_id"]
        found = await run_in_threadpool(load_edition, reader, edition_id)
        if found is None:
            # Ids read kind-language-date: answer in the language the reader was looking for.
            guess = next((code for code in languages if f"-{code}-" in edition_id), languages[0])
            return not_found(guess)
        html = render_web_copy(
            found,
            site_title=site_title(found.language),
            web_url=web_url,
            max_html_bytes=max_html_bytes,
        )
        return HTMLResponse(html, headers={"cache-control": "public, max-age=3600"})

    return [
        Route("/digests/", listing, methods=["GET", "HEAD"]),
        Route("/digests/{edition_id:str}", web_copy, methods=["GET", "HEAD"]),
    ]


def _editions(engine: Engine, language: str) -> list[ListedEdition]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(edition.c.id, edition.c.subject, edition.c.kind)
            .where(edition.c.language == language)
            .order_by(edition.c.date.desc(), edition.c.kind)
            .limit(LISTED)
        )
        return [ListedEdition(row.id, row.subject, row.kind) for row in rows]
