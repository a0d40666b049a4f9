"""Subscribers for tests: readers who asked through the registry and confirmed, or stored as given."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert

from syndicate.store.schema import subscriber
from syndicate.subscribers import registry
from syndicate.subscribers.registry import Choices, Preferences, Subscriber
from tests.support.fixture_corpus import LANGUAGES

CHOICES = Choices(LANGUAGES, ("daily", "weekly", "monthly"))  # what the subscribe form offers
DAILY = Preferences(language="en", digests=("daily",))


def confirmed(
    engine: Engine, email: str, preferences: Preferences = DAILY, choices: Choices = CHOICES
) -> Subscriber:
    """A subscriber who asked for `preferences` and confirmed, as the subscription pages make one."""
    pending = registry.subscribe(engine, email, preferences, choices)
    assert pending is not None, f"{email} was not taken"
    confirmed_one = registry.confirm(engine, pending.pk)
    assert confirmed_one is not None, f"{email} could not confirm"
    return confirmed_one


def add_subscribers(
    engine: Engine, addresses: list[str], *, names: list[str] | None = None
) -> None:
    """Confirmed English daily subscribers stored as given, as an old import might have left them."""
    moment = datetime.now(UTC)
    with engine.begin() as connection:
        for number, address in enumerate(addresses):
            connection.execute(
                insert(subscriber).values(
                    email=address, name=names[number] if names else "", language="en",
                    digests=["daily"], topics=[], status="confirmed", created_at=moment,
                    confirmed_at=moment, updated_at=moment,
                )
            )  # fmt: skip
