"""A web page for every tag and topic feed, made from the feed's own JSON Feed file.

`/{lang}/tags/{slug}/` shows `feeds/{lang}/tags/{slug}.json` and `/{lang}/topics/{slug}/` shows
`feeds/{lang}/topics/{slug}.json`: the paths mirror the feed layout, so a page exists exactly
when its feed does. Nothing here touches the database; every machine serving the feeds folder
serves the same pages, and the page's validators follow the file's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syndicate.feeds.files import feed_file
from syndicate.feeds.index import KIND_HEADINGS
from syndicate.feeds.layout import FORMATS, Kind, all_key, public_url
from syndicate.feeds.render import MEDIA_TYPES
from syndicate.i18n.catalogs import direction, gettext, local_date
from syndicate.i18n.templating import environment, templates_dir
from syndicate.web.static_feeds import CachedFile, FeedSource, not_modified

log = logging.getLogger(__name__)

# URL segment -> kind of feed that has a page. Sections and the standing feeds have none (yet).
PAGE_KINDS = {Kind.TAG.value: Kind.TAG, Kind.TOPIC.value: Kind.TOPIC}
FORMAT_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
# What a slug can be: letters and digits of any script joined by single hyphens, lower case
# (see syndicate.text.slugs and the ingest format's topic slugs). Checked before any file is named.
_SLUG = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
MAX_SLUG_CHARS = 100
PAGE_CACHE_BYTES = 32 * 1024 * 1024
HTML = "text/html; charset=utf-8"
# A page for a tag that does not exist yet may exist after the next build; scanners still
# should not reach the origin on every retry.
NOT_FOUND_CACHE = "public, max-age=60"


@dataclass(frozen=True, slots=True)
class PageItem:
    """One article as a page lists it."""

    title: str
    url: str | None
    published: datetime | None
    summary: str


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One format of the page's feed: its name, media type and public URL."""

    label: str
    media_type: str
    href: str


@dataclass(frozen=True, slots=True)
class FeedPage:
    """What a tag or topic page shows, read from its JSON Feed."""

    key: str
    kind: Kind
    language: str
    title: str
    subject: str
    description: str
    site_title: str
    home_url: str | None
    items: tuple[PageItem, ...]
    links: tuple[FeedLink, ...]


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A page's HTML and ETag, and the feed file version it was made from."""

    source: bytes
    body: bytes
    etag: str


def page_key(
    language: str, kind: str, slug: str, languages: Sequence[str] | None = None
) -> str | None:
    """The feed key a page URL names, or None if no page could live there."""
    if languages is not None and language not in languages:
        return None
    if not _LANGUAGE.fullmatch(language) or kind not in PAGE_KINDS:
        return None
    if len(slug) > MAX_SLUG_CHARS or not _SLUG.fullmatch(slug) or slug.casefold() != slug:
        return None
    return f"{language}/{kind}/{slug}"


def feed_links(key: str, feeds_url: str) -> tuple[FeedLink, ...]:
    """The feed `key` in every format, at its public URL (as the feeds' self links spell it)."""
    return tuple(
        FeedLink(FORMAT_LABELS[fmt], MEDIA_TYPES[fmt], public_url(feeds_url, f"{key}.{fmt}"))
        for fmt in FORMATS
    )


def read_feed_page(key: str, kind: Kind, document: bytes, feeds_url: str) -> FeedPage:
    """The page of feed `key`, from the bytes of its JSON Feed file."""
    data: dict[str, Any] = json.loads(document)
    language = str(data.get("language") or key.partition("/")[0])
    title = str(data.get("title", ""))
    authors = data.get("authors") or [{}]
    site_title = str(authors[0].get("name", ""))
    # Feed titles are "{site}: {subject}" (feeds.catalog); the page's heading is the subject.
    subject = title.removeprefix(f"{site_title}: ") if site_title else title
    items = tuple(_item(entry) for entry in data.get("items", []))
    return FeedPage(
        key=key,
        kind=kind,
        language=language,
        title=title,
        subject=subject,
        description=str(data.get("description", "")),
        site_title=site_title,
        home_url=_web_url(data.get("home_page_url")),
        items=items,
        links=feed_links(key, feeds_url),
    )


