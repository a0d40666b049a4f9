"""The topics a subscriber may follow, as the store holds them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from syndicate.store.database import Bind, transaction
from syndicate.store.schema import topic, topic_text


@dataclass(frozen=True, slots=True)
class TopicChoice:
    """A topic a subscriber may follow, named in one language."""

    slug: str
    name: str


def topic_slugs(bind: Bind) -> frozenset[str]:
    """The slugs of every stored topic."""
    with transaction(bind) as connection:
        return frozenset(connection.execute(select(topic.c.slug)).scalars())


def topic_choices(bind: Bind, language: str) -> list[TopicChoice]:
    """Every topic, named in `language` where it has a name there (else English, else its slug)."""
    with transaction(bind) as connection:
        rows = connection.execute(
            select(topic.c.slug, topic_text.c.language, topic_text.c.name)
            .select_from(topic.outerjoin(topic_text))
            .order_by(topic.c.slug)
        ).all()
    names: dict[str, dict[str, str]] = {}
    for slug, text_language, name in rows:
        names.setdefault(slug, {})
        if text_language is not None:
            names[slug][text_language] = name
    choices = [
        TopicChoice(slug, named.get(language) or named.get("en") or slug)
        for slug, named in names.items()
    ]
    return sorted(choices, key=lambda choice: choice.name.casefold())
