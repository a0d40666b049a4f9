"""Feedback: bounces, complaints and deliveries reported back; the ledger found by Message-ID.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_index(op.f("ix_delivery_message_id"), "delivery", ["message_id"])
    op.create_table(
        "feedback_event",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("subscriber_pk", sa.Integer(), nullable=True),
        sa.Column("edition_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_pk"], ["subscriber.pk"],
            name=op.f("fk_feedback_event_subscriber_pk_subscriber"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_feedback_event")),
        sa.UniqueConstraint("key", name=op.f("uq_feedback_event_key")),
    )  # fmt: skip
    for columns in (["email", "kind", "occurred_at"], ["edition_id", "kind"], ["occurred_at"]):
        name = "ix_feedback_event_" + "_".join(columns)
        op.create_index(op.f(name), "feedback_event", columns)


def downgrade() -> None:
    """Revert this migration."""
    op.drop_table("feedback_event")
    op.drop_index(op.f("ix_delivery_message_id"), table_name="delivery")
