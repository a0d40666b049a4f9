"""What one ingest record may cost, and the rejections that name the limit a record went over.

A limit is a number and the `[ingest]` setting it comes from, so that an operator reading
`line 7: article 'x': tags: 3,000 tags, more than the limit of 100 ([ingest] max_tags)` knows
which key to raise. Fixed limits (the store's column sizes) have no setting to name.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

from syndicate.settings import IngestSettings

Limit = tuple[int, str]  # the number, and the [ingest] key it comes from ("" when fixed)


@dataclass(frozen=True)
class Limits:
    """The `[ingest]` limits, each with its setting's name."""

    title: Limit
    summary: Limit
    body: Limit
    tags: Limit
    topics: Limit
    authors: Limit
    line: Limit

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Limits:
        """The limits `settings` set."""
        return cls(
            title=(settings.max_title_chars, "max_title_chars"),
            summary=(settings.max_summary_chars, "max_summary_chars"),
            body=(settings.max_body_bytes, "max_body_bytes"),
            tags=(settings.max_tags, "max_tags"),
            topics=(settings.max_topics, "max_topics"),
            authors=(settings.max_authors, "max_authors"),
            line=(settings.max_line_bytes, "max_line_bytes"),
        )


class LimitError(ValueError):
    """A value over its limit; the message names the field, the size and the limit."""


def over_limit(size: int, unit: str, limit: Limit) -> str:
    """`3,000 tags, more than the limit of 100 ([ingest] max_tags)`."""
    number, setting = limit
    source = f" ([ingest] {setting})" if setting else ""
    return f"{size:,} {unit}, more than the limit of {number:,}{source}"


def check_count(field: str, items: Sized, limit: Limit, noun: str) -> None:
    """Refuse a list of more than `limit` items."""
    if len(items) > limit[0]:
        raise LimitError(f"{field}: {over_limit(len(items), noun + 's', limit)}")


def check_chars(field: str, text: str, limit: Limit) -> None:
    """Refuse text of more than `limit` characters."""
    if len(text) > limit[0]:
        raise LimitError(f"{field}: {over_limit(len(text), 'characters', limit)}")


def check_bytes(field: str, text: str, limit: Limit) -> None:
    """Refuse text whose UTF-8 form is more than `limit` bytes."""
    if len(text) * 4 <= limit[0]:
        return  # no character takes more than 4 bytes: no need to encode to know
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit[0]:
        raise LimitError(f"{field}: {over_limit(size, 'bytes', limit)}")
