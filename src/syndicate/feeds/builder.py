"""One feed build's machinery: render articles, publish feeds, remove empty ones, index them.

`FeedBuilder` holds a build's clock, store connection, renderer, target (the feeds folder or a
bucket) and (for large builds, when it is given worker processes) a worker pool; `build_feeds`
(feeds.build) decides what it builds and records the result.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, and_, or_, select

from syndicate.domain.periods import PERIODS
from syndicate.feeds import layout
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.contents import ContentReader, FeedContent, visible
from syndicate.feeds.files import feed_file
from syndicate.feeds.index import ListedFeed, group_feeds, render_html, render_opml
from syndicate.feeds.layout import FORMATS, Kind
from syndicate.feeds.pool import BuildPool, WorkerSetup
from syndicate.feeds.render import FeedRenderer
from syndicate.feeds.spool import FragmentSpool
from syndicate.feeds.stages import Published, Publisher, render_articles
from syndicate.feeds.targets import open_target
from syndicate.store.schema import article, article_tag, article_topic, pick, tag, topic
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)

# Feeds that exist for every language even with no items, so their URLs never 404.
STANDING_KINDS = {Kind.ALL, Kind.EDITORS_CHOICE, Kind.MOST_VIEWED}
CHUNK = 500  # articles a worker renders at a time
FEED_CHUNK = 200  # feeds a worker writes at a time
# Below this many articles to render, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 5_000


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
    # Relative paths (`en/tags/iraq.rss`) of the feed files this build wrote, never the index
    # files and never removed feeds: what to announce to a WebSub hub.
    changed: list[str] = field(default_factory=list)

    def changed_urls(self, feeds_url: str) -> list[str]:
        """The public URLs of the changed feed files, spelled as the feeds' own self links."""
        return [layout.public_url(feeds_url, path) for path in self.changed]

    def summary(self) -> str:
        """One line for people."""
        failed = f", {len(self.failed)} articles failed to render" if self.failed else ""
        return (
            f"{self.mode} build: {self.feeds} feeds, {self.written} files written, "
            f"{self.unchanged} unchanged, {self.removed} removed, "
            f"{self.articles} articles rendered{failed} in {self.seconds:.2f}s"
        )


