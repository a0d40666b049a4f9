"""`syndicate worker`: run jobs from the PostgreSQL store's queue until SIGTERM or SIGINT."""

from __future__ import annotations

import os
import socket

import click

from syndicate.cli.context import Command, Context, fail, pass_context

SQLITE_REFUSAL = (
    "workers need PostgreSQL ([database] url); with SQLite `syndicate run` does all the work itself"
)


@click.command(cls=Command)
@click.option(
    "--name",
    default=None,
    help="This worker's name in logs and the queue (default: HOST-PID).",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Take jobs from this queue only (repeatable; default: every queue).",
)
@pass_context
def worker(context: Context, name: str | None, queues: tuple[str, ...]) -> None:
    """Run jobs from the store's work queue until SIGTERM (PostgreSQL only)."""
    # Deferred: procrastinate and the job stack load for this command only.
    from syndicate.feeds.config import FeedConfig
    from syndicate.queue import Runtime, queue_app, register_jobs, run_worker, uses_queue

    settings = context.settings
    if not uses_queue(settings.database.url):
        fail(SQLITE_REFUSAL)
    engine = context.engine  # migrated: the queue's tables are there before the first job
    app = queue_app(settings.database.url)
    runtime = Runtime(engine=engine, feeds=FeedConfig.from_settings(settings), settings=settings)
    register_jobs(app, runtime)
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    run_worker(app, name=name, queues=queues, stop=runtime.stop, timing=settings.queue)
