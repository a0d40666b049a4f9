"""Many rows a statement: INSERT and upsert sent to the driver's executemany as plain tuples.

SQLAlchemy's executemany builds a parameter dictionary for every row and converts each value
on the way; at ingest's tens of thousands of rows a second that was half the cost of writing.
Here each statement is spelled once per table and column list, values are converted by the
columns' own bind processors (so the store holds exactly what SQLAlchemy would have written),
and the rows go to the driver as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite

from syndicate.store.schema import UTCDateTime

log = logging.getLogger(__name__)

Convert = Callable[[Any], Any]
_MEMO_LIMIT = 10_000
# A moment to check, once, that a shortcut writes what SQLAlchemy would.
_PROBE = datetime(2025, 8, 20, 9, 30, 0, 123, tzinfo=timezone(timedelta(hours=3, minutes=30)))
_PRAGMAS = {"cache_size": -64 * 1024, "wal_autocheckpoint": 10_000}  # KiB; pages


def converter(connection: Connection, table: Table, column: str) -> Convert:
    """The function that turns a Python value of `column` into what the driver takes."""
    return _converter(connection.dialect, table, column)


def converted(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """`rows` (values of `columns`) with every value converted for the driver."""
    if not rows:
        return []
    # Column by column: one map() each, rather than a Python loop over every value.
    values = [
        cells
        if (convert := _converter(connection.dialect, table, name)) is _same
        else list(map(convert, cells))
        for name, cells in zip(columns, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*values, strict=True))


@cache
def _converter(dialect: Dialect, table: Table, name: str) -> Convert:
    column = table.c[name]
    own = column.type.dialect_impl(dialect).bind_processor(dialect)
    if own is None:
        return _same
    if not isinstance(column.type, UTCDateTime):
        return own
    processor: Convert = own
    if dialect.name == "sqlite" and own(_PROBE) == _sqlite_instant(_PROBE):
        processor = _sqlite_instant_or(own)
    # Rows of one batch share few instants (the hour of views, an article's date on each of
    # its tags): remember conversions rather than redo them.
    memo: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        converted = memo.get(value, memo)
        if converted is memo:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            converted = memo[value] = processor(value)
        return converted

    return convert


def _same(value: Any) -> Any:
    return value


def _sqlite_instant(value: datetime) -> str:
    """An aware instant as SQLAlchemy stores it in SQLite: naive UTC text, in microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_instant_or(processor: Convert) -> Convert:
    """`_sqlite_instant` (twice as fast) where it applies; SQLAlchemy's own elsewhere."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return _sqlite_instant(value)
        return processor(value)  # None, or a naive datetime it refuses

    return convert


def insert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    keys: Sequence[str] = (),
    update: bool = False,
) -> None:
    """Insert converted `rows`; on a conflict over `keys`, update the other columns or skip.

    `columns` name the values of each row, in the table's order of columns.
    """
    if not rows:
        return
    sql = _statement(connection.dialect, table, tuple(columns), tuple(keys), update)
    connection.exec_driver_sql(sql, list(rows))


@cache
def _statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], keys: tuple[str, ...], update: bool
) -> str:
    """The driver's SQL for the statement, with positional placeholders in `columns` order."""
    flavour = postgresql if dialect.name == "postgresql" else sqlite
    statement: Any = flavour.insert(table)
    others = [name for name in columns if name not in keys]
    if keys and update and others:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in others}
        )
    elif keys:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    # Compiled for positional placeholders (psycopg takes %s as well as %(name)s), so rows
    # can stay tuples.
    make: Any = type(dialect)  # every SQLAlchemy dialect takes its paramstyle this way
    positional = make(paramstyle="qmark" if dialect.name == "sqlite" else "format")
    compiled = statement.compile(dialect=positional, column_keys=list(columns))
    if tuple(compiled.positiontup or ()) != columns:
        raise ValueError(f"columns {columns} are not in the order of table {table.name}")
    return str(compiled)


@contextmanager
def bulk_writes(connection: Connection) -> Iterator[None]:
    """SQLite settings for a long run of large batches, on this connection while it lasts.

    A batch inserts links all over the tag and views indexes. With SQLite's default 2 MB page
    cache the changed pages spill to the log before the commit and are written again at it,
    and a checkpoint after every 4 MB of log copies the same index pages into the database
    batch after batch; a bigger cache and a checkpoint every 40 MB write each page less often.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    saved: dict[str, Any] = {
        name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in _PRAGMAS
    }
    for name, value in _PRAGMAS.items():
        connection.exec_driver_sql(f"PRAGMA {name} = {value:d}")
    connection.commit()  # the statements began a transaction; the batches begin their own
    try:
        yield
    finally:
        try:
            connection.rollback()
            for name, value in saved.items():
                connection.exec_driver_sql(f"PRAGMA {name} = {int(value):d}")
            connection.commit()
        except Exception:  # a broken connection: it is discarded, settings and all
            log.debug("could not restore the connection's settings", exc_info=True)
