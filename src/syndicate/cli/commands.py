"""The `syndicate` command: the composition root where settings meet the parts.

Results (an edition id, a summary) go to standard output; logs and progress to standard error.
Exit status: 0 success, 1 the work ran but some of it failed (rejected records, say),
2 the work could not start or go on (bad settings, unreadable input, a failing store).

A command imports the heavy stacks it needs (the store's SQLAlchemy, the feed renderer, the
web server, the scheduler) when it runs, not when the program starts: `syndicate config` or
`--help` should not pay for them. Those imports sit in the commands, each marked "Deferred".
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from syndicate import __version__
from syndicate.cli.bounces import bounces
from syndicate.cli.context import Context, Group, fail, pass_context
from syndicate.cli.newsletters import digest, subscribers
from syndicate.cli.worker import worker
from syndicate.demo import generate_corpus
from syndicate.observe.progress import ProgressBar
from syndicate.settings import Settings, masked

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["Context", "main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syndicate")
@pass_context
def main(_context: Context) -> None:
    """Syndicate publishes a news site's articles as feeds and digest newsletters."""


# -- settings ----------------------------------------------------------------------------


@main.command("config")
@pass_context
def show_config(context: Context) -> None:
    """Print the effective settings as TOML, secrets masked."""
    click.echo(_toml(masked(context.settings)), nl=False)


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """Settings as TOML: a table per section, nested sections as dotted tables."""
    lines = [f"[{prefix}]"] if prefix else []
    lines += [
        f"{key} = {_toml_value(value)}"
        for key, value in data.items()
        if not isinstance(value, dict)
    ]
    text = "".join(line + "\n" for line in lines)
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{prefix}.{key}" if prefix else key
            text += ("\n" if text else "") + _toml(value, name)
    return text


def _toml_value(value: Any) -> str:
    if value is None:
        return '""  # not set'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


# -- the store ---------------------------------------------------------------------------


@main.command()
@click.argument("source", metavar="FILE|-")
@pass_context
def ingest(context: Context, source: str) -> None:
    """Read JSON Lines records (articles, topics, picks, views) into the store."""
    # Deferred: the store and ingest (SQLAlchemy, the sanitiser) load for this command only.
    from sqlalchemy.exc import SQLAlchemyError

    from syndicate.sources.ingest import StoreFailure, ingest_lines

    settings = context.settings

    def reject(line: int, reason: str) -> None:
        click.echo(f"line {line}: {reason}", err=True)

    try:
        # The input first: one that cannot be read leaves no new, empty store behind.
        with _open_input(source) as (stream, size):
            engine = context.open_store(create=True)
            with ProgressBar() as bar:
                bar.phase(f"Ingesting {source}", size)
                report = ingest_lines(
                    engine,
                    stream,
                    settings.site.languages,
                    on_reject=reject,
                    on_progress=bar.advance if size else None,
                    settings=settings.ingest,
                )
    except OSError as error:
        fail(f"cannot read {source}: {error.strerror or error}")
    except StoreFailure as failure:
        click.echo(failure.report.summary())
        fail(f"{failure}")
    except SQLAlchemyError as error:  # the store cannot be opened at all
        fail(f"the store failed: {str(error).splitlines()[0]}")
    click.echo(report.summary())
    sys.exit(1 if report.rejected else 0)


@contextmanager
def _open_input(source: str) -> Iterator[tuple[IO[bytes], int | None]]:
    if source == "-":
        yield sys.stdin.buffer, None
        return
    path = Path(source)
    with path.open("rb") as stream:
        yield stream, path.stat().st_size if path.is_file() else None


