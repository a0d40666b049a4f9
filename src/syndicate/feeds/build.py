"""Building feeds: work out which feeds changed, render them, and publish them.

A full build renders every feed; an incremental build renders only the feeds that ingest marked
dirty, plus those that time changed (a scheduled article whose moment came, a pick that started
or ended, the Most Viewed windows moving on the hour). Either way a file whose bytes did not
change is left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select

from syndicate.feeds.builder import BuildReport, FeedBuilder, NoProgress, Progress
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.index import ListedFeed
from syndicate.feeds.layout import Kind
from syndicate.feeds.targets import FeedTarget
from syndicate.observe import metrics
from syndicate.store.database import for_reading, for_writing
from syndicate.store.schema import dirty_feed, published_feed, state
from syndicate.store.sql import upsert
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)

KEYS_PER_QUERY = 500  # feed keys in one IN (...) list when reading the registry


def build_feeds(
    engine: Engine,
    config: FeedConfig,
    *,
    now: datetime | None = None,
    full: bool = False,
    progress: Progress | None = None,
    processes: WorkerProcesses | None = None,
) -> BuildReport:
    """Bring the published feeds up to date with the store; a full build when asked or needed.

    A large build spreads over worker processes when `processes` says how to start them;
    without, it all happens in this process.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        # Rendering reads one snapshot of the store and writes only files: a reader, so the
        # store's writers (ingest, subscribers, sends) go on during a long build.
        for_reading(connection)
        with connection.begin():
            saved = {
                name: value
                for name, value in connection.execute(select(state.c.name, state.c.value))
            }
            builder = FeedBuilder(connection, config, now, progress or NoProgress(), processes)
            try:
                dirty = {
                    key: token
                    for key, token in connection.execute(
                        select(dirty_feed.c.key, dirty_feed.c.token)
                    )
                }
                # Asks the target (a bucket may be unreachable): inside the try, so the
                # builder's spool is removed whatever happens.
                full = full or needs_full_build(saved, config, builder.target)
                report = BuildReport("full" if full else "incremental")
                # An incremental build renders what ingest marked and what time changed since.
                since = None if full else datetime.fromisoformat(saved["built_at"])
                rendered = _render(connection, builder, report, set(dirty), since)
            finally:
                builder.close()
        for_writing(connection)  # the record reads the registry, then writes it
        with connection.begin():
            _record_build(connection, builder, rendered, dirty, full=full)
    report.seconds = time.perf_counter() - started
    report.changed.sort()
    count_and_log(report)
    return report


@dataclass(frozen=True)
class _Rendered:
    """What a build's rendering leaves for its record: feeds now listed, and those gone."""

    listed: list[ListedFeed]
    gone: list[str]
    registry: dict[str, ListedFeed]  # the published feeds on record before the build


def _render(
    connection: Connection,
    builder: FeedBuilder,
    report: BuildReport,
    dirty: set[str],
    since: datetime | None,
) -> _Rendered:
    """Render every feed (`since` None, a full build) or those changed since the last build."""
    if since is None:
        registry = read_registry(connection)
        listed = builder.full(report)
        return _Rendered(listed, sorted(set(registry) - {feed.key for feed in listed}), registry)
    keys = dirty | builder.time_driven_keys(since)
    registry = read_registry(connection, keys)
    listed, gone = builder.incremental(keys, registry, report)
    return _Rendered(listed, gone, registry)


def _record_build(
    connection: Connection,
    builder: FeedBuilder,
    rendered: _Rendered,
    dirty: dict[str, str],
    *,
    full: bool,
) -> None:
    """Record the feeds published, rewrite the index if it changed, and note the build done.

    A dirty mark goes only if its token is the one read before rendering: a feed that ingest
    marked again meanwhile stays dirty for the next build.
    """
    index_changed = record_feeds(
        connection, rendered.listed, rendered.gone, rendered.registry, full=full
    )
    if index_changed:
        builder.write_index(list(read_registry(connection).values()))
    note_built(connection, dirty, builder.now, builder.config)


def note_built(
    connection: Connection, dirty: dict[str, str], now: datetime, config: FeedConfig
) -> None:
    """Clear the dirty marks a build read (by token) and record its clock and fingerprint."""
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


def count_and_log(report: BuildReport) -> None:
    """Count the build in the metrics and log it (at debug level when it changed nothing)."""
    metrics.feed_builds.labels(report.mode).inc()
    metrics.feeds_written.inc(report.written)
    # The service builds every poll; a build that changed nothing is not news.
    quiet = report.mode == "incremental" and not (report.written or report.removed or report.failed)
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "feeds built mode=%s feeds=%d written=%d unchanged=%d removed=%d articles=%d "
        "failed=%d seconds=%.3f",
        report.mode,
        report.feeds,
        report.written,
        report.unchanged,
        report.removed,
        report.articles,
        len(report.failed),
        report.seconds,
    )


def needs_full_build(saved: dict[str, str], config: FeedConfig, target: FeedTarget) -> bool:
    """Whether the build must be full: never built, other settings, or no index published."""
    return (
        "built_at" not in saved
        or saved.get("fingerprint") != config.fingerprint()
        or not target.exists("index.opml")
    )


def read_registry(
    connection: Connection, keys: Iterable[str] | None = None
) -> dict[str, ListedFeed]:
    """The published feeds on record (only those of `keys`, when given)."""
    query = select(published_feed).order_by(published_feed.c.key)
    if keys is not None:
        wanted = sorted(keys)
        rows = [
            row
            for start in range(0, len(wanted), KEYS_PER_QUERY)
            for row in connection.execute(
                query.where(published_feed.c.key.in_(wanted[start : start + KEYS_PER_QUERY]))
            )
        ]
    else:
        rows = list(connection.execute(query))
    return {
        row.key: ListedFeed(
            row.key, row.language, Kind(row.kind), row.title, row.subject, row.items, row.updated_at
        )
        for row in rows
    }


def record_feeds(
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
    for start in range(0, len(rows), KEYS_PER_QUERY):
        upsert(connection, published_feed, rows[start : start + KEYS_PER_QUERY], ["key"])
    return index_changed
