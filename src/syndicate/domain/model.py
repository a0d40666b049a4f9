"""The domain: what the site publishes, as plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """Where an article stands in the CMS; only published ones are ever shown."""

    PUBLISHED = "published"
    DRAFT = "draft"
    RETRACTED = "retracted"


@dataclass(frozen=True, slots=True)
class Image:
    """An article's lead image."""

    url: str
    type: str
    length: int
    caption: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One article as the CMS published it; `id` is the CMS's stable id."""

    id: str
    url: str
    title: str
    published_at: datetime
    updated_at: datetime
    status: Status
    language: str
    summary: str = ""
    body_html: str = ""
    section: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    image: Image | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    """An In Focus topic as it is named and described in one language."""

    slug: str
    language: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Pick:
    """An Editor's Choice placement of an article, from `picked_at` until `unpicked_at`."""

    article_id: str
    position: int
    picked_at: datetime
    unpicked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Views:
    """How often an article was read during one hour (a count that replaces, never adds)."""

    article_id: str
    hour: datetime
    count: int


Record = Article | Topic | Pick | Views


class RecordError(ValueError):
    """A record that cannot be stored; the message is the reason, ready for `line N: `.

    Parsing raises it for what a line holds, and the store's batch plan for what the store
    lacks (a topic or an article the record names), so it lives here, below both.
    """


def describe(record: Record) -> str:
    """How a message names a record: its type and id."""
    match record:
        case Article():
            return f"article {record.id!r}"
        case Topic():
            return f"topic {record.slug!r}"
        case Pick() | Views():
            return f"{type(record).__name__.lower()} {record.article_id!r}"
    raise AssertionError(f"unhandled record {type(record).__name__}")
