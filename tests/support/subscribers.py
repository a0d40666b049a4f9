"""Subscribers for tests: readers who asked for digests through the registry and confirmed."""

from __future__ import annotations

from sqlalchemy import Engine

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
    subscriber = registry.confirm(engine, pending.pk)
    assert subscriber is not None, f"{email} could not confirm"
    return subscriber
