"""Opening the database: engine, pragmas, migrations, and how SQLite transactions take its lock.

Every transaction is a writer unless it says it only reads. On SQLite a writer begins with
`BEGIN IMMEDIATE`: it takes the database's one write lock before its first statement, waiting
for it up to a bound (the busy timeout). A transaction that began as a reader and then wrote
could not wait: when another process had committed meanwhile, SQLite refuses the upgrade at
once with "database is locked" (the subscribe POSTs that failed while an ingest and a send
ran). Writing is the default so that no write transaction can forget to say so: `engine.begin()`,
`engine.connect()` with its first statement, ingest's and the registry's transactions all
take the lock up front. Reads opt out through `reading(engine)` (or `for_reading` on a
connection) and then run under `PRAGMA query_only`, so a write slipped into a read fails loudly
in every test instead of failing under load in production. Other databases ignore both marks:
PostgreSQL locks rows, not the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"
TRANSACTION = "syndicate_transaction"  # execution option: READ, or WRITE (the default)
READ, WRITE = "read", "write"
LOCK_TIMEOUT = "syndicate_lock_timeout"  # execution option: seconds a writer waits for the lock
DEFAULT_LOCK_TIMEOUT = 30.0
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # primary result codes (the low byte of an extended one)
POSTGRES_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_ONLY = "syndicate_query_only"  # connection info: the PRAGMA's current value
_BUSY_MS = "syndicate_busy_ms"  # connection info: the busy timeout it has now

# What an operation may run on: the caller's Connection (its transaction), or an Engine.
Bind = Connection | Engine


class MissingDatabase(Exception):
    """The SQLite file a URL names does not exist, and the caller did not ask to create it."""

    def __init__(self, path: Path) -> None:
        """Name the missing file."""
        super().__init__(f"no database at {path}")
        self.path = path


def open_database(
    url: str,
    *,
    migrate: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    create: bool = True,
) -> Engine:
    """An engine for `url`, its schema brought up to date.

    A missing SQLite file (and its folder) is created when `create`, else MissingDatabase is
    raised: connecting would create an empty one silently. On SQLite a writer waits up to
    `lock_timeout` seconds for another's write to end (`with_lock_timeout` gives one part of
    the program a bound of its own).
    """
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            if not create and not path.exists():
                raise MissingDatabase(path.absolute())
            path.parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": lock_timeout}
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        default_ms = _milliseconds(lock_timeout)

        def pragmas(dbapi_connection: Any, record: Any) -> None:
            _sqlite_pragmas(dbapi_connection)
            record.info[_BUSY_MS] = default_ms

        def begin(connection: Connection) -> None:
            _sqlite_begin(connection, default_ms)

        event.listen(engine, "connect", pragmas)
        event.listen(engine, "begin", begin)
    if migrate:
        upgrade(engine)
    return engine


def _sqlite_pragmas(connection: Any) -> None:
    # The sqlite3 module opens transactions on its own and breaks SAVEPOINT; hand that job to
    # SQLAlchemy (the documented recipe), which then emits BEGIN in _sqlite_begin.
    connection.isolation_level = None
    # WAL lets the server read while a build or ingest writes; foreign keys are off by default.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection, default_ms: int) -> None:
    options = connection.get_execution_options()
    read_only = options.get(TRANSACTION, WRITE) == READ
    info = connection.info
    # Both settings belong to the pooled connection, not to one transaction: set them only
    # when this transaction wants them otherwise than the last one on the same connection.
    if info.get(_QUERY_ONLY, False) != read_only:
        connection.exec_driver_sql(f"PRAGMA query_only = {int(read_only)}")
        info[_QUERY_ONLY] = read_only
    wait_ms = _milliseconds(options[LOCK_TIMEOUT]) if LOCK_TIMEOUT in options else default_ms
    if info.get(_BUSY_MS) != wait_ms:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
        info[_BUSY_MS] = wait_ms
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _milliseconds(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def reading(engine: Engine) -> Engine:
    """`engine`, for transactions that only read: on SQLite they take no lock and wait for none.

    A reader sees the database as it was when it began, while writers go on. Writing through
    it fails ("attempt to write a readonly database").
    """
    return engine.execution_options(**{TRANSACTION: READ})


def with_lock_timeout(engine: Engine, seconds: float) -> Engine:
    """`engine`, whose SQLite writers give up waiting for the lock after `seconds`."""
    return engine.execution_options(**{LOCK_TIMEOUT: seconds})


def for_reading(connection: Connection) -> Connection:
    """Mark `connection`'s next transactions as readers (see `reading`)."""
    return connection.execution_options(**{TRANSACTION: READ})


def for_writing(connection: Connection) -> Connection:
    """Mark `connection`'s next transactions as writers again (the default, so rarely needed)."""
    return connection.execution_options(**{TRANSACTION: WRITE})


def is_busy(error: BaseException) -> bool:
    """Whether `error` says another writer held the lock for longer than this one would wait."""
    original = getattr(error, "orig", None) or error
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return getattr(original, "sqlstate", None) == POSTGRES_LOCK_NOT_AVAILABLE


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
    with reading(engine).connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        command.upgrade(config, "head")


@contextmanager
def transaction(bind: Bind) -> Iterator[Connection]:
    """The caller's connection as it is, or a new transaction on an engine, committed at the end."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    else:
        yield bind
