"""The job registry: each job a worker can run, under the name and lock it is deferred by.

Jobs are registered on a worker's App with what they need (its `Runtime`); a process that only
asks for work defers by name (`requests`), so it needs neither the job functions nor a Runtime.
A job's arguments are JSON values, never settings: the worker reads its own settings, which
are the cluster's, and the job says only what to do.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy import Engine

from syndicate.feeds.config import FeedConfig
from syndicate.queue.feed_jobs import register_feed_jobs
from syndicate.queue.names import PRUNE, RETRY_STALLED
from syndicate.queue.send_jobs import register_send_jobs
from syndicate.settings import Settings

log = logging.getLogger(__name__)

# Every minute, one worker (procrastinate defers a periodic job once per tick, whichever
# worker sees it first) hands the jobs of workers that stopped beating back to the queue.
RETRY_STALLED_CRON = "* * * * *"
# A worker beats every 10 s (procrastinate's default); three missed beats and it is dead.
STALLED_AFTER_SECONDS = 30.0
PRUNE_CRON = "17 * * * *"  # hourly, off the hour that other schedules favour
# Finished jobs are kept this long, then deleted; failed ones stay for the operator to see.
KEEP_HOURS = 72


@dataclass(frozen=True)
class Runtime:
    """What a worker's jobs need: the store and each part's config, made once at start."""

    engine: Engine
    feeds: FeedConfig
    settings: Settings
    # Set by the worker on SIGTERM: a send batch in flight finishes its messages, hands the rest back.
    stop: threading.Event = field(default_factory=threading.Event)


async def defer_stalled_retry(app: App) -> None:
    """Ask for the stalled jobs' retry now, unless one is waiting already."""
    task = app.configure_task(RETRY_STALLED, queueing_lock=RETRY_STALLED)
    with contextlib.suppress(AlreadyEnqueued):
        await task.defer_async(timestamp=int(time.time()))


def register_jobs(app: App, runtime: Runtime) -> None:
    """Register every job on `app`, each bound to `runtime`."""
    register_feed_jobs(app, runtime.engine, runtime.feeds, runtime.settings.queue.feed_shards)
    register_send_jobs(app, runtime.engine, runtime.settings, runtime.stop)

    @app.periodic(cron=RETRY_STALLED_CRON)
    @app.task(name=RETRY_STALLED, queueing_lock=RETRY_STALLED, pass_context=False)
    async def retry_stalled(timestamp: int) -> None:
        """Queue again the jobs that dead workers (no heartbeat for a while) left unfinished."""
        manager = app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS):
            try:
                await manager.retry_job(job)
            except UniqueViolation:
                # A job of the same queueing lock waits already and will do the same work:
                # this one ends as aborted, or it would be found stalled every minute.
                assert job.id is not None
                await manager.finish_job_by_id_async(job.id, Status.ABORTED, delete_job=False)
                log.warning(
                    "job stalled name=%s id=%s aborted: a twin waits", job.task_name, job.id
                )
                continue
            log.warning("job stalled name=%s id=%s retried", job.task_name, job.id)

    @app.periodic(cron=PRUNE_CRON)
    @app.task(name=PRUNE, queueing_lock=PRUNE, pass_context=False)
    async def prune(timestamp: int) -> None:
        """Delete the jobs that succeeded or were aborted more than KEEP_HOURS ago."""
        await app.job_manager.delete_old_jobs(nb_hours=KEEP_HOURS, include_aborted=True)
