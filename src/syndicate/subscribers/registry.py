"""The subscriber registry: who asked for which digests, and who must never be mailed.

Every operation takes a Connection (it runs in the caller's transaction) or an Engine (it
runs in a transaction of its own). Addresses are normalised on the way in, so one person is one
row however they typed their address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from syndicate.store.database import Bind, transaction
from syndicate.store.schema import subscriber, suppression
from syndicate.subscribers.addresses import clean_name, normalise_address
from syndicate.subscribers.topics import topic_slugs

Status = Literal["pending", "confirmed", "unsubscribed"]
SuppressionReason = Literal["unsubscribed", "bounced", "complained"]
SUPPRESSION_REASONS: tuple[SuppressionReason, ...] = get_args(SuppressionReason)
# A stronger reason replaces a weaker one; only "unsubscribed" can be lifted, by the person
# confirming a new subscription from their own mailbox.
STRENGTH = {reason: rank for rank, reason in enumerate(SUPPRESSION_REASONS)}
Field = Literal["email", "name", "language", "digests", "topics"]


class PreferenceError(ValueError):
    """A value a subscriber may not choose; `field` names the form field or CSV column."""

    def __init__(self, field: Field, message: str) -> None:
        """Refuse `field` for the reason `message`."""
        super().__init__(f"{field}: {message}")
        self.field: Field = field


@dataclass(frozen=True, slots=True)
class Choices:
    """What a subscriber may choose from (topics come from the store)."""

    languages: tuple[str, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a subscriber asked for."""

    language: str
    digests: tuple[str, ...]
    topics: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One stored subscriber."""

    pk: int
    email: str
    name: str
    language: str
    digests: tuple[str, ...]
    topics: tuple[str, ...]
    status: Status
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A subscription awaiting confirmation: whom to send the confirmation mail to."""

    pk: int
    email: str
    name: str
    language: str


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def validate(
    connection: Connection,
    preferences: Preferences,
    choices: Choices,
    *,
    known_topics: frozenset[str] | None = None,
) -> Preferences:
    """`preferences` checked against `choices` and stored topics, in a canonical order."""
    if preferences.language not in choices.languages:
        raise PreferenceError("language", f"{preferences.language!r} is not a site language")
    unknown = sorted(set(preferences.digests) - set(choices.kinds))
    if unknown:
        raise PreferenceError("digests", f"unknown digest {unknown[0]!r}")
    if not preferences.digests:
        raise PreferenceError("digests", "choose at least one digest")
    wanted = set(preferences.topics)
    if wanted and known_topics is None:
        known_topics = topic_slugs(connection)
    missing = sorted(wanted - (known_topics or frozenset()))
    if missing:
        raise PreferenceError("topics", f"unknown topic {missing[0]!r}")
    try:
        name = clean_name(preferences.name)
    except ValueError as error:
        raise PreferenceError("name", str(error)) from None
    return Preferences(
        language=preferences.language,
        digests=tuple(kind for kind in choices.kinds if kind in preferences.digests),
        topics=tuple(sorted(wanted)),
        name=name,
    )


def _subscriber(row: Row[Any]) -> Subscriber:
    return Subscriber(
        pk=row.pk,
        email=row.email,
        name=row.name,
        language=row.language,
        digests=tuple(row.digests),
        topics=tuple(row.topics),
        status=row.status,
        confirmed_at=row.confirmed_at,
    )


def find(bind: Bind, pk: int) -> Subscriber | None:
    """The subscriber with primary key `pk`, if there is one."""
    with transaction(bind) as connection:
        row = connection.execute(select(subscriber).where(subscriber.c.pk == pk)).first()
    return _subscriber(row) if row is not None else None


def find_by_email(bind: Bind, email: str) -> Subscriber | None:
    """The subscriber with this (normalised) address, if there is one."""
    with transaction(bind) as connection:
        row = connection.execute(select(subscriber).where(subscriber.c.email == email)).first()
    return _subscriber(row) if row is not None else None


