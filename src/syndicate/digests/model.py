"""What an edition is: plain, frozen values that rendering and delivery share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from syndicate.domain.periods import Kind


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One article as a digest shows it."""

    cms_id: str
    url: str
    title: str
    summary: str
    published_at: datetime
    section: str | None = None
    image_url: str | None = None
    image_alt: str = ""
    views: int | None = None  # in the edition's window, for Most Viewed items


@dataclass(frozen=True, slots=True)
class TopicDigest:
    """The latest articles of one In Focus topic, for subscribers who follow it."""

    slug: str
    name: str
    items: tuple[DigestItem, ...]


@dataclass(frozen=True, slots=True)
class Edition:
    """One digest edition, frozen at its first build."""

    id: str  # daily-en-2026-11-23
    kind: Kind
    language: str
    date: date
    window_start: datetime
    window_end: datetime
    built_at: datetime
    subject: str
    picks: tuple[DigestItem, ...]
    most_viewed: tuple[DigestItem, ...]
    topics: tuple[TopicDigest, ...] = ()

    def topics_for(self, followed: tuple[str, ...] | frozenset[str]) -> tuple[TopicDigest, ...]:
        """The topic sections a subscriber following `followed` gets (those with items)."""
        return tuple(topic for topic in self.topics if topic.slug in followed and topic.items)


def edition_id(kind: Kind, language: str, day: date) -> str:
    """The stable id of an edition: kind, language and date."""
    return f"{kind}-{language}-{day.isoformat()}"
