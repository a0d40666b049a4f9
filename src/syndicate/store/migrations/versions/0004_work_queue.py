"""The work queue: procrastinate's tables, types and functions, on PostgreSQL only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

The schema is the one the installed procrastinate ships (`procrastinate.schema`), which
pyproject.toml pins to one minor version. Moving to another means a new migration that
applies procrastinate's own migration files between the two (its sql/migrations), as its
upgrade notes say; this one must then read the old version's schema as it is here.
SQLite has no queue: the work runs in-process there, and this migration does nothing.
"""

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _execute(SchemaManager.get_schema())


def downgrade() -> None:
    """Revert this migration."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Every object of procrastinate's is named procrastinate_*: drop its tables (their
    # triggers and indexes go with them), then its functions, then its types.
    _execute(
        """
        DO $$
        DECLARE item record;
        BEGIN
          FOR item IN SELECT tablename FROM pg_tables
                      WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%'
          LOOP EXECUTE format('DROP TABLE %I CASCADE', item.tablename); END LOOP;
          FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p
                      JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
          LOOP EXECUTE format('DROP FUNCTION %s CASCADE', item.name); END LOOP;
          FOR item IN SELECT t.typname FROM pg_type t
                      JOIN pg_namespace n ON n.oid = t.typnamespace
                      WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                        AND t.typtype IN ('e', 'c')
          LOOP EXECUTE format('DROP TYPE %I CASCADE', item.typname); END LOOP;
        END $$
        """
    )


def _execute(sql: str) -> None:
    # psycopg's own cursor, given no parameters at all (SQLAlchemy passes an empty set): then
    # the `%` in the SQL is no placeholder, and its many statements go as one simple query.
    cursor = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()