def suppression_reason(bind: Bind, email: str) -> SuppressionReason | None:
    """Why the normalised address `email` is suppressed, or None if it is not."""
    with transaction(bind) as connection:
        reason = connection.execute(
            select(suppression.c.reason).where(suppression.c.email == email)
        ).scalar_one_or_none()
    return reason


def is_suppressed(bind: Bind, email: str) -> bool:
    """Whether no mail may go to `email` (normalised first; ValueError if it is not an address)."""
    return suppression_reason(bind, normalise_address(email)) is not None


def _values(preferences: Preferences) -> dict[str, Any]:
    return {
        "name": preferences.name,
        "language": preferences.language,
        "digests": list(preferences.digests),
        "topics": list(preferences.topics),
    }


def subscribe(
    bind: Bind,
    email: str,
    preferences: Preferences,
    choices: Choices,
    *,
    now: datetime | None = None,
) -> Pending | None:
    """Create or refresh a pending subscription; None when no confirmation mail may be sent.

    A confirmed address changes nothing (its owner has a preferences link in every digest); a
    bounced or complained address gets nothing. An address its owner unsubscribed may ask
    again: it becomes pending, still suppressed, until the owner confirms from the mailbox.
    Raises ValueError for an invalid address and PreferenceError for an invalid choice.
    """
    address = normalise_address(email)
    moment = _now(now)
    with transaction(bind) as connection:
        chosen = validate(connection, preferences, choices)
        reason = suppression_reason(connection, address)
        if reason is not None and reason != "unsubscribed":
            return None
        current = find_by_email(connection, address)
        if current is None:
            try:
                with connection.begin_nested():
                    pk = connection.execute(
                        insert(subscriber).returning(subscriber.c.pk),
                        {
                            "email": address,
                            "status": "pending",
                            "created_at": moment,
                            "updated_at": moment,
                            **_values(chosen),
                        },
                    ).scalar_one()
                return Pending(pk, address, chosen.name, chosen.language)
            except IntegrityError:  # the same address, subscribed at the same moment
                current = find_by_email(connection, address)
                assert current is not None
        if current.status == "confirmed" and reason is None:
            return None
        connection.execute(
            update(subscriber)
            .where(subscriber.c.pk == current.pk)
            .values(status="pending", updated_at=moment, **_values(chosen))
        )
        return Pending(current.pk, address, chosen.name, chosen.language)


def confirm(bind: Bind, pk: int, *, now: datetime | None = None) -> Subscriber | None:
    """Confirm a pending subscription (twice is harmless); None if it cannot be confirmed.

    A subscription that was unsubscribed since, or whose address bounced or complained, is
    not confirmed. Confirming lifts an "unsubscribed" suppression: the owner asked again.
    """
    with transaction(bind) as connection:
        current = find(connection, pk)
        if current is None or current.status == "unsubscribed":
            return None
        reason = suppression_reason(connection, current.email)
        if reason is not None and reason != "unsubscribed":
            return None
        if current.status == "confirmed":
            return current
        moment = _now(now)
        connection.execute(delete(suppression).where(suppression.c.email == current.email))
        connection.execute(
            update(subscriber)
            .where(subscriber.c.pk == pk)
            .values(status="confirmed", confirmed_at=moment, updated_at=moment)
        )
        return find(connection, pk)


def forget_unconfirmed(bind: Bind, before: datetime) -> int:
    """Delete subscriptions never confirmed and left pending since before `before`; how many.

    Their confirmation links have expired, so nobody can confirm them any more; keeping the
    addresses (often typed by someone else, or by a bot) would serve no one. An address once
    confirmed is kept whatever its state: its ledger and suppression history stay.
    """
    with transaction(bind) as connection:
        result = connection.execute(
            delete(subscriber).where(
                subscriber.c.status == "pending",
                subscriber.c.confirmed_at.is_(None),
                subscriber.c.updated_at < before,
            )
        )
        return int(result.rowcount or 0)


