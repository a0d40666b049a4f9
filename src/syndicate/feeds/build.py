"""Building feeds: work out which feeds changed, render them, and publish them.

A full build renders every feed; an incremental build renders only the feeds that ingest marked
dirty, plus those that time changed (a scheduled article whose moment came, a pick that started
or ended, the Most Viewed windows moving on the hour). Either way a file whose bytes did not
change is left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, and_, delete, or_, select

from syndicate.feeds import layout
from syndicate.feeds.contents import ContentReader, FeedContent, visible
from syndicate.feeds.index import ListedFeed, group_feeds, render_html, render_opml
from syndicate.feeds.layout import FORMATS, Kind
from syndicate.feeds.publish import FeedFolder, feed_file
from syndicate.feeds.render import EPOCH, FeedHead, FeedRenderer
from syndicate.settings import Settings
from syndicate.store.schema import (
    article,
    article_tag,
    article_topic,
    dirty_feed,
    pick,
    published_feed,
    state,
    tag,
    topic,
)
from syndicate.store.sql import upsert

log = logging.getLogger(__name__)

# Bump when rendering changes in a way that must reach every file: a build with a different
# fingerprint from the last one is a full build.
RENDERING_VERSION = "1"
# Feeds that exist for every language even with no items, so their URLs never 404.
STANDING_KINDS = {Kind.ALL, Kind.EDITORS_CHOICE, Kind.MOST_VIEWED}
CHUNK = 500


class Progress(Protocol):
    """Where a build reports how far it has got (a progress bar on the command line)."""

    def phase(self, description: str, total: int | None) -> None:
        """A new stage of `total` steps begins."""

    def advance(self, steps: int = 1) -> None:
        """`steps` more steps are done."""


class NoProgress:
    """Progress that goes nowhere, for the service and tests."""

    def phase(self, description: str, total: int | None) -> None:
        """Ignore the new stage."""

    def advance(self, steps: int = 1) -> None:
        """Ignore the steps."""


@dataclass(frozen=True)
class FeedConfig:
    """What building feeds needs from the settings, and nothing more."""

    site_url: str
    site_titles: dict[str, str]
    languages: tuple[str, ...]
    feeds_dir: str
    feeds_url: str
    items: int
    hub: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedConfig:
        """Pick the feed settings out of the whole."""
        site = settings.site
        return cls(
            site_url=str(site.base_url),
            site_titles={language: site.title_in(language) for language in site.languages},
            languages=site.languages,
            feeds_dir=str(settings.feeds.dir),
            feeds_url=settings.web.feeds_url,
            items=settings.feeds.items,
            hub=str(settings.feeds.websub_hub) if settings.feeds.websub_hub else None,
        )

    def fingerprint(self) -> str:
        """A digest of everything that shapes every feed; when it changes, all feeds must."""
        settings = asdict(self) | {"rendering": RENDERING_VERSION}
        settings.pop("feeds_dir")
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()

    def home_url(self, language: str) -> str:
        """The site's front page in `language`."""
        return f"{self.site_url.rstrip('/')}/{language}/"


@dataclass
class BuildReport:
    """What a build did."""

    mode: str
    feeds: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    articles: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    changed_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        failed = f", {len(self.failed)} articles failed to render" if self.failed else ""
        return (
            f"{self.mode} build: {self.feeds} feeds, {self.written} files written, "
            f"{self.unchanged} unchanged, {self.removed} removed, "
            f"{self.articles} articles rendered{failed} in {self.seconds:.2f}s"
        )


class FragmentSpool:
    """Rendered articles kept in a temporary file, so memory does not grow with the archive."""

    def __init__(self) -> None:
        """Open an empty spool."""
        self._file = tempfile.TemporaryFile(prefix="syndicate-fragments-")  # noqa: SIM115 - closed in close()
        self._index: dict[int, tuple[int, int, int, int, datetime]] = {}
        self._end = 0

    def add(self, pk: int, rss: bytes, atom: bytes, json_item: bytes, updated: datetime) -> None:
        """Keep one article's fragments."""
        self._file.write(rss + atom + json_item)
        self._index[pk] = (self._end, len(rss), len(atom), len(json_item), updated)
        self._end += len(rss) + len(atom) + len(json_item)

    def __contains__(self, pk: object) -> bool:
        """Whether the article has been rendered."""
        return pk in self._index

    def updated(self, pk: int) -> datetime:
        """When the article last changed."""
        return self._index[pk][4]

    def fragment(self, pk: int, fmt: str) -> bytes:
        """The article's fragment for format `fmt`."""
        offset, rss, atom, json_item, _ = self._index[pk]
        start, length = {
            "rss": (offset, rss),
            "atom": (offset + rss, atom),
            "json": (offset + rss + atom, json_item),
        }[fmt]
        return os.pread(self._file.fileno(), length, start)

    def flush(self) -> None:
        """Make everything added readable."""
        self._file.flush()

    def close(self) -> None:
        """Delete the spool."""
        self._file.close()