@main.command("demo-data")
@click.option(
    "--articles", default=3000, show_default=True, type=click.IntRange(1), help="How many articles."
)
@click.option(
    "--tags",
    default=2000,
    show_default=True,
    type=click.IntRange(1),
    help="How many distinct tags.",
)
@click.option(
    "--seed", default=1, show_default=True, type=int, help="Seed: same seed, same corpus."
)
@click.option(
    "--now",
    "at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    help="The moment the corpus leads up to, taken to the hour (default: the current hour). "
    "Same arguments and --now, same bytes.",
)
def demo_data(articles: int, tags: int, seed: int, at: datetime | None) -> None:
    """Write a demo corpus (topics, articles, picks, views) as JSON Lines to standard output."""
    now = (at or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = sys.stdout
    for record in generate_corpus(articles=articles, tags=tags, seed=seed, now=now):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- feeds -------------------------------------------------------------------------------


@main.command()
@click.option("--full", is_flag=True, help="Rebuild every feed, not just those that changed.")
@pass_context
def build(context: Context, full: bool) -> None:
    """Write the feeds that changed since the last build (all of them the first time)."""
    report = _build(context, full=full)
    click.echo(report.summary())
    sys.exit(1 if report.failed else 0)


def _build(context: Context, *, full: bool = False) -> Any:
    """Build the feeds with a progress bar; the build's report. Files it cannot publish: exit 2."""
    # Deferred: the feed stack (feedgen, lxml, the renderer) loads only for commands that build.
    from syndicate.feeds.bucket import PublishError
    from syndicate.feeds.build import build_feeds
    from syndicate.feeds.config import FeedConfig

    try:
        with ProgressBar() as bar:
            return build_feeds(
                context.engine,
                FeedConfig.from_settings(context.settings),
                full=full,
                progress=bar,
                processes=context.worker_processes(),
            )
    except PublishError as error:
        fail(str(error))


@main.command()
@pass_context
def serve(context: Context) -> None:
    """Serve the feeds and pages over HTTP, without the scheduler."""
    # Deferred: the web stack (Starlette, uvicorn) loads only for commands that serve.
    from syndicate.web.server import serve as run_server
    from syndicate.web.site import create_site

    listener = _listen(context)
    run_server(create_site(context.engine, context.settings), context.settings.web, listener)


@main.command()
@click.option(
    "--seed-demo",
    is_flag=True,
    help="Load the demo corpus first if the store has no articles.",
)
@pass_context
def run(context: Context, seed_demo: bool) -> None:
    """Run the service: serve HTTP, poll the sources, rebuild feeds, send digests on schedule."""
    # Deferred: the whole service (web, scheduler, sending) loads only for `run`.
    from syndicate.service.runner import run_service

    settings = context.settings
    # The port first: a taken one stops the start before a long build, and before the banner.
    listener = _listen(context)
    engine = context.open_store(create=True)
    if seed_demo:
        _seed_demo(context)
    click.echo(_first_build(context), err=True)
    inbox = settings.sources.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    click.echo(_banner(settings), err=True)
    run_service(engine, settings, listener, context.worker_processes(), _companions(context))


def _companions(context: Context) -> Any:
    """The `syndicate worker`s this service runs beside itself ([queue] run_workers; PostgreSQL)."""
    # Deferred: the service stack loads only for `run`.
    from syndicate.queue import uses_queue
    from syndicate.service.companions import Companions

    settings = context.settings
    if not uses_queue(settings.database.url):
        return Companions([])
    shared = ["--log-level", context.log_level]
    if context.config is not None:
        shared += ["--config", str(context.config)]
    base = f"{socket.gethostname()}-{os.getpid()}"
    return Companions(
        [
            [sys.executable, "-m", "syndicate", "worker", "--name", f"{base}-w{number}", *shared]
            for number in range(1, settings.queue.run_workers + 1)
        ]
    )


def _first_build(context: Context) -> str:
    """Bring the feeds up to date as the service starts; one line saying how.

    With a work queue (PostgreSQL) the build is the workers' like every other, so that nodes
    starting together never publish side by side: asking again while one waits adds nothing.
    """
    # Deferred: the queue's stack loads only where it is used.
    from syndicate.queue import request_feed_build, uses_queue

    if not uses_queue(context.settings.database.url):
        return str(_build(context).summary())
    from syndicate.feeds.config import FeedConfig

    asked = request_feed_build(context.engine, FeedConfig.from_settings(context.settings))
    waiting = "one already waits" if asked.collapsed else f"job {asked.job_id}"
    return f"feeds: a build is asked of the workers ({waiting}); /healthz answers once one is out"


def _listen(context: Context) -> socket.socket:
    """The bound socket the server will listen on; a taken address stops with exit 2."""
    # Deferred: the web stack loads only for commands that serve.
    from syndicate.web.server import ListenError, listen

    try:
        return listen(context.settings.web)
    except ListenError as error:
        fail(str(error))


def _banner(settings: Settings) -> str:
    """Where to look once the service runs."""
    site = str(settings.web.public_url).rstrip("/")
    feeds_url = settings.web.feeds_url
    return "\n".join(
        [
            "",
            f"  Feeds index    {feeds_url}   (OPML: {feeds_url}index.opml)",
            f"  Subscribe      {site}/subscribe/",
            f"  Digest archive {site}/digests/",
            f"  Health         {site}/healthz   ·   metrics {site}/metrics",
            f"  Outbox (mail)  {settings.mail.outbox_dir}/new/",
            f"  Inbox          {settings.sources.inbox_dir}/  (drop JSON Lines files here)",
            f"  Status         {_command()} status   ·   stop with Ctrl-C or SIGTERM",
            *_path_hint(),
            "",
        ]
    )


def _command() -> str:
    """How the operator can call this command again: its name if PATH finds it, else its path."""
    script = Path(sys.argv[0])
    if script.name != "syndicate" or shutil.which("syndicate") == str(script.absolute()):
        return "syndicate"
    try:
        return str(script.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(script.absolute())


def _path_hint() -> list[str]:
    """A line saying how to put `syndicate` on PATH, when it is not there (`make run`)."""
    command = _command()
    if command == "syndicate":
        return []
    return [f"                 (`. {Path(command).parent}/activate` puts `syndicate` on PATH)"]


@main.command()
@pass_context
def status(context: Context) -> None:
    """Show the scheduler: who runs it, each job's last and next run, the last sends, the cluster."""
    # Deferred: the schedule (apscheduler) and the store load only for `status`.
    from syndicate.service.status import format_status, read_status

    settings = context.settings
    click.echo(format_status(read_status(context.engine, settings), settings), nl=False)


def _seed_demo(context: Context) -> None:
    """Load the demo corpus and yesterday's daily editions into a store with no articles."""
    # Deferred, like `ingest`: the store and ingest load only when `run --seed-demo` seeds.
    from sqlalchemy import func, select

    from syndicate.sources.ingest import ingest_lines
    from syndicate.store.database import reading
    from syndicate.store.schema import article

    engine = context.engine
    with reading(engine).connect() as connection:
        if connection.scalar(select(func.count()).select_from(article)):
            return
    click.echo("The store is empty: loading the demo corpus…", err=True)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    lines = (
        json.dumps(record, ensure_ascii=False).encode() + b"\n"
        for record in generate_corpus(now=now)
    )
    report = ingest_lines(
        engine,
        lines,
        context.settings.site.languages,
        on_reject=lambda line, reason: click.echo(f"demo line {line}: {reason}", err=True),
    )
    click.echo(f"Demo corpus: {report.summary()}", err=True)
    _demo_editions(engine, context.settings, now)


def _demo_editions(engine: Engine, settings: Settings, now: datetime) -> None:
    """Yesterday's daily editions, so the archive has something to show from the start."""
    # Deferred: the digest stack (babel, the store) loads only when `run --seed-demo` seeds.
    from syndicate.digests.editions import DigestConfig, build_edition

    config = DigestConfig.from_settings(settings)
    if "daily" not in config.kinds:
        return
    yesterday = now.astimezone(settings.schedule.zone).date() - timedelta(days=1)
    for language in settings.site.languages:
        build_edition(engine, config, "daily", language, yesterday, now)


main.add_command(digest)
main.add_command(subscribers)
main.add_command(bounces)
main.add_command(worker)
