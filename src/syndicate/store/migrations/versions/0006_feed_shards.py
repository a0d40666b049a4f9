"""Feed builds shared by the queue's workers: one row per build, one per shard done.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "feed_build",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("clock", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("dirty", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_feed_build")),
    )
    op.create_table(
        "feed_build_shard",
        sa.Column("build_pk", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("index_changed", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_pk"], ["feed_build.pk"],
            name=op.f("fk_feed_build_shard_build_pk_feed_build"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("build_pk", "shard", name=op.f("pk_feed_build_shard")),
    )  # fmt: skip


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("feed_build_shard")
    op.drop_table("feed_build")