class FeedBuilder:
    """One build: a clock, a store connection, a renderer and the feeds folder."""

    def __init__(
        self, connection: Connection, config: FeedConfig, now: datetime, progress: Progress
    ) -> None:
        """Prepare a build as of `now`."""
        self.connection = connection
        self.config = config
        self.now = now
        self.progress = progress
        self.folder = FeedFolder(_path(config.feeds_dir))
        self.renderer = FeedRenderer(
            site_url=config.site_url,
            feeds_url=config.feeds_url,
            hub=config.hub,
        )
        self.reader = ContentReader(
            connection,
            now=now,
            limit=config.items,
            site_titles=config.site_titles,
            languages=config.languages,
        )
        self.spool = FragmentSpool()

    # -- rendering ---------------------------------------------------------------------

    def render_articles(self, pks: Iterable[int], report: BuildReport) -> None:
        """Render every article not yet in the spool; a failing article is logged and left out."""
        wanted = sorted(pk for pk in set(pks) if pk not in self.spool)
        self.progress.phase("Rendering articles", len(wanted))
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            for pk, item in self.reader.items(chunk).items():
                try:
                    fragments = self.renderer.fragments(item)
                except Exception:
                    log.exception("article failed to render article=%s", item.cms_id)
                    report.failed.append(item.cms_id)
                    continue
                updated = max(item.updated_at, item.published_at)
                self.spool.add(pk, fragments.rss, fragments.atom, fragments.json, updated)
            report.articles += len(chunk)
            self.progress.advance(len(chunk))
        self.spool.flush()

    def publish(self, content: FeedContent, report: BuildReport) -> ListedFeed:
        """Write one feed in every format from spooled fragments."""
        pks = [pk for pk in content.article_pks if pk in self.spool]
        updated = max((self.spool.updated(pk) for pk in pks), default=EPOCH)
        head = FeedHead(
            key=content.key,
            language=content.language,
            title=content.title,
            description=content.description,
            home_url=self.config.home_url(content.language),
            updated=updated,
            site_title=self.config.site_titles[content.language],
        )
        changed = False
        for fmt in FORMATS:
            document = self.renderer.feed(head, fmt, [self.spool.fragment(pk, fmt) for pk in pks])
            if self.folder.write(feed_file(content.key, fmt), document):
                report.written += 1
                changed = True
            else:
                report.unchanged += 1
        if changed:
            report.changed_keys.append(content.key)
        report.feeds += 1
        return ListedFeed(
            content.key, content.language, content.kind, content.title, content.subject,
            len(pks), updated,
        )

    def remove(self, key: str, report: BuildReport) -> None:
        """Delete every format of a feed that no longer has anything in it."""
        removed = [self.folder.remove(feed_file(key, fmt)) for fmt in FORMATS]
        if any(removed):
            report.removed += 1
            report.changed_keys.append(key)

    def write_index(self, feeds: Sequence[ListedFeed]) -> None:
        """Write index.opml and index.html for the given feeds."""
        groups = group_feeds(feeds, self.config.languages)
        title = self.config.site_titles[self.config.languages[0]]
        self.folder.write("index.opml", render_opml(groups, site_title=title, feeds_url=self.config.feeds_url))
        self.folder.write("index.html", render_html(groups, site_title=title, feeds_url=self.config.feeds_url))

    # -- the two kinds of build ---------------------------------------------------------

    def full(self, report: BuildReport) -> list[ListedFeed]:
        """Render every feed; remove any feed file that no feed accounts for."""
        self.progress.phase("Reading feeds", None)
        contents = [
            content
            for content in self.reader.everything()
            if content.article_pks or content.kind in STANDING_KINDS
        ]
        self.render_articles((pk for c in contents for pk in c.article_pks), report)
        self.progress.phase("Writing feeds", len(contents))
        listed = []
        for content in contents:
            listed.append(self.publish(content, report))
            self.progress.advance()
        keep = {feed_file(content.key, fmt) for content in contents for fmt in FORMATS}
        for stray in sorted(set(self.folder.feed_files()) - keep):
            self.folder.remove(stray)
            report.removed += 1
        return listed

    def incremental(
        self, keys: Iterable[str], registry: dict[str, ListedFeed], report: BuildReport
    ) -> tuple[list[ListedFeed], list[str]]:
        """Render just `keys`; return the feeds now listed and the keys no longer listed."""
        contents: list[FeedContent] = []
        gone: list[str] = []
        for key in sorted(set(keys)):
            content = self.reader.one(key)
            if content is None or not (content.article_pks or content.kind in STANDING_KINDS):
                gone.append(key)
            else:
                contents.append(content)
        self.render_articles((pk for c in contents for pk in c.article_pks), report)
        listed = [self.publish(content, report) for content in contents]
        for key in gone:
            self.remove(key, report)
        return listed, [key for key in gone if key in registry]

    def time_driven_keys(self, since: datetime) -> set[str]:
        """Feeds that changed because time passed since the last build, not because of ingest."""
        keys: set[str] = set()
        arrived = self.connection.execute(
            select(article.c.pk, article.c.language, article.c.section).where(
                visible(self.now), article.c.published_at > since
            )
        ).all()
        for pk, language, section in arrived:
            tag_slugs = self.connection.scalars(
                select(tag.c.slug).join(article_tag).where(article_tag.c.article_pk == pk)
            )
            topic_slugs = self.connection.scalars(
                select(topic.c.slug).join(article_topic).where(article_topic.c.article_pk == pk)
            )
            keys |= layout.article_keys(language, section, tag_slugs, topic_slugs)
        changed_picks = self.connection.scalars(
            select(article.c.language)
            .join(pick, pick.c.article_pk == article.c.pk)
            .where(
                or_(
                    and_(pick.c.picked_at > since, pick.c.picked_at <= self.now),
                    and_(pick.c.unpicked_at > since, pick.c.unpicked_at <= self.now),
                )
            )
            .distinct()
        )
        keys.update(layout.editors_choice_key(language) for language in changed_picks)
        if _hour(since) != _hour(self.now):
            for language in self.config.languages:
                keys.update(layout.most_viewed_key(language, p) for p in layout.PERIODS)
        return keys


