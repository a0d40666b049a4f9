"""What every `syndicate` command shares: `--config`, `--log-level`, the settings and the store.

`--config` and `--log-level` are defined once here and attached to every command and group
by the command classes below, so they work before the subcommand and after it
(`syndicate status --config x.toml`, `syndicate digest send ID --log-level debug`); the last
one given wins.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from syndicate.observe.logs import setup_logging
from syndicate.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from syndicate.workers import WorkerProcesses

DEFAULT_LOG_LEVEL = "info"


class Context:
    """The settings and the store, each opened once on first use; logging starts at info."""

    def __init__(self) -> None:
        """No settings file named yet; the default one applies unless --config says otherwise."""
        self.config: Path | None = None
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self.log_level = DEFAULT_LOG_LEVEL
        setup_logging(DEFAULT_LOG_LEVEL)

    @property
    def settings(self) -> Settings:
        """The settings; a bad one stops the program with one line naming the key (exit 2)."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config)
            except SettingsError as error:
                fail(str(error))
        return self._settings

    @property
    def engine(self) -> Engine:
        """The store, which must exist already (see `open_store`)."""
        return self.open_store(create=False)

    def open_store(self, *, create: bool) -> Engine:
        """An engine on the store, migrated to the current schema (once per command).

        Only the commands that fill a new store (`run`, `ingest`, `subscribers import`) pass
        `create`: for any other, a missing SQLite file means the settings point elsewhere
        than meant (a command run from another folder, say), which is said, exit 2.
        """
        if self._engine is None:
            # Deferred: SQLAlchemy and Alembic load only for commands that open the store.
            from syndicate.store.database import MissingDatabase, open_database

            database = self.settings.database
            try:
                self._engine = open_database(
                    database.url, lock_timeout=database.lock_timeout, create=create
                )
            except MissingDatabase as missing:
                fail(
                    f"no database at {missing.path} ([database] url or "
                    "SYNDICATE_DATABASE__URL; relative paths start from the current folder); "
                    "`syndicate run`, `ingest` or `subscribers import` creates one"
                )
            # The engine lives as long as the command: its pooled connections are closed when
            # the command ends, not by the garbage collector at some later moment (a process
            # that runs commands in-process, as the tests do, goes on after each).
            click.get_current_context().find_root().call_on_close(self._engine.dispose)
        return self._engine

    def worker_processes(self) -> WorkerProcesses:
        """How this command starts worker processes: on its store, logging at its level."""
        # Deferred with the store: multiprocessing and the worker start-up load only when used.
        from syndicate.workers import WorkerProcesses

        return WorkerProcesses.for_engine(self.engine, self.log_level)


def fail(message: str) -> NoReturn:
    """Stop with `syndicate: message` on standard error and exit status 2."""
    click.echo(f"syndicate: {message}", err=True)
    sys.exit(2)


def _take_config(context: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        context.ensure_object(Context).config = value


def _take_log_level(context: click.Context, _param: click.Parameter, value: str | None) -> None:
    state = context.ensure_object(Context)  # logging starts at the default level
    if value is not None:
        state.log_level = value
        setup_logging(value)


def shared_options() -> list[click.Parameter]:
    """`--config` and `--log-level`: the one definition every command and group carries."""
    return [
        click.Option(
            ["--config"],
            type=click.Path(path_type=Path, dir_okay=False),
            expose_value=False,
            callback=_take_config,
            help="Settings file (default: $SYNDICATE_CONFIG, else ./settings.toml).",
        ),
        click.Option(
            ["--log-level"],
            type=click.Choice(["debug", "info", "warning", "error"]),
            expose_value=False,
            callback=_take_log_level,
            help=f"How much to log on standard error (default: {DEFAULT_LOG_LEVEL}).",
        ),
    ]


class Command(click.Command):
    """A command that takes the shared options after its name too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The command as click makes it, plus the shared options."""
        super().__init__(*args, **kwargs)
        self.params.extend(shared_options())


class Group(click.Group):
    """A group whose commands and subgroups (and itself) all take the shared options."""

    command_class = Command
    group_class = type  # subgroups are of this class too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The group as click makes it, plus the shared options."""
        super().__init__(*args, **kwargs)
        self.params.extend(shared_options())


pass_context = click.make_pass_decorator(Context, ensure=True)
