"""Portable SQL pieces that SQLAlchemy Core spells differently per backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    update: bool = True,
) -> None:
    """Insert rows; on a key conflict update the other columns (or leave the row, if not update)."""
    if not rows:
        return
    statement = _upsert_statement(
        connection.dialect.name, table, tuple(rows[0]), tuple(keys), update=update
    )
    connection.execute(statement, list(rows))


@cache
def _upsert_statement(
    dialect_name: str,
    table: Table,
    names: tuple[str, ...],
    keys: tuple[str, ...],
    *,
    update: bool,
) -> Executable:
    # Built once per shape: the send's ledger upserts hundreds of times a second, and building
    # the statement anew each time cost more than the database's work.
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    columns = [name for name in names if name not in keys]
    built: Executable
    if update and columns:
        built = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: statement.excluded[name] for name in columns},
        )
    else:
        built = statement.on_conflict_do_nothing(index_elements=list(keys))
    return built
