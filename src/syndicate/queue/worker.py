"""`syndicate worker`'s loop: a procrastinate worker with structured logs and a graceful stop.

On SIGTERM or SIGINT the worker says so, stops taking jobs, lets the one in flight finish (no time
limit: a build cut short would be done again by another worker, so waiting is cheaper;
systemd's TimeoutStopSec bounds it if it must) and leaves the database clean. A send batch is
told too (the `stop` event): it finishes and records its messages in flight and hands the
rest of its range back to the queue, rather than keep the worker for the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from procrastinate import App, JobContext
from procrastinate.app import WorkerOptions
from procrastinate.worker import Worker

from syndicate.queue.stalled import retry_stalled_jobs
from syndicate.queue.worker_names import record_worker_name
from syndicate.settings import QueueSettings

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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


def run_worker(
    app: App,
    *,
    name: str,
    queues: Sequence[str] = (),
    stop: threading.Event | None = None,
    timing: QueueSettings | None = None,
) -> None:
    """Run a worker on `app` (its jobs registered) until SIGTERM or SIGINT; `()` is every queue.

    `stop`, when given, is set on that signal, for the jobs in flight to see. `timing` gives
    the heartbeat and the silence after which a worker is dead ([queue]; its defaults if None).
    """
    timing = timing or QueueSettings()
    asyncio.run(_work(app, name, queues, stop or threading.Event(), timing))
    log.info("worker stopped name=%s", name)


async def _work(
    app: App, name: str, queues: Sequence[str], stop: threading.Event, timing: QueueSettings
) -> None:
    # shutdown_graceful_timeout stays unset: no limit on the job in flight (see above).
    options: WorkerOptions = {
        "name": name,
        "update_heartbeat_interval": timing.heartbeat_seconds,
        "stalled_worker_timeout": timing.stalled_seconds,
        # Ours, below: they say so in the log first. Cancelling procrastinate's run is its
        # own graceful stop: no new job, the one in flight finished and recorded.
        "install_signal_handlers": False,
        "worker_middleware": [_log_job],
    }
    if queues:
        options["queues"] = list(queues)
    async with app.open_async():
        # A worker that starts (a replacement, say) first hands back what dead workers left.
        await retry_stalled_jobs(app, timing.stalled_seconds)
        # The worker made here rather than by app.run_worker_async, to learn its queue id
        # (procrastinate leaves Worker.run unannotated).
        worker = Worker(app=app, **options)
        running = asyncio.create_task(worker.run())  # type: ignore[no-untyped-call]
        helpers = [
            asyncio.create_task(_look_for_stalled(app, timing.stalled_seconds)),
            asyncio.create_task(_say_started(app, worker, name, queues)),
        ]
        _stop_on_signals(running, name, stop)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await running
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)


async def _say_started(app: App, worker: Worker, name: str, queues: Sequence[str]) -> None:
    """Once the worker has its queue id, record its name beside it, then log that it started."""
    while worker.worker_id is None:  # procrastinate registers it as its run begins
        await asyncio.sleep(0.05)
    try:
        await record_worker_name(app, worker.worker_id, name)
    except Exception:  # status then shows its number alone; the work goes on
        log.exception("worker name not recorded name=%s id=%s", name, worker.worker_id)
    queues_named = ",".join(queues) or "all"
    log.info("worker started name=%s queues=%s id=%s", name, queues_named, worker.worker_id)


async def _look_for_stalled(app: App, stalled_seconds: float) -> None:
    """Every half `stalled_seconds`, hand back the jobs of workers that died meanwhile."""
    while True:
        await asyncio.sleep(stalled_seconds / 2)
        try:
            await retry_stalled_jobs(app, stalled_seconds)
        except Exception:  # the database away a moment: the next look tries again
            log.exception("stalled jobs look failed")


def _stop_on_signals(running: asyncio.Task[None], name: str, stop: threading.Event) -> None:
    """On SIGTERM or SIGINT, set `stop` and stop `running` gracefully; a second signal ends it."""
    loop = asyncio.get_running_loop()

    def on_signal(number: int) -> None:
        for each in STOP_SIGNALS:
            loop.remove_signal_handler(each)
        log.info(
            "worker stopping name=%s signal=%s: finishing the job in flight",
            name,
            signal.Signals(number).name,
        )
        stop.set()
        running.cancel()

    for number in STOP_SIGNALS:
        loop.add_signal_handler(number, on_signal, number)
