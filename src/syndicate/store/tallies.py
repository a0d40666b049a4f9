"""Deliverability tallies: what the ledger sent and what came back, by edition or by day.

Values only: the feedback rates (feedback.rates) and a send's bounce pause (send.pause) both
read these, so the counting lives once, here, below both. The status and kind names are the
ledger's (delivery.recorder.DeliveryStatus) and the feedback's (feedback.model.FeedbackKind),
spelt as the tables store them.

A message counts as sent once the ledger has handed it over: sent, or refused for good during
the SMTP session ("bounced"), which is a hard bounce as surely as one reported later. Reports
are counted once an address: a bounce reported by a DSN and again by a webhook is one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, select

from syndicate.store.schema import delivery, edition, feedback_event

SENT, REFUSED = "sent", "bounced"  # the ledger's statuses of a message handed over
HARD, SOFT, COMPLAINT = "hard", "soft", "complaint"  # feedback_event kinds counted


@dataclass(frozen=True, slots=True)
class Tally:
    """Messages handed over, and the addresses among them that bounced or complained."""

    sent: int = 0  # sent, or refused during the SMTP session
    refused: int = 0  # refused for good during the SMTP session (hard bounces at once)
    hard: int = 0  # hard bounces reported later (DSN, webhook)
    soft: int = 0
    complained: int = 0

    @property
    def hard_bounced(self) -> int:
        """Every hard bounce: refused at once or reported later."""
        return self.refused + self.hard


@dataclass(frozen=True, slots=True)
class SentEdition:
    """An edition the ledger has rows for."""

    id: str
    kind: str
    language: str
    date: str


def edition_tallies(connection: Connection, edition_ids: Sequence[str]) -> dict[str, Tally]:
    """Each edition's tally (an edition with no rows has an empty one)."""
    ids = list(edition_ids)
    if not ids:
        return {}
    ledger = connection.execute(
        select(delivery.c.edition_id, *_ledger_sums())
        .where(delivery.c.edition_id.in_(ids))
        .group_by(delivery.c.edition_id)
    ).all()
    events = connection.execute(
        select(feedback_event.c.edition_id, feedback_event.c.kind, _addresses())
        .where(feedback_event.c.edition_id.in_(ids), feedback_event.c.kind.in_(_KINDS))
        .group_by(feedback_event.c.edition_id, feedback_event.c.kind)
    ).all()
    return _combine(ids, ledger, events)


def day_tallies(connection: Connection, since: datetime) -> dict[str, Tally]:
    """Each UTC day's tally from `since` on, by YYYY-MM-DD: the ledger's and reports' times.

    Reports are counted on the day they tell of, whatever mail they are about (confirmations
    and unattributed reports too), as the mailbox providers count complaints against a day.
    """
    ledger_day = _utc_day(connection, delivery.c.at)
    ledger = connection.execute(
        select(ledger_day, *_ledger_sums()).where(delivery.c.at >= since).group_by(ledger_day)
    ).all()
    event_day = _utc_day(connection, feedback_event.c.occurred_at)
    events = connection.execute(
        select(event_day, feedback_event.c.kind, _addresses())
        .where(feedback_event.c.occurred_at >= since, feedback_event.c.kind.in_(_KINDS))
        .group_by(event_day, feedback_event.c.kind)
    ).all()
    days = sorted({str(row[0]) for row in [*ledger, *events]})
    return _combine(days, ledger, events)


def sent_editions(connection: Connection, limit: int | None = None) -> list[SentEdition]:
    """The editions the ledger has rows for, newest date first (then by id)."""
    has_rows = select(delivery.c.edition_id).where(delivery.c.edition_id == edition.c.id).exists()
    query = (
        select(edition.c.id, edition.c.kind, edition.c.language, edition.c.date)
        .where(has_rows)
        .order_by(edition.c.date.desc(), edition.c.id)
        .limit(limit)
    )
    return [
        SentEdition(row.id, row.kind, row.language, row.date) for row in connection.execute(query)
    ]


_KINDS = (HARD, SOFT, COMPLAINT)


def _ledger_sums() -> list[ColumnElement[int]]:
    handed_over = func.sum(case((delivery.c.status.in_((SENT, REFUSED)), 1), else_=0))
    refused = func.sum(case((delivery.c.status == REFUSED, 1), else_=0))
    return [handed_over.label("sent"), refused.label("refused")]


def _addresses() -> ColumnElement[int]:
    return func.count(feedback_event.c.email.distinct()).label("addresses")


def _utc_day(connection: Connection, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """YYYY-MM-DD of a stored instant in UTC (SQLite stores naive UTC text, PostgreSQL timestamptz)."""
    if connection.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD").label("day")
    return func.substr(column, 1, 10).label("day")


def _combine(
    keys: Sequence[str], ledger: Iterable[Sequence[Any]], events: Iterable[Sequence[Any]]
) -> dict[str, Tally]:
    """Tallies by key from (key, sent, refused) and (key, kind, addresses) rows."""
    counts: dict[str, dict[str, int]] = {key: {} for key in keys}
    for key, sent, refused in ledger:
        counts[str(key)].update(sent=int(sent or 0), refused=int(refused or 0))
    field_of = {HARD: "hard", SOFT: "soft", COMPLAINT: "complained"}
    for key, kind, addresses in events:
        counts[str(key)][field_of[kind]] = int(addresses)
    return {key: Tally(**fields) for key, fields in counts.items()}


def feedback_counts(connection: Connection) -> dict[tuple[str, str], int]:
    """Every recorded feedback event, counted by (provider, kind)."""
    rows = connection.execute(
        select(feedback_event.c.provider, feedback_event.c.kind, func.count()).group_by(
            feedback_event.c.provider, feedback_event.c.kind
        )
    )
    return {(str(provider), str(kind)): int(count) for provider, kind, count in rows}
