"""A feed build shared by several workers: its record, one shard's work, and the finish.

The build's row (`feed_build`) holds what its last shard needs: the clock, the mode and the
dirty marks the build read. A shard renders and publishes the feeds of its keys, then, in one
transaction holding the build's row (SELECT ... FOR UPDATE, so shards record one at a time),
records them in the registry and marks itself done (`feed_build_shard`). The shard that finds
every shard done finishes the build in that same transaction: it removes the strays of a full
build, writes the index (after every feed: each shard published before it recorded), clears
the dirty marks by token and records the build's clock and fingerprint. A shard run again
(its worker died) after it recorded finds itself done and does nothing; one that died before
recording does its share again, unchanged files left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from syndicate.feeds.build import note_built, read_registry, record_feeds
from syndicate.feeds.builder import BuildReport, FeedBuilder, NoProgress
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.files import feed_file
from syndicate.feeds.layout import FORMATS
from syndicate.feeds.shards import BuildPlan
from syndicate.store.database import for_reading
from syndicate.store.schema import feed_build, feed_build_shard

log = logging.getLogger(__name__)

# Finished builds' rows are kept this long (for the operator), then deleted by a later build.
KEEP_BUILDS = timedelta(days=7)
# What a shard reports, summed over shards for the build's report.
COUNTS = ("feeds", "written", "unchanged", "removed", "articles")


@dataclass(frozen=True)
class SharedBuild:
    """A shared build on record."""

    pk: int
    mode: str
    now: datetime
    shards: int
    started_at: datetime


def start_build(engine: Engine, plan: BuildPlan, shards: int) -> SharedBuild:
    """Record a build of `plan` shared in `shards` shards; its row, for the shards' jobs."""
    started = datetime.now(UTC)
    with engine.begin() as connection:
        pk = connection.execute(
            insert(feed_build)
            .values(
                mode=plan.mode, clock=plan.now, shards=shards, dirty=plan.dirty, started_at=started
            )
            .returning(feed_build.c.pk)
        ).scalar_one()
    return SharedBuild(pk, plan.mode, plan.now, shards, started)


def unfinished_build(engine: Engine) -> SharedBuild | None:
    """The shared build that has not finished (nor been abandoned), if there is one."""
    with engine.connect() as connection:
        row = connection.execute(
            select(feed_build).where(feed_build.c.finished_at.is_(None)).order_by(feed_build.c.pk)
        ).first()
    if row is None:
        return None
    return SharedBuild(row.pk, row.mode, row.clock, row.shards, row.started_at)


def abandon_build(engine: Engine, pk: int) -> None:
    """Give up on a build whose shards will not finish it: its marks and clock stay as they were."""
    with engine.begin() as connection:
        connection.execute(
            update(feed_build)
            .where(feed_build.c.pk == pk, feed_build.c.finished_at.is_(None))
            .values(finished_at=datetime.now(UTC), outcome="abandoned")
        )


@dataclass(frozen=True)
class ShardOutcome:
    """What one shard's job did: its report (None: nothing left to do), the build's if last."""

    report: BuildReport | None
    finished: BuildReport | None = None


@dataclass(frozen=True)
class ShardJob:
    """What one shard's job says: its build, its number, its feed keys, the build's clock."""

    build_pk: int
    shard: int
    keys: list[str]
    now: datetime
    mode: str


