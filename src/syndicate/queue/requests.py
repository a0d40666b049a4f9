"""Asking for work: a job for the workers on PostgreSQL, the same function in-process on SQLite."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import Engine

from syndicate.feeds.build import build_feeds
from syndicate.feeds.builder import BuildReport
from syndicate.feeds.config import FeedConfig
from syndicate.queue.engine import queue_app, uses_queue
from syndicate.queue.feed_jobs import feed_build_lock
from syndicate.queue.names import FEED_BUILD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildRequest:
    """What came of asking for a build: done here (`report`), or queued as `job_id`.

    Neither means a request collapsed into a build already waiting in the queue.
    """

    report: BuildReport | None = None
    job_id: int | None = None

    @property
    def collapsed(self) -> bool:
        """Whether a waiting build of the same kind took this request."""
        return self.report is None and self.job_id is None


def request_feed_build(engine: Engine, config: FeedConfig, *, full: bool = False) -> BuildRequest:
    """Have the feeds built: deferred to the workers on PostgreSQL, built here on SQLite.

    While a build of the same kind waits in the queue, asking again adds nothing: that build
    has not read the store yet, so it will see whatever the new request wanted seen.
    """
    url = engine.url.render_as_string(hide_password=False)
    if not uses_queue(url):
        return BuildRequest(report=build_feeds(engine, config, full=full))
    lock = feed_build_lock(full=full)
    with queue_app(url).open() as app:
        # One lock for every build: they run one at a time, in the order asked (feed_jobs).
        task = app.configure_task(FEED_BUILD, queueing_lock=lock, lock=FEED_BUILD)
        try:
            job_id = task.defer(full=full)
        except AlreadyEnqueued:
            log.info("job collapsed name=%s lock=%s", FEED_BUILD, lock)
            return BuildRequest()
    log.info("job deferred name=%s id=%s lock=%s", FEED_BUILD, job_id, lock)
    return BuildRequest(job_id=job_id)
