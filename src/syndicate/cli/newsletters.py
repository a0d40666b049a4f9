"""The newsletter commands: `syndicate digest ...` and `syndicate subscribers ...`.

Like cli.commands, this is composition only: settings in, parts wired, results on standard output,
logs and progress on standard error, and an exit status that tells the truth.
As there, each command imports the heavy stacks it needs when it runs ("Deferred" below).
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from syndicate.cli.context import Context, Group, fail
from syndicate.domain.periods import KINDS, Kind
from syndicate.observe.progress import ProgressBar
from syndicate.settings import Settings


def _context() -> Context:
    """The command's shared context (settings, store, worker processes)."""
    context = click.get_current_context().find_object(Context)
    assert context is not None
    return context


def _context_settings(*, create: bool = False) -> tuple[Settings, Any]:
    """The settings and an engine on the store (created only if `create`), from the context."""
    context = _context()
    return context.settings, context.open_store(create=create)


def _kind_choice() -> click.Choice[str]:
    return click.Choice(KINDS)


def _kind(value: str) -> Kind:
    """A digest kind checked against the known ones (click has checked it already)."""
    for kind in KINDS:
        if kind == value:
            return kind
    raise click.BadParameter(f"{value!r} is not one of {', '.join(KINDS)}")


# -- digests -----------------------------------------------------------------------------


@click.group(cls=Group)
def digest() -> None:
    """Build, preview and send the digest newsletters."""


@digest.command("build")
@click.argument("kind", type=_kind_choice())
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Edition date (default: today)."
)
@click.option("--lang", "language", help="Language (default: every language of the site).")
def build_digest(kind: str, day: datetime | None, language: str | None) -> None:
    """Build and store an edition; print its id (nothing when skipped as empty)."""
    # Deferred: the digest stack (babel, the store) loads only for digest commands.
    from syndicate.digests.editions import DigestConfig, build_edition

    settings, engine = _context_settings()
    config = DigestConfig.from_settings(settings)
    languages = [language] if language else list(settings.site.languages)
    now = datetime.now(UTC)
    for code in languages:
        try:
            result = build_edition(engine, config, _kind(kind), code, _day(day), now)
        except ValueError as error:
            fail(f"{error}")
        if result.edition_id is None:
            click.echo(f"{kind} {code}: skipped: {result.skipped}", err=True)
            continue
        if not result.created:
            click.echo(f"{result.edition_id}: already built; its content is frozen", err=True)
        click.echo(result.edition_id)


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


@digest.command("send")
@click.argument("edition_id")
@click.option(
    "--no-wait",
    is_flag=True,
    help="With PostgreSQL: queue the send's batches for the workers and return at once.",
)
def send_digest(edition_id: str, no_wait: bool) -> None:
    """Send an edition to its subscribers; resumable, and never twice to anyone.

    With PostgreSQL the send is queued in batches that `syndicate worker`s send, and this
    shows their progress until every batch is done.
    """
    # Deferred: sending (messages, DKIM, transports, the store) loads only for `digest send`.
    from syndicate.cli.sending import finish, say_queued
    from syndicate.delivery.dkim import DkimKeyError
    from syndicate.delivery.message import MessageError
    from syndicate.delivery.send_lease import SendInProgress
    from syndicate.digests.editions import load_edition
    from syndicate.queue import request_send
    from syndicate.send.processes import SendAborted
    from syndicate.service.preflight import warn_about_settings

    settings, engine = _context_settings()
    warn_about_settings(settings)  # as `syndicate run` does: this sends mail too
    processes = _context().worker_processes()
    edition = load_edition(engine, edition_id)
    if edition is None:
        fail(f"no edition {edition_id!r} (build it with `digest build`)")
    # SIGTERM ends the send cleanly: messages in flight are finished and recorded first (with
    # workers, this command stops watching and the workers go on).
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signal, _frame: stop.set())
    try:
        with ProgressBar() as bar:
            outcome = request_send(
                engine,
                settings,
                edition,
                processes=processes,
                wait=not no_wait,
                on_queued=lambda queued: say_queued(queued, waiting=not no_wait),
                on_start=lambda todo: bar.phase(f"Sending {edition_id}", todo),
                on_progress=bar.advance,
                stop=stop,
            )
    except SendInProgress as error:
        fail(f"not sending: {error}")
    except DkimKeyError as error:
        fail(f"{error}")
    except MessageError as error:  # a setting every message shares, such as [mail] from_address
        fail(f"no message can be made: {error}; check [mail]")
    except SendAborted as error:
        click.echo(error.report.summary(), err=False)
        click.echo(f"syndicate: the send stopped: {error}; run it again to go on", err=True)
        sys.exit(1)
    finish(outcome)


