"""Queue workers by name: each worker's `--name`, host and pid beside procrastinate's id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

On PostgreSQL only, as the work queue it belongs to (0004). The row cascades with
procrastinate's worker row, so it never outlives the worker it names.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE TABLE queue_worker (
            worker_id bigint PRIMARY KEY
                REFERENCES procrastinate_workers (id) ON DELETE CASCADE,
            name text NOT NULL,
            host text NOT NULL,
            pid integer NOT NULL
        )
        """
    )


def downgrade() -> None:
    """Revert this migration."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("queue_worker")
