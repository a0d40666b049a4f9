"""Articles, tags, topics, picks, views and feed state.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "article",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("cms_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("section", sa.String(length=100), nullable=True),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("image", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_article")),
        sa.UniqueConstraint("cms_id", name=op.f("uq_article_cms_id")),
    )
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_article_language_section_published_at"),
            ["language", "section", "published_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_article_language_status_published_at"),
            ["language", "status", "published_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_article_published_at"), ["published_at"], unique=False)

    op.create_table(
        "dirty_feed",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dirty_feed")),
    )
    op.create_table(
        "published_feed",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_published_feed")),
    )
    op.create_table(
        "state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_state")),
    )
    op.create_table(
        "tag",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=1000), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_tag")),
        sa.UniqueConstraint("key", name=op.f("uq_tag_key")),
        sa.UniqueConstraint("slug", name=op.f("uq_tag_slug")),
    )
    op.create_table(
        "topic",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_topic")),
        sa.UniqueConstraint("slug", name=op.f("uq_topic_slug")),
    )
    op.create_table(
        "article_tag",
        sa.Column("article_pk", sa.Integer(), nullable=False),
        sa.Column("tag_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_pk"],
            ["article.pk"],
            name=op.f("fk_article_tag_article_pk_article"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_pk"], ["tag.pk"], name=op.f("fk_article_tag_tag_pk_tag"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("article_pk", "tag_pk", name=op.f("pk_article_tag")),
    )
    with op.batch_alter_table("article_tag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_article_tag_tag_pk_language_status_published_at"),
            ["tag_pk", "language", "status", "published_at"],
            unique=False,
        )

    op.create_table(
        "article_topic",
        sa.Column("article_pk", sa.Integer(), nullable=False),
        sa.Column("topic_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_pk"],
            ["article.pk"],
            name=op.f("fk_article_topic_article_pk_article"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_pk"],
            ["topic.pk"],
            name=op.f("fk_article_topic_topic_pk_topic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_pk", "topic_pk", name=op.f("pk_article_topic")),
    )
    with op.batch_alter_table("article_topic", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_article_topic_topic_pk_language_status_published_at"),
            ["topic_pk", "language", "status", "published_at"],
            unique=False,
        )

    op.create_table(
        "pick",
        sa.Column("article_pk", sa.Integer(), nullable=False),
        sa.Column("picked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unpicked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_pk"],
            ["article.pk"],
            name=op.f("fk_pick_article_pk_article"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_pk", "picked_at", name=op.f("pk_pick")),
    )
    with op.batch_alter_table("pick", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pick_picked_at"), ["picked_at"], unique=False)

    op.create_table(
        "topic_text",
        sa.Column("topic_pk", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_pk"],
            ["topic.pk"],
            name=op.f("fk_topic_text_topic_pk_topic"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("topic_pk", "language", name=op.f("pk_topic_text")),
    )
    op.create_table(
        "view_count",
        sa.Column("article_pk", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_pk"],
            ["article.pk"],
            name=op.f("fk_view_count_article_pk_article"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_pk", "hour", name=op.f("pk_view_count")),
    )
    with op.batch_alter_table("view_count", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_view_count_hour_article_pk"), ["hour", "article_pk"], unique=False
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("view_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_view_count_hour_article_pk"))

    op.drop_table("view_count")
    op.drop_table("topic_text")
    with op.batch_alter_table("pick", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pick_picked_at"))

    op.drop_table("pick")
    with op.batch_alter_table("article_topic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_topic_topic_pk_language_status_published_at"))

    op.drop_table("article_topic")
    with op.batch_alter_table("article_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_tag_tag_pk_language_status_published_at"))

    op.drop_table("article_tag")
    op.drop_table("topic")
    op.drop_table("tag")
    op.drop_table("state")
    op.drop_table("published_feed")
    op.drop_table("dirty_feed")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_published_at"))
        batch_op.drop_index(batch_op.f("ix_article_language_status_published_at"))
        batch_op.drop_index(batch_op.f("ix_article_language_section_published_at"))

    op.drop_table("article")