def _item(entry: dict[str, Any]) -> PageItem:
    published = None
    stamp = entry.get("date_published")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):  # an unreadable date is left out, not fatal
            published = datetime.fromisoformat(stamp)
    return PageItem(
        title=str(entry.get("title", "")),
        url=_web_url(entry.get("url")),
        published=published,
        summary=str(entry.get("summary", "")),
    )


def _web_url(value: object) -> str | None:
    """`value` if it is an http(s) URL: autoescaping cannot stop a `javascript:` link."""
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
        return value
    return None


def render_page(template: str, language: str, **context: Any) -> bytes:
    """A page template rendered in `language`: its strings, `lang` and text direction."""
    html = (
        environment()
        .get_template(template)
        .render(
            _=lambda message: gettext(language, message),
            lang=language,
            dir=direction(language),
            **context,
        )
    )
    return html.encode()


def render_feed_page(page: FeedPage, *, zone: tzinfo, root: str, index_url: str) -> bytes:
    """The HTML of a tag or topic page."""
    return render_page(
        "pages/feed.html",
        page.language,
        root=root,
        index_url=index_url,
        heading=KIND_HEADINGS[page.kind],
        page=page,
        date=lambda moment: local_date(moment.astimezone(zone).date(), page.language),
    )


def render_not_found(language: str, *, site_title: str, root: str, index_url: str) -> bytes:
    """The HTML of the page that says there is no page here."""
    return render_page(
        "pages/not_found.html", language, root=root, index_url=index_url, site_title=site_title
    )


