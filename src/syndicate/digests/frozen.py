"""An edition frozen as JSON: stored once when built, and read back exactly as it was."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from syndicate.digests.model import DigestItem, Edition, TopicDigest
from syndicate.domain.periods import KINDS

CONTENT_VERSION = 1  # of the JSON an edition is frozen as


def edition_row(built: Edition) -> dict[str, Any]:
    """The `edition` table row of an edition."""
    return {
        "id": built.id,
        "kind": built.kind,
        "language": built.language,
        "date": built.date.isoformat(),
        "window_start": built.window_start,
        "window_end": built.window_end,
        "built_at": built.built_at,
        "subject": built.subject,
        "content": edition_to_json(built),
    }


def edition_item_to_json(item: DigestItem) -> dict[str, Any]:
    """A digest item as plain JSON data."""
    return {
        "cms_id": item.cms_id,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "published_at": item.published_at.astimezone(UTC).isoformat(),
        "section": item.section,
        "image_url": item.image_url,
        "image_alt": item.image_alt,
        "views": item.views,
    }


def edition_item_from_json(data: Mapping[str, Any]) -> DigestItem:
    """A digest item from its JSON data."""
    return DigestItem(
        cms_id=data["cms_id"],
        url=data["url"],
        title=data["title"],
        summary=data["summary"],
        published_at=datetime.fromisoformat(data["published_at"]),
        section=data["section"],
        image_url=data["image_url"],
        image_alt=data["image_alt"],
        views=data["views"],
    )


def edition_to_json(built: Edition) -> dict[str, Any]:
    """An edition as plain JSON data: everything rendering needs, nothing from the store."""
    return {
        "version": CONTENT_VERSION,
        "id": built.id,
        "kind": built.kind,
        "language": built.language,
        "date": built.date.isoformat(),
        "window_start": built.window_start.astimezone(UTC).isoformat(),
        "window_end": built.window_end.astimezone(UTC).isoformat(),
        "built_at": built.built_at.astimezone(UTC).isoformat(),
        "subject": built.subject,
        "picks": [edition_item_to_json(item) for item in built.picks],
        "most_viewed": [edition_item_to_json(item) for item in built.most_viewed],
        "topics": [
            {
                "slug": section.slug,
                "name": section.name,
                "items": [edition_item_to_json(item) for item in section.items],
            }
            for section in built.topics
        ],
    }


def edition_from_json(data: Mapping[str, Any]) -> Edition:
    """An edition from the JSON data `edition_to_json` made."""
    if data.get("version") != CONTENT_VERSION:
        raise ValueError(f"edition content version {data.get('version')!r} is not understood")
    kind = data["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown digest kind {kind!r}")
    return Edition(
        id=data["id"],
        kind=kind,
        language=data["language"],
        date=date.fromisoformat(data["date"]),
        window_start=datetime.fromisoformat(data["window_start"]),
        window_end=datetime.fromisoformat(data["window_end"]),
        built_at=datetime.fromisoformat(data["built_at"]),
        subject=data["subject"],
        picks=tuple(edition_item_from_json(item) for item in data["picks"]),
        most_viewed=tuple(edition_item_from_json(item) for item in data["most_viewed"]),
        topics=tuple(
            TopicDigest(
                section["slug"],
                section["name"],
                tuple(edition_item_from_json(item) for item in section["items"]),
            )
            for section in data["topics"]
        ),
    )
