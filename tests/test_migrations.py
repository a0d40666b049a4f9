"""Migrations: a fresh database migrated to the head has exactly the tables the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from syndicate.store.schema import metadata


def test_migrations_create_the_schema_the_code_expects(engine: Engine) -> None:
    """Alembic finds nothing to add, drop or alter between the migrated store and schema.py."""
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
