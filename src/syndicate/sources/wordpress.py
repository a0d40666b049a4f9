"""The WordPress source: a site's posts, read through its REST API since a stored cursor.

A poll asks `{url}/wp-json/wp/v2/posts?_embed=1&orderby=modified&order=asc&modified_after=C`
page by page (`X-WP-TotalPages`; an empty page also ends it), maps every post to an ingest
record (see `wordpress_posts`) into a temporary JSON Lines file, and only once every page has
arrived feeds that file through `ingest_lines`: the same validation, and rejections that name
the post. A poll that fails on any page stores nothing and leaves the cursor where it was; the
cursor (the newest `modified_gmt` read) is saved in the `state` table only after a whole poll
was stored, so a crash anywhere means the next poll reads the same posts again, harmlessly.

Two WordPress behaviours shape the rest:
- Paging by offset over a list that changes while it is paged can skip a post: when a post on
  a page already read is edited, it moves to the end and every later post moves up one place,
  so the first post of the next page is never seen. A poll that saw the list change (a post
  seen twice, a different `X-WP-Total`) moves the cursor only past the pages read before the
  change, and the next poll reads the rest again.
- When WordPress publishes a scheduled post, its `modified_gmt` does not change (it only sets
  the status), and an anonymous reader could not see it before: a `modified_after` cursor has
  already passed it. So each poll also reads the newest posts by publication date and stores
  the ones not yet in the store.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import httpx
from sqlalchemy import Engine, select

from syndicate import __version__
from syndicate.feeds.catalog import SECTION_NAMES
from syndicate.observe.logs import logfmt
from syndicate.settings import IngestSettings, WordPressSettings
from syndicate.sources.ingest import ingest_lines
from syndicate.sources.ingest_format import parse_timestamp
from syndicate.sources.report import WORDPRESS, SourceError, SourceReport
from syndicate.sources.wordpress_posts import (
    Vocabulary,
    article_record,
    modified_gmt,
    post_id,
    wordpress_text,
)
from syndicate.store.database import reading
from syndicate.store.schema import article, state, topic, topic_text
from syndicate.store.sql import upsert

log = logging.getLogger(__name__)

CURSOR_STATE = "source.wordpress.modified_after"
# The site the cursor belongs to: pointing Syndicate at another site starts from scratch.
SITE_STATE = "source.wordpress.site"
# Newest posts by date read at every poll to catch scheduled posts WordPress has published.
RECENT_POSTS = 20
USER_AGENT = f"Syndicate/{__version__} (feed and newsletter publisher)"
_ONE_SECOND = timedelta(seconds=1)


def poll_wordpress(
    engine: Engine,
    settings: WordPressSettings,
    languages: Sequence[str],
    *,
    report: SourceReport | None = None,
    limits: IngestSettings | None = None,
) -> SourceReport:
    """Store the posts changed since the last good poll, all of them or (on error) none."""
    report = report if report is not None else SourceReport(WORDPRESS)
    if settings.url is None:
        raise SourceError(WORDPRESS, "no [sources.wordpress] url is set")
    site = str(settings.url).rstrip("/")
    cursor = read_cursor(engine, site)
    vocabulary = _vocabulary(engine, settings.language)
    with tempfile.TemporaryFile() as file, _client(settings) as client:
        spool = _Spool(file, vocabulary)
        reader = _Reader(client, f"{site}/wp-json/wp/v2/posts", settings)
        window = reader.changed_since(cursor, spool)
        if cursor is not None:  # a first poll reads every post anyway
            reader.recent(cursor, spool, lambda ids: _stored(engine, ids))
        report.read = spool.count
        if spool.count:  # most polls find nothing: no ingest, no "ingest finished" line
            file.seek(0)
            report.add(
                ingest_lines(engine, file, languages, on_reject=spool.rejected, settings=limits)
            )
    new_cursor = window.cursor(cursor)
    if new_cursor is not None and new_cursor != cursor:
        save_cursor(engine, site, new_cursor)
    log.debug(
        "wordpress polled posts=%d pages=%d modified_after=%s next=%s",
        spool.count,
        window.pages,
        format_cursor(cursor),
        format_cursor(new_cursor),
    )
    return report


def read_cursor(engine: Engine, site: str) -> datetime | None:
    """The stored cursor for `site`: when the newest post the last good poll read was modified."""
    with reading(engine).connect() as connection:
        rows: dict[str, str] = {
            name: value
            for name, value in connection.execute(
                select(state.c.name, state.c.value).where(
                    state.c.name.in_([CURSOR_STATE, SITE_STATE])
                )
            )
        }
    value = rows.get(CURSOR_STATE)
    if value is None:
        return None
    if rows.get(SITE_STATE) != site:
        log.info(
            "wordpress site changed from=%s to=%s; reading every post again",
            logfmt(rows.get(SITE_STATE)),
            logfmt(site),
        )
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        log.warning("wordpress cursor unreadable value=%s; reading every post again", logfmt(value))
        return None


def save_cursor(engine: Engine, site: str, cursor: datetime) -> None:
    """Remember `cursor` as where the next poll of `site` starts."""
    rows = [
        {"name": CURSOR_STATE, "value": format_cursor(cursor)},
        {"name": SITE_STATE, "value": site},
    ]
    with engine.begin() as connection:
        upsert(connection, state, rows, ["name"])


def format_cursor(cursor: datetime | None) -> str:
    """A cursor as WordPress is sent it and the state table keeps it: `…T…+00:00`, or ''."""
    if cursor is None:
        return ""
    # The offset matters: WordPress reads a time without one as the site's local time.
    return cursor.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _client(settings: WordPressSettings) -> httpx.Client:
    return httpx.Client(
        timeout=settings.timeout,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=True,  # http -> https, and sites that moved
    )


def _vocabulary(engine: Engine, default_language: str) -> Vocabulary:
    with reading(engine).connect() as connection:
        rows = connection.execute(
            select(topic_text.c.language, topic.c.slug).join(
                topic, topic.c.pk == topic_text.c.topic_pk
            )
        )
        topics: dict[str, set[str]] = {}
        for language, slug in rows:
            topics.setdefault(language, set()).add(slug)
    return Vocabulary(
        default_language=default_language,
        sections=frozenset(SECTION_NAMES),
        topics={language: frozenset(slugs) for language, slugs in topics.items()},
    )


def _stored(engine: Engine, ids: Collection[str]) -> set[str]:
    if not ids:
        return set()
    with reading(engine).connect() as connection:
        return set(connection.scalars(select(article.c.cms_id).where(article.c.cms_id.in_(ids))))


class _Spool:
    """Mapped posts as JSON Lines in a temporary file: a first poll of a big site stays flat."""

    def __init__(self, file: IO[bytes], vocabulary: Vocabulary) -> None:
        self.file = file
        self.vocabulary = vocabulary
        self.ids: list[str] = []  # by line, to name the post a rejection is about
        self.seen: set[str] = set()

    @property
    def count(self) -> int:
        """Posts spooled so far."""
        return len(self.ids)

    def add(self, post: object) -> None:
        """Append one post's record (anything that is not a post goes as is, to be rejected)."""
        record = article_record(post, self.vocabulary) if isinstance(post, dict) else post
        self.file.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        identity = post_id(post) or "unknown"
        self.ids.append(identity)
        self.seen.add(identity)

    def rejected(self, line: int, reason: str) -> None:
        """Log a rejected post by its id."""
        log.warning(
            "source rejected source=%s post=%s reason=%s",
            WORDPRESS,
            self.ids[line - 1],
            logfmt(reason),
        )


