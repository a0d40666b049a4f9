"""The feed build jobs: a build plans its feeds and, when there are enough, shares them out.

FEED_BUILD plans a build as `build_feeds` would (full or incremental, and which feed keys).
A small build (the incremental one of every poll) it does itself, whole, as before. A large
one it splits by feed key into FEED_SHARD jobs (`[queue] feed_shards` of them, or one per
live worker), each rendering and publishing its share; the last shard to finish writes the
index and records the build (feeds.shared_build). The hub hears of the changed feeds from
the worker that completed the build.

Builds do not overlap: FEED_BUILD jobs share one procrastinate lock, so they run one at a
time, and one that finds a shared build unfinished defers itself again a few seconds later,
so that it never records its clock before the older build's feeds are out (its incremental
successor would skip what the older one has yet to publish). A shared build whose shard jobs
all ended without finishing it (failed for good, or never deferred), or that has run longer
than ABANDON_AFTER, is abandoned: its dirty marks and clock stay as they were, so the next
build does its work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from procrastinate import App, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.types import JSONValue
from sqlalchemy import Engine, text

from syndicate.feeds.build import build_feeds, count_and_log
from syndicate.feeds.builder import BuildReport
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.shards import plan_build, split_keys
from syndicate.feeds.shared_build import (
    ShardJob,
    abandon_build,
    build_shard,
    start_build,
    unfinished_build,
)
from syndicate.feeds.websub import announce_build
from syndicate.queue.liveness import count_live_workers
from syndicate.queue.names import FEED_BUILD, FEED_SHARD

log = logging.getLogger(__name__)

# A build of at most this many feeds is done by one job: sharing it costs more than it saves.
SHARE_ABOVE = 200
# How soon a build that found a shared build unfinished looks again.
WAIT_SECONDS = 5
# A shared build unfinished for this long is given up, whatever its shards are doing.
ABANDON_AFTER = timedelta(minutes=15)
# A failed shard (a bucket that timed out, say) is tried again after 3, 9, 27 and 81 s; a
# worker that died is another matter: its job is retried as stalled (queue.jobs).
SHARD_RETRY = RetryStrategy(max_attempts=5, exponential_wait=3)


def feed_build_lock(*, full: bool) -> str:
    """The queueing lock of a feed build: requests for the same build while one waits are one."""
    return f"{FEED_BUILD}:{'full' if full else 'incremental'}"


def register_feed_jobs(
    app: App, engine: Engine, config: FeedConfig, shards: int, stalled_seconds: float
) -> None:
    """Register the feed build and shard jobs; `shards` 0 shares a build among live workers.

    A worker is live when it beat within `stalled_seconds` ([queue] stalled_seconds).
    """

    @app.task(name=FEED_BUILD, pass_context=False)
    async def build(full: bool = False) -> dict[str, object]:
        """Bring the feeds up to date (a full build when asked), alone or shared out."""
        if await asyncio.to_thread(_must_wait, engine):
            await defer_feed_build(app, full=full, delay=WAIT_SECONDS)
            return {"mode": "waiting"}
        now = datetime.now(UTC)
        count = shards or await asyncio.to_thread(count_live_workers, engine, stalled_seconds)
        # With one worker there is nobody to share with: no plan to read (a full build's
        # reads every feed's contents), the build reads its own.
        plan = (
            None
            if count < 2
            else await asyncio.to_thread(plan_build, engine, config, now, full=full)
        )
        if plan is None or len(plan.keys) <= SHARE_ABOVE:
            report = await asyncio.to_thread(_build_whole, engine, config, now, full)
            return {"mode": report.mode, "written": report.written, "failed": len(report.failed)}
        shared = await asyncio.to_thread(start_build, engine, plan, count)
        for number, keys in enumerate(split_keys(plan.keys, count)):
            await app.configure_task(FEED_SHARD).defer_async(
                build=shared.pk,
                shard=number,
                keys=list[JSONValue](keys),
                now=plan.now.isoformat(),
                mode=plan.mode,
            )
        log.info(
            "feeds build shared build=%d mode=%s shards=%d feeds=%d",
            shared.pk, plan.mode, count, len(plan.keys),
        )  # fmt: skip
        return {"mode": plan.mode, "build": shared.pk, "shards": count, "feeds": len(plan.keys)}

    @app.task(name=FEED_SHARD, pass_context=False, retry=SHARD_RETRY)
    async def shard(
        build: int, shard: int, keys: list[str], now: str, mode: str
    ) -> dict[str, object]:
        """Publish one shard's feeds of a shared build; the last shard finishes the build."""
        job = ShardJob(build, shard, keys, datetime.fromisoformat(now), mode)
        outcome = await asyncio.to_thread(build_shard, engine, config, job)
        if outcome.finished is not None:
            count_and_log(outcome.finished)
            await asyncio.to_thread(_announce, config, outcome.finished)
        written = outcome.report.written if outcome.report else 0
        return {"written": written, "finished": outcome.finished is not None}


async def defer_feed_build(app: App, *, full: bool, delay: int = 0) -> int | None:
    """Defer a feed build (in `delay` seconds); None when one of its kind waits already."""
    task = app.configure_task(
        FEED_BUILD,
        queueing_lock=feed_build_lock(full=full),
        lock=FEED_BUILD,  # builds run one at a time, in the order asked
        schedule_in={"seconds": delay} if delay else None,
    )
    with contextlib.suppress(AlreadyEnqueued):
        return await task.defer_async(full=full)
    return None


def _build_whole(engine: Engine, config: FeedConfig, now: datetime, full: bool) -> BuildReport:
    """A small build in this job, as `build_feeds` does it, then the hub told."""
    report = build_feeds(engine, config, now=now, full=full)
    _announce(config, report)
    return report


def _announce(config: FeedConfig, report: BuildReport) -> None:
    """Tell the WebSub hub of the feeds a completed build changed (best effort)."""
    if report.changed:
        announce_build(config, report)


def _must_wait(engine: Engine) -> bool:
    """Whether a shared build is still on its way (an abandoned one is given up here)."""
    build = unfinished_build(engine)
    if build is None:
        return False
    with engine.connect() as connection:
        alive = connection.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"
                " AND status IN ('todo', 'doing') AND (args->>'build')::int = :pk"
            ),
            {"name": FEED_SHARD, "pk": build.pk},
        )
    age = datetime.now(UTC) - build.started_at
    if alive and age < ABANDON_AFTER:
        log.info("feeds build waits for build=%d shards_left=%d", build.pk, alive)
        return True
    abandon_build(engine, build.pk)
    log.warning(
        "feeds build abandoned build=%d shards_alive=%d seconds=%.0f",
        build.pk, alive or 0, age.total_seconds(),
    )  # fmt: skip
    return False