@digest.command("preview")
@click.argument("kind_or_id")
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Edition date (default: today)."
)
@click.option("--lang", "language", default=None, help="Language (default: the site's first).")
@click.option(
    "--topics", default=None, help="Followed topic slugs, comma-separated (default: all)."
)
@click.option("--name", default="", help="The recipient's name in the greeting.")
@click.option(
    "--out",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/preview"),
    show_default=True,
    help="Folder the preview files are written to.",
)
def preview_digest(
    kind_or_id: str,
    day: datetime | None,
    language: str | None,
    topics: str | None,
    name: str,
    folder: Path,
) -> None:
    """Write an edition as HTML and text files to look at (a stored one, or a draft of KIND)."""
    # Deferred: the digest stack and its renderer (MJML, Jinja) load only for previews.
    from syndicate.digests.editions import DigestConfig, draft_edition, load_edition
    from syndicate.digests.render import write_preview

    settings, engine = _context_settings()
    if kind_or_id in KINDS:
        config = DigestConfig.from_settings(settings)
        code = language or settings.site.languages[0]
        try:
            with engine.connect() as connection:
                edition = draft_edition(
                    connection,
                    config,
                    _kind(kind_or_id),
                    code,
                    _day(day),
                    datetime.now(UTC),
                )
        except ValueError as error:
            fail(f"{error}")
    else:
        found = load_edition(engine, kind_or_id)
        if found is None:
            fail(f"no edition {kind_or_id!r}")
        edition = found
    paths = write_preview(
        edition,
        folder,
        site_title=settings.site.title_in(edition.language),
        web_url=str(settings.web.public_url),
        max_html_bytes=settings.digests.max_html_bytes,
        followed_topics=topics.split(",") if topics else None,
        name=name,
    )
    for path in paths:
        click.echo(str(path))


@digest.command("run")
@click.argument("kind", type=_kind_choice())
@click.option(
    "--due",
    metavar="MOMENT",
    help="The send time to run it for, such as 2026-11-25T07:00 (in [schedule] timezone "
    "unless it has an offset; default: the latest time it was due).",
)
def run_digest_now(kind: str, due: str | None) -> None:
    """Ask the running service to run the KIND digest job now, as if its time had come."""
    # Deferred: the schedule (apscheduler, sending) loads only for `digest run-now`.
    from syndicate.service.digests import edition_day
    from syndicate.service.requests import DigestRequest, request_digest
    from syndicate.service.scheduler import LEASE_NAME, digest_triggers
    from syndicate.service.send_times import previous_fire
    from syndicate.store.leases import live_holder

    settings, engine = _context_settings()
    now = datetime.now(UTC)
    chosen = _kind(kind)
    trigger = digest_triggers(settings).get(chosen)
    if trigger is None:
        fail(
            f"the {kind} digest is not sent: it is not in [digests] kinds "
            f"({', '.join(settings.digests.kinds) or 'none'})"
        )
    moment = _due_moment(due, settings, now) if due else previous_fire(kind, trigger, now)
    assert moment is not None  # every kind fires at least once a period
    holder = live_holder(engine, LEASE_NAME, now)
    if holder is None:
        # Queued for a later start, the request would mail a past edition out of the blue.
        click.echo(
            "syndicate: nothing queued: no service is running (no process holds the scheduler "
            "lease). Start `syndicate run` and ask again, or send by hand with "
            "`syndicate digest build` and `syndicate digest send`.",
            err=True,
        )
        sys.exit(1)
    request_digest(engine, DigestRequest(chosen, moment, now))
    zone = settings.schedule.zone
    click.echo(
        f"queued: digest-{kind} due {moment.astimezone(zone).isoformat()} "
        f"({settings.schedule.timezone}), edition date {edition_day(moment, zone).isoformat()}; "
        f"{holder} runs it within {settings.schedule.poll_seconds} s (see `syndicate status`)"
    )


def _due_moment(text: str, settings: Settings, now: datetime) -> datetime:
    """The `--due` moment: ISO 8601, local to the schedule's zone without an offset, not ahead."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a moment like 2026-11-25T07:00 or 2026-11-25T07:00+03:30",
            param_hint="'--due'",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.schedule.zone)
    if moment > now:
        raise click.BadParameter(
            f"{text} has not come yet; the scheduler runs the digest then", param_hint="'--due'"
        )
    return moment


# -- subscribers -------------------------------------------------------------------------


@click.group(cls=Group)
def subscribers() -> None:
    """Import and export subscribers."""


@subscribers.command("import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--confirmed", is_flag=True, help="The list is already confirmed (an existing list).")
def import_subscribers(source: Path, confirmed: bool) -> None:
    """Import subscribers from CSV (email, name, language, digests, topics)."""
    # Deferred: the registry and the store load only for subscriber commands.
    from syndicate.subscribers.csvfile import CsvHeaderError, import_csv, open_csv

    settings, engine = _context_settings(create=True)
    try:
        with open_csv(source) as stream:
            report = import_csv(
                engine,
                stream,
                confirmed=confirmed,
                languages=settings.site.languages,
                kinds=settings.digests.kinds,
                on_error=lambda line, reason: click.echo(f"line {line}: {reason}", err=True),
                on_notice=lambda line, note: click.echo(f"line {line}: note: {note}", err=True),
            )
    except OSError as error:
        fail(f"cannot read {source}: {error.strerror or error}")
    except CsvHeaderError as error:
        fail(f"{source}: {error}")
    if report.smtputf8:
        click.echo(
            "syndicate: an address with a non-ASCII local part is delivered only through a "
            "mail server that offers SMTPUTF8 (Postfix does); through one that does not, its "
            "messages are recorded as failed",
            err=True,
        )
    click.echo(report.summary())
    sys.exit(1 if report.rejected else 0)


@subscribers.command("export")
@click.argument("target", default="-", metavar="[FILE|-]")
def export_subscribers(target: str) -> None:
    """Export every subscriber as CSV (standard output by default)."""
    # Deferred: the registry and the store load only for subscriber commands.
    from syndicate.subscribers.csvfile import export_csv

    _, engine = _context_settings()
    if target == "-":
        count = export_csv(engine, sys.stdout)
    else:
        with Path(target).open("w", newline="", encoding="utf-8") as stream:
            count = export_csv(engine, stream)
    click.echo(f"{count} subscribers exported", err=True)