class _Window:
    """What a paged read saw, so the cursor moves only as far as the read was certainly whole."""

    def __init__(self) -> None:
        self.pages = 0
        self.newest: list[datetime | None] = []  # newest modified over pages 1..k, by k
        self.first_page: dict[str, int] = {}
        self.total: int | None = None
        self.whole_pages: int | None = None  # set when the list changed while it was paged

    def add(self, number: int, posts: list[Any], total: int | None) -> int:
        """Note page `number`; return how many of its posts were not seen before."""
        self.pages = number
        if number > 1 and total != self.total:
            self._changed(number - 1)  # posts came or went between this page and the last
        self.total = total
        newest = self.newest[-1] if self.newest else None
        new = 0
        for post in posts:
            identity = post_id(post)
            if identity is not None:
                if identity in self.first_page:
                    self._changed(self.first_page[identity])  # it moved: edited while paged
                else:
                    self.first_page[identity] = number
                    new += 1
            modified = _instant(modified_gmt(post))
            if modified is not None and (newest is None or modified > newest):
                newest = modified
        self.newest.append(newest)
        return new

    def _changed(self, whole_pages: int) -> None:
        if self.whole_pages is None or whole_pages < self.whole_pages:
            self.whole_pages = whole_pages

    def cursor(self, previous: datetime | None) -> datetime | None:
        """Where the next poll starts: past everything read, or past the pages read whole."""
        if self.whole_pages is None:
            reached = self.newest[-1] if self.newest else None
        else:
            newest = self.newest[self.whole_pages - 1] if self.whole_pages else None
            # A skipped post was modified no earlier than the last one read whole, perhaps in
            # the same second, and modified_after is exclusive: start one second earlier.
            reached = newest - _ONE_SECOND if newest is not None else None
            log.info(
                "wordpress posts changed while paged pages=%d whole_pages=%d; "
                "the next poll reads the rest again",
                self.pages,
                self.whole_pages,
            )
        if reached is None or (previous is not None and reached <= previous):
            return previous
        return reached


