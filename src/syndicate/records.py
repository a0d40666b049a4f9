"""The ingest format: one JSON Lines record in, one domain value (or a clear reason) out.

Pure: nothing here touches the store. Checks that need the store (does the topic exist, does
the article) happen in `ingest`. Titles, tag and topic names, descriptions, authors and
captions are plain text from here on: markup dropped, entities decoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from syndicate.model import Article, Image, Pick, Record, Status, Topic, Views
from syndicate.sanitize import strip_markup
from syndicate.text import one_line, tag_key, tag_name, xml_safe

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)


class RecordError(ValueError):
    """A record that cannot be stored; the message is the reason, ready for `line N: `."""


def parse_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware UTC datetime; anything else is an error."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    if match["offset"] is None:
        raise ValueError(f"{value!r} has no UTC offset")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None


def _absolute_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ValueError("URL contains white space or control characters")
    return value


def _non_empty_line(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return _plain_line(value)


def _plain_line(value: str) -> str:
    """Plain text (markup dropped, entities decoded) that must not end up empty."""
    if not one_line(value):
        raise ValueError("must not be empty")
    text = strip_markup(value)
    if not text:
        raise ValueError("must not be empty once markup is removed")
    return text


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
Url = Annotated[str, BeforeValidator(_absolute_url)]
Line = Annotated[str, BeforeValidator(_non_empty_line)]
Slug = Annotated[str, Field(pattern=SLUG, max_length=100)]


class _Record(BaseModel):
    # Strict: "3" is not a number and 1 is not a string. Unknown fields are ignored so that
    # the CMS can add fields without breaking ingest.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _ImageIn(_Record):
    url: Url
    type: Annotated[str, Field(pattern=r"^[a-z]+/[a-zA-Z0-9.+-]+$")]
    length: Annotated[int, Field(ge=0)]
    caption: str = ""
    width: Annotated[int, Field(gt=0)] | None = None
    height: Annotated[int, Field(gt=0)] | None = None


class _ArticleIn(_Record):
    type: Literal["article"]
    id: Annotated[str, Field(min_length=1, max_length=200)]
    url: Url
    title: Line
    published_at: Timestamp
    updated_at: Timestamp | None = None
    status: Annotated[Status, Field(strict=False)]  # a JSON string naming the status
    language: str
    summary: str = ""
    body_html: str = ""
    section: Slug | None = None
    authors: list[str] = Field(default_factory=list)
    tags: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list)
    topics: list[Slug] = Field(default_factory=list)
    image: _ImageIn | None = None


class _TopicIn(_Record):
    type: Literal["topic"]
    slug: Slug
    name: Line
    language: str
    description: str = ""


class _PickIn(_Record):
    type: Literal["pick"]
    article_id: Annotated[str, Field(min_length=1, max_length=200)]
    position: Annotated[int, Field(ge=1)]
    picked_at: Timestamp
    unpicked_at: Timestamp | None = None


class _ViewsIn(_Record):
    type: Literal["views"]
    article_id: Annotated[str, Field(min_length=1, max_length=200)]
    hour: Timestamp
    count: Annotated[int, Field(ge=0)]


_MODELS: dict[str, type[_Record]] = {
    "article": _ArticleIn,
    "topic": _TopicIn,
    "pick": _PickIn,
    "views": _ViewsIn,
}


def parse_record(line: str, languages: Sequence[str]) -> Record:
    """Parse one JSON Lines record into a domain value, or raise RecordError saying why."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise RecordError(f"invalid JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(data, dict):
        raise RecordError("expected a JSON object")
    kind = data.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(_MODELS)
        raise RecordError(f"unknown type {kind!r} (expected one of {known})")
    try:
        parsed = model.model_validate(data)
    except ValidationError as error:
        raise RecordError(_describe(error, data)) from None
    return _to_domain(parsed, languages, data)


def _describe(error: ValidationError, data: dict[str, Any]) -> str:
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "record"
    message = str(first["msg"]).removeprefix("Value error, ")
    subject = _subject(data)
    return f"{subject}{field}: {message}"


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


def _subject(data: dict[str, Any]) -> str:
    for key in ("id", "slug", "article_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return f"{data['type']} {one_line(value)[:80]!r}: "
    return ""


def _to_domain(parsed: _Record, languages: Sequence[str], data: dict[str, Any]) -> Record:
    subject = _subject(data)
    if isinstance(parsed, (_ArticleIn, _TopicIn)) and parsed.language not in languages:
        raise RecordError(
            f"{subject}language: {parsed.language!r} is not one of {', '.join(languages)}"
        )
    match parsed:
        case _ArticleIn():
            return _article(parsed, subject)
        case _TopicIn():
            return Topic(
                slug=parsed.slug,
                language=parsed.language,
                name=parsed.name,
                description=strip_markup(parsed.description),
            )
        case _PickIn():
            return Pick(parsed.article_id, parsed.position, parsed.picked_at, parsed.unpicked_at)
        case _ViewsIn():
            if parsed.hour.minute or parsed.hour.second or parsed.hour.microsecond:
                raise RecordError(f"{subject}hour: {parsed.hour.isoformat()} is not on the hour")
            return Views(parsed.article_id, parsed.hour, parsed.count)
    raise AssertionError(f"unhandled record model {type(parsed).__name__}")


def _article(parsed: _ArticleIn, subject: str) -> Article:
    tags: dict[str, str] = {}
    for index, raw in enumerate(parsed.tags):
        try:
            name = tag_name(_plain_line(raw))
        except ValueError as error:
            raise RecordError(f"{subject}tags.{index}: {error}") from None
        tags.setdefault(tag_key(name), name)  # near-duplicates within one article count once
    image = parsed.image
    return Article(
        id=parsed.id,
        url=parsed.url,
        title=parsed.title,
        published_at=parsed.published_at,
        updated_at=parsed.updated_at or parsed.published_at,
        status=parsed.status,
        language=parsed.language,
        summary=one_line(parsed.summary),
        body_html=xml_safe(parsed.body_html),
        section=parsed.section,
        authors=tuple(name for name in map(strip_markup, parsed.authors) if name),
        tags=tuple(tags.values()),
        topics=tuple(dict.fromkeys(parsed.topics)),
        image=None
        if image is None
        else Image(
            url=image.url,
            type=image.type,
            length=image.length,
            caption=strip_markup(image.caption),
            width=image.width,
            height=image.height,
        ),
    )
