"""The job registry: each job a worker can run, under the name and lock it is deferred by.

Jobs are registered on a worker's App with what they need (its `Runtime`); a process that only
asks for work defers by name (`requests`), so it needs neither the job functions nor a Runtime.
A job's arguments are JSON values, never settings: the worker reads its own settings, which
are the cluster's, and the job says only what to do.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from procrastinate import App
from sqlalchemy import Engine

from syndicate.feeds.config import FeedConfig
from syndicate.queue.feed_jobs import register_feed_jobs
from syndicate.queue.names import PRUNE
from syndicate.queue.send_jobs import register_send_jobs
from syndicate.settings import Settings

log = logging.getLogger(__name__)

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


def register_jobs(app: App, runtime: Runtime) -> None:
    """Register every job on `app`, each bound to `runtime`."""
    queue = runtime.settings.queue
    register_feed_jobs(app, runtime.engine, runtime.feeds, queue.feed_shards, queue.stalled_seconds)
    register_send_jobs(app, runtime.engine, runtime.settings, runtime.stop)

    @app.periodic(cron=PRUNE_CRON)
    @app.task(name=PRUNE, queueing_lock=PRUNE, pass_context=False)
    async def prune(timestamp: int) -> None:
        """Delete the jobs that succeeded or were aborted more than KEEP_HOURS ago."""
        await app.job_manager.delete_old_jobs(nb_hours=KEEP_HOURS, include_aborted=True)
