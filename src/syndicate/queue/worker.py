"""`syndicate worker`'s loop: a procrastinate worker with structured logs and a graceful stop.

On SIGTERM or SIGINT procrastinate stops taking jobs, lets the one in flight finish (no time
limit: a build or a batch cut short would be done again by another worker, so waiting is
cheaper; systemd's TimeoutStopSec bounds it if it must) and leaves the database clean.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from procrastinate import App, JobContext
from procrastinate.worker import Worker

log = logging.getLogger(__name__)


async def _log_job(
    call_next: Callable[[], Awaitable[Any]], context: JobContext, _worker: Worker
) -> Any:
    """Log each job's start and end: `job done name=… id=… seconds=…`, or `job failed`."""
    job = context.job
    log.info("job started name=%s id=%s", job.task_name, job.id)
    started = time.perf_counter()
    try:
        result = await call_next()
    except BaseException:
        seconds = time.perf_counter() - started
        log.exception("job failed name=%s id=%s seconds=%.3f", job.task_name, job.id, seconds)
        raise
    seconds = time.perf_counter() - started
    log.info("job done name=%s id=%s seconds=%.3f", job.task_name, job.id, seconds)
    return result


def run_worker(app: App, *, name: str, queues: Sequence[str] = ()) -> None:
    """Run a worker on `app` (its jobs registered) until SIGTERM or SIGINT; `()` is every queue."""
    log.info("worker started name=%s queues=%s", name, ",".join(queues) or "all")
    app.run_worker(
        name=name,
        queues=list(queues) or None,
        install_signal_handlers=True,
        shutdown_graceful_timeout=None,
        worker_middleware=[_log_job],
    )
    log.info("worker stopped name=%s", name)
