"""An edition's audience: confirmed, unsuppressed subscribers of its kind and language.

What a send reads of the registry: its recipients, a page at a time, how many the suppression
list keeps out, and which of a page's addresses it has taken in since the page was read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, and_, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from syndicate.store.schema import subscriber, suppression

LOOKUP_CHUNK = 500  # addresses a query: well under every driver's limit on parameters


@dataclass(frozen=True, slots=True)
class Recipient:
    """A confirmed, unsuppressed subscriber as delivery needs them."""

    pk: int
    email: str
    name: str
    language: str
    topics: tuple[str, ...]


def _receives(connection: Connection, kind: str) -> ColumnElement[bool]:
    """A condition: the subscriber's `digests` JSON array holds `kind`."""
    if connection.dialect.name == "postgresql":
        return subscriber.c.digests.cast(JSONB).contains([kind])
    each = func.json_each(subscriber.c.digests).table_valued("value")
    return exists().select_from(each).where(each.c.value == kind)


def receiving(connection: Connection, kind: str, language: str) -> ColumnElement[bool]:
    """A condition on `subscriber`: confirmed, unsuppressed, receiving `kind` in `language`."""
    suppressed = exists().where(suppression.c.email == subscriber.c.email)
    return and_(
        subscriber.c.status == "confirmed",
        subscriber.c.language == language,
        ~suppressed,
        _receives(connection, kind),
    )


def recipients(
    connection: Connection, kind: str, language: str, after_pk: int, limit: int
) -> list[Recipient]:
    """The next `limit` confirmed, unsuppressed receivers of `kind` in `language` after `after_pk`.

    Ordered by pk and paged by the last pk seen (no OFFSET), so batches stay stable while
    people subscribe and leave during a send: call again with the last recipient's pk.
    """
    rows = connection.execute(
        select(
            subscriber.c.pk,
            subscriber.c.email,
            subscriber.c.name,
            subscriber.c.language,
            subscriber.c.topics,
        )
        .where(receiving(connection, kind, language), subscriber.c.pk > after_pk)
        .order_by(subscriber.c.pk)
        .limit(limit)
    )
    return [Recipient(row.pk, row.email, row.name, row.language, tuple(row.topics)) for row in rows]


def count_suppressed(connection: Connection, kind: str, language: str) -> int:
    """Confirmed receivers of `kind` in `language` whom the suppression list keeps out."""
    suppressed = exists().where(suppression.c.email == subscriber.c.email)
    return int(
        connection.scalar(
            select(func.count())
            .select_from(subscriber)
            .where(
                subscriber.c.status == "confirmed",
                subscriber.c.language == language,
                suppressed,
                _receives(connection, kind),
            )
        )
        or 0
    )


def suppressed_among(connection: Connection, emails: Collection[str]) -> dict[str, str]:
    """Which of `emails` (as stored) the suppression list holds now, with each one's reason."""
    found: dict[str, str] = {}
    listed = list(emails)
    for start in range(0, len(listed), LOOKUP_CHUNK):
        chunk = listed[start : start + LOOKUP_CHUNK]
        rows = connection.execute(
            select(suppression.c.email, suppression.c.reason, suppression.c.detail).where(
                suppression.c.email.in_(chunk)
            )
        )
        for email, reason, detail in rows:
            found[email] = f"{reason}: {detail}" if detail else reason
    return found