class FeedBuilder:
    """One build: a clock, a store connection, the renderer, where files go, maybe a pool."""

    def __init__(
        self,
        connection: Connection,
        config: FeedConfig,
        now: datetime,
        progress: Progress,
        processes: WorkerProcesses | None,
    ) -> None:
        """Prepare a build as of `now`; a large one spreads over `processes` when given."""
        self.connection = connection
        self.config = config
        self.now = now
        self.progress = progress
        self.processes = processes
        self.target = open_target(Path(config.feeds_dir), config.bucket)
        self.renderer = FeedRenderer(
            site_url=config.site_url,
            feeds_url=config.feeds_url,
            hub=config.hub,
            embed_frames=config.embed_frames,
        )
        self.publisher = Publisher(
            self.renderer,
            self.target,
            config.site_titles,
            {language: config.home_url(language) for language in config.languages},
        )
        self.reader = ContentReader(
            connection,
            now=now,
            limit=config.items,
            site_titles=config.site_titles,
            languages=config.languages,
        )
        self.spool = FragmentSpool()
        self.pool: BuildPool | None = None
        self._clock = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Log how long the phase that just ended took."""
        now = time.perf_counter()
        log.info("build phase=%s seconds=%.3f", phase, now - self._clock)
        self._clock = now

    def close(self) -> None:
        """Remove the spool and stop any workers."""
        self.spool.close()
        self.target.close()
        if self.pool is not None:
            self.pool.close()

    def _pool_for(self, amount: int) -> BuildPool | None:
        """Workers, when the work is large enough to repay starting them."""
        workers = self.config.workers or os.cpu_count() or 1
        if self.processes is None or workers < 2 or amount < PARALLEL_THRESHOLD:
            return None
        if self.pool is None:
            self.pool = BuildPool(
                self.processes,
                workers,
                WorkerSetup(
                    now=self.now,
                    limit=self.config.items,
                    site_url=self.config.site_url,
                    feeds_url=self.config.feeds_url,
                    hub=self.config.hub,
                    embed_frames=self.config.embed_frames,
                    feeds_dir=Path(self.config.feeds_dir),
                    bucket=self.config.bucket,
                    site_titles=self.config.site_titles,
                    home_urls=self.publisher.home_urls,
                    languages=self.config.languages,
                ),
            )
        return self.pool

    # -- the two stages ----------------------------------------------------------------

    def render(self, pks: Iterable[int], report: BuildReport) -> None:
        """Render every article not yet in the spool."""
        wanted = sorted(pk for pk in set(pks) if pk not in self.spool)
        self.progress.phase("Rendering articles", len(wanted))
        shares = [wanted[start : start + CHUNK] for start in range(0, len(wanted), CHUNK)]
        pool = self._pool_for(len(wanted))
        results = (
            pool.render(shares)
            if pool
            else (render_articles(self.reader, self.renderer, share) for share in shares)
        )
        for rendered in results:
            for fragment in rendered.fragments:
                self.spool.add(*fragment)
            report.failed.extend(rendered.failed)
            done = len(rendered.fragments) + len(rendered.failed)
            report.articles += done
            self.progress.advance(done)
        self.spool.flush()

    def publish(self, contents: Sequence[FeedContent], report: BuildReport) -> list[ListedFeed]:
        """Write every format of the given feeds."""
        self.progress.phase("Writing feeds", len(contents))
        pool = self._pool_for(len(contents) * 10)
        if pool is None:
            results: Iterable[Published] = (
                self.publisher.publish(contents[start : start + FEED_CHUNK], self.spool.reader())
                for start in range(0, len(contents), FEED_CHUNK)
            )
        else:
            shares = []
            for start in range(0, len(contents), FEED_CHUNK):
                share = contents[start : start + FEED_CHUNK]
                needed = {pk for content in share for pk in content.article_pks}
                slots = {pk: self.spool.slots[pk] for pk in needed if pk in self.spool.slots}
                shares.append((share, slots))
            self.spool.flush()
            results = pool.publish(self.spool.path, shares)
        listed: list[ListedFeed] = []
        for published in results:
            listed.extend(published.listed)
            report.written += published.written
            report.unchanged += published.unchanged
            report.changed_keys.extend(published.changed_keys)
            # Publishing reports feeds, not files. A feed's formats carry the same items and
            # nearly always change together; when one did not, announcing it costs the hub
            # one fetch that finds nothing new.
            report.changed.extend(
                feed_file(key, fmt) for key in published.changed_keys for fmt in FORMATS
            )
            report.feeds += len(published.listed)
            self.progress.advance(len(published.listed))
        listed.sort(key=lambda feed: feed.key)
        return listed

    def remove(self, key: str, report: BuildReport) -> None:
        """Delete every format of a feed that no longer has anything in it."""
        removed = [self.target.remove(feed_file(key, fmt)) for fmt in FORMATS]
        if any(removed):
            report.removed += 1
            report.changed_keys.append(key)

    def write_index(self, feeds: Sequence[ListedFeed]) -> None:
        """Write index.opml and index.html for the given feeds."""
        groups = group_feeds(feeds, self.config.languages)
        title = self.config.site_titles[self.config.languages[0]]
        url = self.config.feeds_url
        self.target.write("index.opml", render_opml(groups, site_title=title, feeds_url=url))
        self.target.write("index.html", render_html(groups, site_title=title, feeds_url=url))

    # -- the two kinds of build ---------------------------------------------------------

    def full(self, report: BuildReport) -> list[ListedFeed]:
        """Render every feed; remove any feed file that no feed accounts for."""
        self.progress.phase("Reading feeds", None)
        self.target.survey()  # every feed is written: a bucket lists once instead of asking each
        contents = [
            content
            for content in self.reader.everything()
            if content.article_pks or content.kind in STANDING_KINDS
        ]
        self.lap("plan")
        self.render((pk for content in contents for pk in content.article_pks), report)
        self.lap("render")
        listed = self.publish(contents, report)
        self.lap("publish")
        keep = {feed_file(content.key, fmt) for content in contents for fmt in FORMATS}
        for stray in sorted(set(self.target.feed_files()) - keep):
            self.target.remove(stray)
            report.removed += 1
        self.target.flush()
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
        self.render((pk for content in contents for pk in content.article_pks), report)
        listed = self.publish(contents, report)
        for key in gone:
            self.remove(key, report)
        self.target.flush()
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
                keys.update(layout.most_viewed_key(language, p) for p in PERIODS)
        return keys


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
