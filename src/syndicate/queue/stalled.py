"""Handing back the jobs of dead workers: those running on a worker whose heartbeat stopped.

Every worker looks, at start (a replacement picks up what the dead one left at once) and then
every half `[queue] stalled_seconds`, so a dead worker's job waits at most about one and a half
times that long. Two workers looking at once is harmless: a job is handed back by one, and the
other's attempt finds it no longer running.
"""

from __future__ import annotations

import logging

from procrastinate import App
from procrastinate.exceptions import ConnectorException, UniqueViolation
from procrastinate.jobs import Status

log = logging.getLogger(__name__)


async def retry_stalled_jobs(app: App, stalled_seconds: float) -> int:
    """Queue again the jobs of workers silent for `stalled_seconds`; how many were handed back."""
    manager = app.job_manager
    handed = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds):
        assert job.id is not None
        try:
            await manager.retry_job(job)
        except UniqueViolation:
            # A job of the same queueing lock waits already and will do the same work: this
            # one ends as aborted, or it would be found stalled at every look.
            await manager.finish_job_by_id_async(job.id, Status.ABORTED, delete_job=False)
            log.warning("job stalled name=%s id=%s aborted: a twin waits", job.task_name, job.id)
            continue
        except ConnectorException:
            # Another worker handed it back (or it ended) between the look and the retry.
            log.debug("job stalled name=%s id=%s already handed back", job.task_name, job.id)
            continue
        handed += 1
        log.warning("job stalled name=%s id=%s retried", job.task_name, job.id)
    return handed
