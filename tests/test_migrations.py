"""Migrations: a fresh database migrated to the head has exactly the tables the code uses."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from syndicate.store.database import alembic_config
from syndicate.store.schema import metadata


def _ours(name: str | None, kind: str, _parent: dict[str, str | None]) -> bool:
    # On PostgreSQL the migrations also make procrastinate's work queue (0004), whose tables
    # are procrastinate's to define, not schema.py's, and the names of its workers (0007),
    # read by SQL beside them: they are left out of the comparison.
    table = name or ""
    return not (kind == "table" and (table.startswith("procrastinate_") or table == "queue_worker"))


def test_migrations_create_the_schema_the_code_expects(engine: Engine) -> None:
    """Alembic finds nothing to add, drop or alter between the migrated store and schema.py."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _ours})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_the_work_queue_is_made_on_postgresql_only(engine: Engine) -> None:
    """PostgreSQL gets procrastinate's job table from the migrations; SQLite has no queue."""
    tables = set(inspect(engine).get_table_names())
    assert ("procrastinate_jobs" in tables) == (engine.dialect.name == "postgresql")


def test_the_work_queue_migration_goes_down_and_up_again(engine: Engine) -> None:
    """Downgrading past 0004 drops procrastinate's tables; upgrading makes them again."""
    config = alembic_config(engine)
    command.downgrade(config, "0003")
    assert not any(name.startswith("procrastinate_") for name in inspect(engine).get_table_names())
    command.upgrade(config, "head")
    tables = set(inspect(engine).get_table_names())
    assert ("procrastinate_jobs" in tables) == (engine.dialect.name == "postgresql")


@pytest.mark.parametrize(
    ("before", "table", "everywhere"),
    [
        ("0004", "rate_schedule", True),
        ("0005", "feed_build", True),
        ("0006", "queue_worker", False),
    ],
)
def test_each_later_migration_goes_down_and_up_again(
    engine: Engine, before: str, table: str, everywhere: bool
) -> None:
    """Downgrading to `before` drops the table its next migration made; upgrading makes it again.

    A table of the work queue's (not `everywhere`) is made on PostgreSQL only.
    """
    config = alembic_config(engine)
    command.downgrade(config, before)
    assert table not in inspect(engine).get_table_names()
    command.upgrade(config, "head")
    made = everywhere or engine.dialect.name == "postgresql"
    assert (table in inspect(engine).get_table_names()) == made