def update_preferences(
    bind: Bind,
    pk: int,
    preferences: Preferences,
    choices: Choices,
    *,
    now: datetime | None = None,
) -> Subscriber:
    """Store new preferences for subscriber `pk` (PreferenceError, or LookupError if none)."""
    with transaction(bind) as connection:
        chosen = validate(connection, preferences, choices)
        done = connection.execute(
            update(subscriber)
            .where(subscriber.c.pk == pk)
            .values(updated_at=_now(now), **_values(chosen))
        )
        if done.rowcount != 1:
            raise LookupError(f"no subscriber {pk}")
        stored = find(connection, pk)
        assert stored is not None
        return stored


def unsubscribe(
    bind: Bind, pk: int, *, detail: str = "", now: datetime | None = None
) -> Subscriber | None:
    """Mark subscriber `pk` unsubscribed and suppress the address (twice is harmless)."""
    moment = _now(now)
    with transaction(bind) as connection:
        current = find(connection, pk)
        if current is None:
            return None
        connection.execute(
            update(subscriber)
            .where(subscriber.c.pk == pk)
            .values(status="unsubscribed", updated_at=moment)
        )
        _suppress(connection, current.email, "unsubscribed", detail, moment)
        return find(connection, pk)


def suppress(
    bind: Bind,
    email: str,
    reason: SuppressionReason,
    detail: str = "",
    *,
    now: datetime | None = None,
    as_stored: bool = False,
) -> None:
    """Put `email` on the suppression list (bounces, complaints); a stronger reason wins.

    The address is normalised first (ValueError if it is none), unless it is `as_stored`: a
    subscriber's address exactly as the store holds it, which is what sends compare, even
    one stored before today's checks would let it in.
    """
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    address = email if as_stored else normalise_address(email)
    with transaction(bind) as connection:
        _suppress(connection, address, reason, detail, _now(now))


def _suppress(
    connection: Connection,
    address: str,
    reason: SuppressionReason,
    detail: str,
    moment: datetime,
) -> None:
    current = suppression_reason(connection, address)
    row = {"reason": reason, "detail": detail, "created_at": moment}
    if current is None:
        try:
            with connection.begin_nested():
                connection.execute(insert(suppression).values(email=address, **row))
            return
        except IntegrityError:  # suppressed at the same moment by another process
            current = suppression_reason(connection, address)
            assert current is not None
    if STRENGTH[reason] > STRENGTH[current]:
        connection.execute(update(suppression).where(suppression.c.email == address).values(**row))


def all_subscribers(bind: Bind, *, batch: int = 1000) -> Iterator[tuple[Subscriber, str | None]]:
    """Every subscriber in pk order with its suppression reason, read in batches."""
    for person, reason, _detail in all_with_suppressions(bind, batch=batch):
        yield person, reason


def all_with_suppressions(
    bind: Bind, *, batch: int = 1000
) -> Iterator[tuple[Subscriber, str | None, str]]:
    """Every subscriber in pk order with its suppression's reason and detail ("" if none)."""
    after = 0
    while True:
        with transaction(bind) as connection:
            rows = connection.execute(
                select(subscriber, suppression.c.reason, suppression.c.detail)
                .select_from(
                    subscriber.outerjoin(suppression, suppression.c.email == subscriber.c.email)
                )
                .where(subscriber.c.pk > after)
                .order_by(subscriber.c.pk)
                .limit(batch)
            ).all()
        if not rows:
            return
        for row in rows:
            yield _subscriber(row), row.reason, row.detail or ""
        after = rows[-1].pk


def split_choices(text: str) -> tuple[str, ...]:
    """Words of a digests or topics cell or field: separated by spaces, commas or semicolons."""
    return tuple(word for word in text.replace(";", " ").replace(",", " ").split() if word)
