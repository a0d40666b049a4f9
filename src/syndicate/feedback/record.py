"""Recording feedback: attribute it, store it once, and suppress the address when it must go.

Attribution tries the clues strongest first: the VERP envelope recipient, our own header
quoted back, the original Message-ID (looked up in the delivery ledger), and last the failed
recipient's address. A token that does not verify attributes nothing. The event and any
suppression it causes are written in one transaction, before the caller acknowledges the
report, so a crash loses nothing and a report read again (its key already stored) changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from syndicate.feedback.model import Feedback, FeedbackKind
from syndicate.store.schema import delivery, feedback_event, subscriber
from syndicate.subscribers import registry
from syndicate.subscribers.addresses import normalise_address
from syndicate.subscribers.verp import MailRef, Verp

KEY_LENGTH = 200  # the column's width; longer keys are cut (they are ids, not prose)


@dataclass(frozen=True, slots=True)
class FeedbackRules:
    """When feedback suppresses an address, and how VERP tokens are read."""

    soft_limit: int = 3
    soft_days: int = 14
    verp: Verp | None = None  # None: no secret to read tokens with, so none attributes
    bounce_address: str = ""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one piece of feedback did."""

    feedback: Feedback
    new: bool  # False: this report was recorded before, and nothing changed now
    email: str  # the address it was attributed to (the subscriber's, when one was found)
    subscriber_pk: int | None
    edition_id: str | None
    suppressed: bool  # this event put the address on the suppression list

    def line(self) -> str:
        """One line for people and logs: `bounced hard a@b.example daily-en-2026-11-20`."""
        kind = self.feedback.kind
        words = {
            FeedbackKind.HARD: "bounced hard",
            FeedbackKind.SOFT: "bounced soft",
            FeedbackKind.COMPLAINT: "complained",
            FeedbackKind.DELIVERED: "delivered",
        }[kind]
        parts = [words, self.email, self.edition_id or "(no edition)"]
        if kind is FeedbackKind.SOFT and self.suppressed:
            parts.append("suppressed")
        if not self.new:
            parts.append("(already recorded)")
        return " ".join(parts)


def record_feedback(engine: Engine, feedback: Feedback, rules: FeedbackRules) -> Recorded:
    """Store `feedback` once, attributed, and suppress its address if the rules say so."""
    with engine.begin() as connection:
        ref = attribute(connection, feedback, rules)
        email = _address(connection, feedback, ref)
        pk = ref.pk if ref else _subscriber_pk(connection, email)
        edition_id = ref.edition_id if ref else None
        try:
            with connection.begin_nested():
                connection.execute(insert(feedback_event).values(
                    key=feedback.key[:KEY_LENGTH], provider=feedback.provider,
                    kind=feedback.kind, email=email, subscriber_pk=pk, edition_id=edition_id,
                    status=feedback.status[:16], diagnostic=feedback.diagnostic,
                    reference=feedback.reference, occurred_at=feedback.occurred_at,
                    recorded_at=datetime.now(UTC),
                ))  # fmt: skip
        except IntegrityError:  # read before: one event per report and recipient
            return Recorded(feedback, False, email, pk, edition_id, suppressed=False)
        suppressed = _suppress_if_due(connection, feedback, email, rules)
    return Recorded(feedback, True, email, pk, edition_id, suppressed)


def attribute(connection: Connection, feedback: Feedback, rules: FeedbackRules) -> MailRef | None:
    """The subscriber and edition `feedback` is about, from its strongest clue; None if unknown."""
    clues = feedback.clues
    if rules.verp is not None:
        if clues.verp_recipient and rules.bounce_address:
            ref = rules.verp.read_address(rules.bounce_address, clues.verp_recipient)
            if ref is not None and _exists(connection, ref.pk):
                return ref
        if clues.mail_token:
            ref = rules.verp.read(clues.mail_token)
            if ref is not None and _exists(connection, ref.pk):
                return ref
    if clues.message_id:
        row = connection.execute(
            select(delivery.c.subscriber_pk, delivery.c.edition_id)
            .where(delivery.c.message_id == clues.message_id.strip())
            .limit(1)
        ).first()
        if row is not None:
            return MailRef(row.subscriber_pk, row.edition_id)
    return None


def _exists(connection: Connection, pk: int) -> bool:
    return connection.scalar(select(subscriber.c.pk).where(subscriber.c.pk == pk)) is not None


def _address(connection: Connection, feedback: Feedback, ref: MailRef | None) -> str:
    """The address to act on: the attributed subscriber's as stored, else the reported one."""
    if ref is not None:
        stored = connection.scalar(select(subscriber.c.email).where(subscriber.c.pk == ref.pk))
        if stored is not None:
            return str(stored)
    try:
        return normalise_address(feedback.email)
    except ValueError:
        return feedback.email.strip()


def _subscriber_pk(connection: Connection, email: str) -> int | None:
    found = connection.scalar(select(subscriber.c.pk).where(subscriber.c.email == email))
    return None if found is None else int(found)


def _suppress_if_due(
    connection: Connection, feedback: Feedback, email: str, rules: FeedbackRules
) -> bool:
    """Suppress `email` for a hard bounce, a complaint, or one soft bounce too many."""
    detail = f"{feedback.provider} {feedback.status} {feedback.diagnostic}".strip()
    if feedback.kind is FeedbackKind.HARD:
        registry.suppress(connection, email, "bounced", detail, as_stored=True)
        return True
    if feedback.kind is FeedbackKind.COMPLAINT:
        registry.suppress(connection, email, "complained", detail, as_stored=True)
        return True
    if feedback.kind is FeedbackKind.SOFT:
        soft = soft_bounces(connection, email, feedback.occurred_at, rules.soft_days)
        if soft >= rules.soft_limit:
            detail = f"{soft} soft bounces in {rules.soft_days} days; last: {detail}"
            registry.suppress(connection, email, "bounced", detail, as_stored=True)
            return True
    return False


def soft_bounces(connection: Connection, email: str, now: datetime, days: int) -> int:
    """Soft bounces of `email` in the `days` before `now`, since its last reported delivery."""
    since = now - timedelta(days=days)
    delivered = connection.scalar(
        select(func.max(feedback_event.c.occurred_at)).where(
            feedback_event.c.email == email,
            feedback_event.c.kind == FeedbackKind.DELIVERED,
            feedback_event.c.occurred_at <= now,
        )
    )
    if delivered is not None and delivered > since:
        since = delivered
    return int(
        connection.scalar(
            select(func.count())
            .select_from(feedback_event)
            .where(
                feedback_event.c.email == email,
                feedback_event.c.kind == FeedbackKind.SOFT,
                feedback_event.c.occurred_at > since,
                feedback_event.c.occurred_at <= now,
            )
        )
        or 0
    )