def build_shard(engine: Engine, config: FeedConfig, job: ShardJob) -> ShardOutcome:
    """Render and publish a shard's feeds, record them, and finish the build if it is last."""
    pk, shard, keys = job.build_pk, job.shard, job.keys
    if not _pending(engine, pk, shard):
        log.info("feeds shard skipped build=%d shard=%d reason=done_or_abandoned", pk, shard)
        return ShardOutcome(None)
    report = BuildReport(job.mode)
    with engine.connect() as connection:
        for_reading(connection)  # one snapshot, as a whole build reads
        with connection.begin():
            builder = FeedBuilder(connection, config, job.now, NoProgress(), None)
            try:
                registry = read_registry(connection, keys)
                listed, gone = builder.incremental(keys, registry, report)
            finally:
                builder.close()
    # A shard run again after its worker died finds the files it wrote unchanged: the feeds
    # whose record changes are announced all the same, or the hub would never hear of them.
    unrecorded = {feed.key for feed in listed if registry.get(feed.key) != feed}
    report.changed.extend(
        feed_file(key, fmt)
        for key in sorted(unrecorded - set(report.changed_keys))
        for fmt in FORMATS
    )
    with engine.begin() as connection:
        locked = connection.execute(
            select(feed_build).where(feed_build.c.pk == pk).with_for_update()
        ).one_or_none()
        done = set(
            connection.scalars(
                select(feed_build_shard.c.shard).where(feed_build_shard.c.build_pk == pk)
            )
        )
        if locked is None or locked.finished_at is not None or shard in done:
            return ShardOutcome(None)
        changed = record_feeds(connection, listed, gone, registry, full=False)
        connection.execute(
            insert(feed_build_shard).values(
                build_pk=pk, shard=shard, index_changed=changed, report=_as_json(report)
            )
        )
        log.info(
            "feeds shard done build=%d shard=%d shards=%d feeds=%d written=%d removed=%d",
            pk, shard, locked.shards, report.feeds, report.written, report.removed,
        )  # fmt: skip
        if len(done) + 1 < locked.shards:
            return ShardOutcome(report)
        recorded = SharedBuild(
            locked.pk, locked.mode, locked.clock, locked.shards, locked.started_at
        )
        return ShardOutcome(report, _finish(connection, config, recorded))


def _pending(engine: Engine, pk: int, shard: int) -> bool:
    """Whether the build is unfinished and this shard has not recorded its feeds."""
    with engine.connect() as connection:
        build = connection.execute(
            select(feed_build.c.finished_at).where(feed_build.c.pk == pk)
        ).first()
        recorded = connection.scalar(
            select(feed_build_shard.c.shard).where(
                feed_build_shard.c.build_pk == pk, feed_build_shard.c.shard == shard
            )
        )
    return build is not None and build.finished_at is None and recorded is None


def _finish(connection: Connection, config: FeedConfig, build: SharedBuild) -> BuildReport:
    """Finish the build whose every shard is done: strays, index, dirty marks, clock."""
    rows = connection.execute(
        select(feed_build_shard.c.index_changed, feed_build_shard.c.report).where(
            feed_build_shard.c.build_pk == build.pk
        )
    ).all()
    report = _merged(build.mode, [row.report for row in rows])
    full = build.mode == "full"
    dirty = connection.scalar(select(feed_build.c.dirty).where(feed_build.c.pk == build.pk))
    builder = FeedBuilder(connection, config, build.now, NoProgress(), None)
    try:
        registry = read_registry(connection)
        if full:  # files that no feed on record accounts for, as a whole full build removes
            keep = {feed_file(key, fmt) for key in registry for fmt in FORMATS}
            for stray in sorted(set(builder.target.feed_files()) - keep):
                builder.target.remove(stray)
                report.removed += 1
        if full or any(row.index_changed for row in rows):
            builder.write_index(list(registry.values()))
    finally:
        builder.close()
    note_built(connection, dirty or {}, build.now, config)
    finished = datetime.now(UTC)
    connection.execute(
        update(feed_build)
        .where(feed_build.c.pk == build.pk)
        .values(finished_at=finished, outcome="done")
    )
    connection.execute(delete(feed_build).where(feed_build.c.finished_at < finished - KEEP_BUILDS))
    report.seconds = (finished - build.started_at).total_seconds()
    log.info("feeds index written build=%d mode=%s shards=%d", build.pk, build.mode, build.shards)
    return report


def _as_json(report: BuildReport) -> dict[str, Any]:
    """A shard's report as the JSON its row keeps."""
    counts: dict[str, Any] = {name: getattr(report, name) for name in COUNTS}
    return counts | {"failed": report.failed, "changed": report.changed}


def _merged(mode: str, reports: list[dict[str, Any]]) -> BuildReport:
    """The build's report: the shards' reports added up."""
    merged = BuildReport(mode)
    for each in reports:
        for name in COUNTS:
            setattr(merged, name, getattr(merged, name) + int(each[name]))
        merged.failed.extend(each["failed"])
        merged.changed.extend(each["changed"])
    merged.changed.sort()
    return merged
