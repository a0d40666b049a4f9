"""Newsletters: subscribers, suppressions, editions, the delivery ledger, leases, attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "subscriber",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("digests", sa.JSON(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_subscriber")),
        sa.UniqueConstraint("email", name=op.f("uq_subscriber_email")),
    )
    op.create_index(
        op.f("ix_subscriber_status_language_pk"), "subscriber", ["status", "language", "pk"]
    )
    op.create_table(
        "suppression",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_suppression")),
    )
    op.create_table(
        "edition",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("date", sa.String(length=10), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edition")),
    )
    op.create_table(
        "delivery",
        sa.Column("edition_id", sa.String(length=64), nullable=False),
        sa.Column("subscriber_pk", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["edition_id"], ["edition.id"], name=op.f("fk_delivery_edition_id_edition"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_pk"], ["subscriber.pk"],
            name=op.f("fk_delivery_subscriber_pk_subscriber"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("edition_id", "subscriber_pk", name=op.f("pk_delivery")),
    )  # fmt: skip
    op.create_index(op.f("ix_delivery_edition_id_status"), "delivery", ["edition_id", "status"])
    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lease")),
    )
    op.create_table(
        "attempt",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_attempt")),
    )
    op.create_index(op.f("ix_attempt_key_at"), "attempt", ["key", "at"])


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index(op.f("ix_attempt_key_at"), table_name="attempt")
    op.drop_table("attempt")
    op.drop_table("lease")
    op.drop_index(op.f("ix_delivery_edition_id_status"), table_name="delivery")
    op.drop_table("delivery")
    op.drop_table("edition")
    op.drop_table("suppression")
    op.drop_index(op.f("ix_subscriber_status_language_pk"), table_name="subscriber")
    op.drop_table("subscriber")