class _Reader:
    """GETs pages of posts, turning every way a page can fail into a SourceError."""

    def __init__(self, client: httpx.Client, endpoint: str, settings: WordPressSettings) -> None:
        self.client = client
        self.endpoint = endpoint
        self.per_page = settings.per_page
        self.timeout = settings.timeout

    def changed_since(self, cursor: datetime | None, spool: _Spool) -> _Window:
        """Spool every post modified after `cursor` (every post, without one), oldest first."""
        window = _Window()
        page = 1
        while True:
            params = {
                "_embed": "1",
                "per_page": str(self.per_page),
                "page": str(page),
                "orderby": "modified",
                "order": "asc",
            }
            if cursor is not None:
                params["modified_after"] = format_cursor(cursor)
            posts, total, pages = self._get(params, page)
            if not posts:
                break
            fresh = window.add(page, posts, total)
            for post in posts:
                spool.add(post)
            if pages is not None and page >= pages:
                break
            if (pages is None and len(posts) < self.per_page) or not fresh:
                break  # no page count to follow, or a server that repeats itself
            page += 1
        return window

    def recent(
        self, cursor: datetime, spool: _Spool, stored: Callable[[Collection[str]], set[str]]
    ) -> None:
        """Spool the newest posts by date that the cursor has passed but the store lacks."""
        params = {
            "_embed": "1",
            "per_page": str(min(self.per_page, RECENT_POSTS)),
            "page": "1",
            "orderby": "date",
            "order": "desc",
        }
        posts, _, _ = self._get(params, 1)
        missed: dict[str, object] = {}
        for post in posts:
            identity = post_id(post)
            modified = _instant(modified_gmt(post))
            # Posts modified after the cursor are the modified pass's (this one or the next).
            if identity and identity not in spool.seen and modified and modified <= cursor:
                missed[identity] = post
        known = stored(list(missed))
        for identity, post in missed.items():
            if identity not in known:
                log.info("wordpress scheduled post found post=%s", identity)
                spool.add(post)

    def _get(self, params: dict[str, str], page: int) -> tuple[list[Any], int | None, int | None]:
        where = f"page {page} of {self.endpoint}"
        try:
            response = self.client.get(self.endpoint, params=params)
        except httpx.TimeoutException:
            raise SourceError(
                WORDPRESS, f"timed out after {self.timeout:g} s waiting for {where}"
            ) from None
        except httpx.HTTPError as error:
            raise SourceError(
                WORDPRESS, f"cannot fetch {where}: {error or type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise SourceError(
                WORDPRESS, f"HTTP {response.status_code} for {where}{_wordpress_error(response)}"
            )
        try:
            posts = response.json()
        except ValueError as error:
            raise SourceError(WORDPRESS, f"{where} is not valid JSON: {error}") from None
        if not isinstance(posts, list):
            raise SourceError(
                WORDPRESS, f"{where} is not a list of posts but a JSON {_kind(posts)}"
            )
        return posts, _header(response, "X-WP-Total"), _header(response, "X-WP-TotalPages")


def _wordpress_error(response: httpx.Response) -> str:
    """WordPress's own words for an error (`{"code": ..., "message": ...}`), if it sent them."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    code, message = body.get("code"), body.get("message")
    parts = [part for part in (code, message) if isinstance(part, str) and part]
    return (": " + wordpress_text(": ".join(parts))[:300]) if parts else ""


def _header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _kind(value: object) -> str:
    return {dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