def build_feeds(
    engine: Engine,
    config: FeedConfig,
    *,
    now: datetime | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> BuildReport:
    """Bring the feeds folder up to date with the store; a full build when asked or needed."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        with connection.begin():
            saved = {name: value for name, value in connection.execute(select(state.c.name, state.c.value))}
            builder = FeedBuilder(connection, config, now, progress or NoProgress())
            dirty = {key: token for key, token in connection.execute(select(dirty_feed.c.key, dirty_feed.c.token))}
            registry = _registry(connection)
            mode = "full" if full or _needs_full_build(saved, config, builder.folder) else "incremental"
            report = BuildReport(mode)
            try:
                if mode == "full":
                    listed = builder.full(report)
                    gone = sorted(set(registry) - {feed.key for feed in listed})
                else:
                    since = datetime.fromisoformat(saved["built_at"])
                    keys = set(dirty) | builder.time_driven_keys(since)
                    listed, gone = builder.incremental(keys, registry, report)
            finally:
                builder.spool.close()
        with connection.begin():
            index_changed = _record(connection, listed, gone, registry, full=mode == "full")
            if index_changed:
                builder.write_index(list(_registry(connection).values()))
            for key, token in dirty.items():
                connection.execute(
                    delete(dirty_feed).where(dirty_feed.c.key == key, dirty_feed.c.token == token)
                )
            upsert(
                connection,
                state,
                [
                    {"name": "built_at", "value": now.isoformat()},
                    {"name": "fingerprint", "value": config.fingerprint()},
                ],
                ["name"],
            )
    report.seconds = time.perf_counter() - started
    log.info(
        "feeds built mode=%s feeds=%d written=%d unchanged=%d removed=%d articles=%d "
        "failed=%d seconds=%.3f",
        report.mode, report.feeds, report.written, report.unchanged, report.removed,
        report.articles, len(report.failed), report.seconds,
    )
    return report


def _needs_full_build(saved: dict[str, str], config: FeedConfig, folder: FeedFolder) -> bool:
    return (
        "built_at" not in saved
        or saved.get("fingerprint") != config.fingerprint()
        or not (folder.root / "index.opml").is_file()
    )


def _registry(connection: Connection) -> dict[str, ListedFeed]:
    rows = connection.execute(select(published_feed).order_by(published_feed.c.key))
    return {
        row.key: ListedFeed(
            row.key, row.language, Kind(row.kind), row.title, row.subject, row.items, row.updated_at
        )
        for row in rows
    }


def _record(
    connection: Connection,
    listed: Sequence[ListedFeed],
    gone: Sequence[str],
    registry: dict[str, ListedFeed],
    *,
    full: bool,
) -> bool:
    """Update the registry of published feeds; True when the index must be rewritten."""
    index_changed = full or bool(gone)
    for key in gone:
        connection.execute(delete(published_feed).where(published_feed.c.key == key))
    rows = []
    for feed in listed:
        before = registry.get(feed.key)
        if before is None or (before.title, before.subject) != (feed.title, feed.subject):
            index_changed = True
        rows.append(
            {
                "key": feed.key,
                "language": feed.language,
                "kind": feed.kind.value,
                "title": feed.title,
                "subject": feed.subject,
                "items": feed.items,
                "updated_at": feed.updated_at,
            }
        )
    for start in range(0, len(rows), CHUNK):
        upsert(connection, published_feed, rows[start : start + CHUNK], ["key"])
    return index_changed


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _path(folder: str) -> os.PathLike[str]:
    from pathlib import Path

    return Path(folder)
