"""Shared limits: the schedule that keeps a rate across every process sharing the database.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Read only on PostgreSQL (store.shared_limits), where sends run on several machines; made on
SQLite as well, so that both stores have one schema. The cap on connections needs no table:
it is held in advisory locks.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "rate_schedule",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("next_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rate_schedule")),
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("rate_schedule")
