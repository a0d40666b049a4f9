"""Opening the database: engine, pragmas, and migrations to the latest schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"
WRITES_FIRST = "syndicate_sqlite_immediate"  # execution option: see for_writing


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """An engine for `url`, its schema brought up to date; SQLite folders are created."""
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    if migrate:
        upgrade(engine)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # The sqlite3 module opens transactions on its own and breaks SAVEPOINT; hand that job to
    # SQLAlchemy (the documented recipe), which then emits BEGIN in _sqlite_begin.
    connection.isolation_level = None
    # WAL lets the server read while a build or ingest writes; foreign keys are off by default.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(WRITES_FIRST, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def for_writing(connection: Connection) -> Connection:
    """Mark `connection`'s transactions as ones that will write, after reading first.

    On SQLite such a transaction must take the write lock when it begins: one that starts as
    a reader fails at once ("database is locked") if another process commits before its first
    write, instead of waiting its turn. Other databases ignore the mark.
    """
    return connection.execution_options(**{WRITES_FIRST: True})


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration pointing at the packaged migrations and this engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply any migrations the database has not had yet (a no-op when current)."""
    config = alembic_config(engine)
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        command.upgrade(config, "head")
