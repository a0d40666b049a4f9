"""The database tables. Alembic migrations create them; this is the shape code relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones, so instants are stored as naive UTC there; text comparison of
    those values then orders them correctly. PostgreSQL keeps `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to what the backend stores."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return stored instants as aware UTC datetimes."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

article = Table(
    "article",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("cms_id", String(200), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("section", String(100)),
    Column("authors", JSON, nullable=False),
    Column("image", JSON),
    Index(None, "language", "status", "published_at"),
    Index(None, "language", "section", "published_at"),
    Index(None, "published_at"),
)

tag = Table(
    "tag",
    metadata,
    Column("pk", Integer, primary_key=True),
    # The key folds case, width and spacing; the name is the first spelling editors used;
    # the slug is assigned once and never changes, so feed URLs stay put.
    Column("key", String(1000), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("slug", String(200), nullable=False, unique=True),
)

# Links carry copies of the article's language, status and date (rewritten with the article
# on every update), so "the newest N of this tag" is one index range, not a sort of thousands.
article_tag = Table(
    "article_tag",
    metadata,
    Column("article_pk", ForeignKey("article.pk", ondelete="CASCADE"), primary_key=True),
    Column("tag_pk", ForeignKey("tag.pk", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("language", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Index(None, "tag_pk", "language", "status", "published_at"),
)

topic = Table(
    "topic",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("slug", String(100), nullable=False, unique=True),
)

topic_text = Table(
    "topic_text",
    metadata,
    Column("topic_pk", ForeignKey("topic.pk", ondelete="CASCADE"), primary_key=True),
    Column("language", String(8), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
)

article_topic = Table(
    "article_topic",
    metadata,
    Column("article_pk", ForeignKey("article.pk", ondelete="CASCADE"), primary_key=True),
    Column("topic_pk", ForeignKey("topic.pk", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("language", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Index(None, "topic_pk", "language", "status", "published_at"),
)

pick = Table(
    "pick",
    metadata,
    Column("article_pk", ForeignKey("article.pk", ondelete="CASCADE"), primary_key=True),
    Column("picked_at", UTCDateTime, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("unpicked_at", UTCDateTime),
    Index(None, "picked_at"),
)

view_count = Table(
    "view_count",
    metadata,
    Column("article_pk", ForeignKey("article.pk", ondelete="CASCADE"), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("count", Integer, nullable=False),
    Index(None, "hour", "article_pk"),
)

# Feeds whose content may have changed since they were last written (see feeds.build).
# Each mark carries a fresh token, so a build clears only the marks it saw: a mark made again
# while the build ran survives for the next one.
dirty_feed = Table(
    "dirty_feed",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("token", String(32), nullable=False),
)

# What is on disk: one row per published feed, so an incremental build can keep the index
# and remove emptied feeds without scanning everything.
published_feed = Table(
    "published_feed",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("language", String(8), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("items", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Small named values: the last build's clock and settings fingerprint.
state = Table(
    "state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# A feed build shared out to the queue's workers in shards (PostgreSQL only): what the last
# shard to finish needs to finish the build, and which shards are done. `dirty` holds the
# {key: token} marks the build read; `outcome` is "done", or "abandoned" when its shards died.
feed_build = Table(
    "feed_build",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("clock", UTCDateTime, nullable=False),
    Column("shards", Integer, nullable=False),
    Column("dirty", JSON, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(16)),
)

feed_build_shard = Table(
    "feed_build_shard",
    metadata,
    Column("build_pk", ForeignKey("feed_build.pk", ondelete="CASCADE"), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("index_changed", Boolean, nullable=False),
    Column("report", JSON, nullable=False),  # the shard's BuildReport, for the build's summary
)

# -- newsletters -------------------------------------------------------------------------

# One person who asked for digests. `email` is the normalised address (see subscribers), so
# one person is one row whatever case or spacing they typed.
subscriber = Table(
    "subscriber",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("digests", JSON, nullable=False),  # kinds received: ["daily", "weekly"]
    Column("topics", JSON, nullable=False),  # slugs of the topics followed
    Column("status", String(16), nullable=False),  # pending, confirmed, unsubscribed
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "language", "pk"),
)

# Addresses no send may ever reach: unsubscribed, hard-bounced or complained.
suppression = Table(
    "suppression",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("reason", String(32), nullable=False),  # unsubscribed, bounced, complained
    Column("detail", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A digest edition, frozen at its first build: `content` holds everything rendering needs.
edition = Table(
    "edition",
    metadata,
    Column("id", String(64), primary_key=True),  # daily-en-2026-11-23
    Column("kind", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("date", String(10), nullable=False),  # YYYY-MM-DD in [schedule] timezone
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("built_at", UTCDateTime, nullable=False),
    Column("subject", Text, nullable=False),
    Column("content", JSON, nullable=False),
)

# The delivery ledger: one row per (edition, subscriber) once a message's fate is known.
delivery = Table(
    "delivery",
    metadata,
    Column("edition_id", ForeignKey("edition.id", ondelete="CASCADE"), primary_key=True),
    Column("subscriber_pk", ForeignKey("subscriber.pk", ondelete="CASCADE"), primary_key=True),
    Column("status", String(16), nullable=False),  # sent, failed, suppressed
    Column("message_id", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "edition_id", "status"),
    Index(None, "message_id"),  # a report quoting the message it bounces is attributed by it
)

# What came back about a message: a bounce, a complaint or a delivery, from a report read from a
# mailbox or a provider's webhook. `key` is unique to the report and recipient, so reading the
# same report again records nothing; the subscriber and edition are those it was attributed to.
feedback_event = Table(
    "feedback_event",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("provider", String(16), nullable=False),  # mail, ses, postmark, mailgun, sendgrid
    Column("kind", String(16), nullable=False),  # hard, soft, complaint, delivered
    Column("email", String(320), nullable=False),
    Column("subscriber_pk", ForeignKey("subscriber.pk", ondelete="SET NULL")),
    Column("edition_id", String(64)),  # an edition's id, "confirmation", or unknown (NULL)
    Column("status", String(16), nullable=False),  # enhanced status code: 5.1.1
    Column("diagnostic", Text, nullable=False),
    Column("reference", Text, nullable=False),  # the report's Message-ID, a webhook's event id
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "email", "kind", "occurred_at"),
    Index(None, "edition_id", "kind"),
    Index(None, "occurred_at"),
)

# Leases: who may do a job that only one process at a time may do (send an edition, run the
# scheduler). A holder renews before `expires_at`; a crashed holder's lease simply runs out.
lease = Table(
    "lease",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Recent attempts of rate-limited actions (subscribe), kept in the database so that every
# process of a deployment counts the same attempts.
attempt = Table(
    "attempt",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("key", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "key", "at"),
)

# Shared rate limits (the SMTP relay's [mail.smtp] rate_per_second): the moment, in seconds on
# the database's clock, before which a schedule's capacity is booked (store.shared_limits).
# Used on PostgreSQL, where several machines send; made on SQLite too, so the schema is one.
rate_schedule = Table(
    "rate_schedule",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("next_at", Double, nullable=False),
)