class FeedPages:
    """Serves tag and topic pages from a feeds folder, with validators and a rendered-page cache."""

    def __init__(
        self,
        feeds: FeedSource,
        *,
        feeds_url: str,
        languages: Sequence[str] | None = None,
        max_age: int = 300,
        zone: tzinfo = UTC,
    ) -> None:
        """Pages of the feeds `feeds` serves, whose public URLs begin with `feeds_url`."""
        self.feeds = feeds
        self.feeds_url = feeds_url
        self.languages = tuple(languages) if languages is not None else None
        self.cache_control = f"public, max-age={max_age}"
        self.zone = zone
        # Rendering is the only real cost of a page; a poll that finds the feed file unchanged
        # gets the bytes (or the 304) without parsing JSON or running a template.
        self._pages: OrderedDict[tuple[str, str], RenderedPage] = OrderedDict()
        self._page_bytes = 0
        self._site_titles: dict[str, tuple[bytes, str]] = {}
        pages = templates_dir() / "pages"
        self.stylesheet = (pages / "style.css").read_bytes() + (pages / "feed.css").read_bytes()
        self.stylesheet_etag = f'"{hashlib.blake2b(self.stylesheet, digest_size=12).hexdigest()}"'

    def routes(self) -> list[Route]:
        """The pages' routes: one per page kind, and their stylesheet."""
        return [
            Route("/{lang:str}/tags/{slug:str}/", self.tag_page, methods=["GET", "HEAD"]),
            Route("/{lang:str}/topics/{slug:str}/", self.topic_page, methods=["GET", "HEAD"]),
            Route("/style.css", self.stylesheet_file, methods=["GET", "HEAD"]),
        ]

    async def tag_page(self, request: Request) -> Response:
        """GET /{lang}/tags/{slug}/: the tag's latest articles."""
        return await self._page(request, Kind.TAG)

    async def topic_page(self, request: Request) -> Response:
        """GET /{lang}/topics/{slug}/: the topic's latest articles."""
        return await self._page(request, Kind.TOPIC)

    async def _page(self, request: Request, kind: Kind) -> Response:
        """The page of the `kind` feed the path names, or the 404 page."""
        params = request.path_params
        key = page_key(params["lang"], kind.value, params["slug"], self.languages)
        found = await self.feeds.find(feed_file(key, "json")) if key else None
        if key is None or found is None:
            return await self.not_found_page(request)
        root = request.scope.get("root_path", "")
        rendered = self._rendered(key, kind, found, root)
        headers = {
            "etag": rendered.etag,
            "last-modified": found.last_modified.decode(),
            "cache-control": self.cache_control,
        }
        request_headers = dict(request.scope["headers"])
        if not_modified(
            request_headers, frozenset({rendered.etag.encode()}), found.modified_seconds
        ):
            return Response(status_code=304, headers=headers)
        return Response(rendered.body, media_type=HTML, headers=headers)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """The human 404 page, for the app's exception handler."""
        return await self.not_found_page(request)

    def path_language(self, request: Request) -> str:
        """The language the request's path begins with, if it names one, else the first."""
        first = request.url.path.strip("/").partition("/")[0]
        offered = self.languages or ()
        if first in offered or (not offered and _LANGUAGE.fullmatch(first)):
            return first
        return offered[0] if offered else "en"

    async def not_found_page(self, request: Request) -> Response:
        """A 404 page in the language the path begins with, if it names one."""
        language = self.path_language(request)
        body = render_not_found(
            language,
            site_title=await self.site_title(language),
            root=request.scope.get("root_path", ""),
            index_url=self.feeds_url,
        )
        return Response(
            body, status_code=404, media_type=HTML, headers={"cache-control": NOT_FOUND_CACHE}
        )

    async def stylesheet_file(self, request: Request) -> Response:
        """GET /style.css: the pages' stylesheet."""
        headers = {"etag": self.stylesheet_etag, "cache-control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == self.stylesheet_etag:
            return Response(status_code=304, headers=headers)
        return Response(self.stylesheet, media_type="text/css; charset=utf-8", headers=headers)

    def _rendered(self, key: str, kind: Kind, found: CachedFile, root: str) -> RenderedPage:
        """The page of `key` as of the feed file `found`, rendered once per file version."""
        cache_key = (key, root)
        cached = self._pages.get(cache_key)
        if cached is not None and cached.source == found.plain.etag:
            self._pages.move_to_end(cache_key)
            return cached
        page = read_feed_page(key, kind, found.plain.body, self.feeds_url)
        body = render_feed_page(page, zone=self.zone, root=root, index_url=self.feeds_url)
        # The ETag is the page's own content digest, so a change of template or translation
        # after a deploy changes it too, even when the feed file did not change.
        etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
        rendered = RenderedPage(found.plain.etag, body, etag)
        self._remember(cache_key, rendered)
        return rendered

    def _remember(self, cache_key: tuple[str, str], page: RenderedPage) -> None:
        old = self._pages.pop(cache_key, None)
        if old is not None:
            self._page_bytes -= len(old.body)
        self._pages[cache_key] = page
        self._page_bytes += len(page.body)
        while self._page_bytes > PAGE_CACHE_BYTES and len(self._pages) > 1:
            _, evicted = self._pages.popitem(last=False)
            self._page_bytes -= len(evicted.body)

    async def site_title(self, language: str) -> str:
        """The site's name in `language`, from the whole-site feed every language has."""
        found = await self.feeds.find(feed_file(all_key(language), "json"))
        if found is None:
            return ""
        cached = self._site_titles.get(language)
        if cached is not None and cached[0] == found.plain.etag:
            return cached[1]
        try:
            authors = json.loads(found.plain.body).get("authors") or [{}]
            title = str(authors[0].get("name", ""))
        except (ValueError, AttributeError, IndexError):
            title = ""
        self._site_titles[language] = (found.plain.etag, title)
        return title
