"""The ingest format: one JSON Lines record in, one domain value (or a clear reason) out.

Pure: nothing here touches the store. Checks that need the store (does the topic exist, does
the article) happen in `ingest`. Whatever a line holds, `parse_record` returns a value or
raises RecordError: limits (`IngestSettings`) bound what one record may cost, and every value
that reaches the store fits its columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from syndicate.domain.model import Article, Image, Pick, Record, RecordError, Status, Topic, Views
from syndicate.settings import IngestSettings
from syndicate.sources.limits import (
    Limit,
    LimitError,
    Limits,
    check_bytes,
    check_chars,
    check_count,
)
from syndicate.text.sanitize import strip_markup
from syndicate.text.tidy import one_line, tag_key, tag_name, xml_safe

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)
# Far enough inside what Python's datetime can hold that no window arithmetic overflows.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_INTEGER = 2_147_483_647  # the store's INTEGER columns (32-bit on PostgreSQL)
MAX_LENGTH = 2**53 - 1  # an image's byte count: the largest integer every JSON reader keeps
MAX_ID_CHARS = 200  # the store's cms_id column
MAX_URL_CHARS = 2_048
MAX_NAME_CHARS = 1_000  # a tag or an author
MAX_TAG_KEY_BYTES = 2_000  # a tag's folded key, which PostgreSQL must fit in an index entry
# What may not be in an id: controls, and what XML cannot carry (lone surrogates included).
_NOT_IN_ID = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# An http(s) URL with a plain host name and nothing odd in it.
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\s\x00-\x1f\x7f\ud800-\udfff]*)?"
)
# Memos of pure conversions of strings that recur in a stream (hours of views, tag names,
# authors): a dictionary look-up instead of a parse. Failures are never remembered.
_MEMO_LIMIT = 10_000
_MEMO_KEY_CHARS = 200
_TIMESTAMPS: dict[str, datetime] = {}
_NAMES: dict[str, str] = {}  # raw author -> plain text
_TAG_NAMES: dict[str, tuple[str, str]] = {}  # raw tag -> name, key
T = TypeVar("T")
_DEFAULT_LIMITS = Limits.from_settings(IngestSettings())


def parse_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware UTC datetime; anything else is an error."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string")
    known = _TIMESTAMPS.get(value)
    if known is None:
        known = _remember(_TIMESTAMPS, value, _timestamp(value))
    return known


def _timestamp(value: str) -> datetime:
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not an RFC 3339 timestamp")
    if match["offset"] is None:
        raise ValueError(f"{_shown(value)} has no UTC offset")
    try:
        moment = datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that leaves year 1 or 9999
        raise ValueError(f"{_shown(value)} is not a real date and time") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"{_shown(value)} is outside the years 1000 to 8999")
    return moment


def _remember(memo: dict[str, T], key: str, value: T) -> T:
    """Keep `value` for `key` in a memo of bounded size (when `key` is short)."""
    if len(key) <= _MEMO_KEY_CHARS:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = value
    return value


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "…")


def _absolute_url(value: object) -> object:
    if not isinstance(value, str):
        return value  # pydantic says what type it wanted
    if len(value) <= MAX_URL_CHARS and _PLAIN_URL.fullmatch(value):
        return value  # the usual shape, which the checks below would pass: no need to split
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"{len(value):,} characters, more than {MAX_URL_CHARS:,}")
    if re.search(r"[\s\x00-\x1f\x7f\ud800-\udfff]", value):
        raise ValueError("URL contains white space or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # a malformed IPv6 literal, say
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{_shown(value)} is not an absolute http(s) URL")
    return value


def _identifier(value: object) -> object:
    if isinstance(value, str) and _NOT_IN_ID.search(value):
        raise ValueError("contains control characters or an unpaired surrogate")
    return value


def _text(value: object) -> object:
    # Characters XML cannot carry (NUL, lone surrogates from `\ud800` escapes) never reach
    # the store: they are dropped from text, as they always were from titles.
    return xml_safe(value) if isinstance(value, str) else value


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
Url = Annotated[str, BeforeValidator(_absolute_url)]
# Constraints first: pydantic checks them in Rust; after a validator, they run in Python.
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), BeforeValidator(_identifier)]
Text = Annotated[str, BeforeValidator(_text)]
Slug = Annotated[str, Field(pattern=SLUG, max_length=100)]
Count = Annotated[int, Field(ge=0, le=MAX_INTEGER)]


class _Record(BaseModel):
    # Strict: "3" is not a number and 1 is not a string. Unknown fields are ignored so that
    # the CMS can add fields without breaking ingest.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _ImageIn(_Record):
    url: Url
    type: Annotated[str, Field(pattern=r"^[a-z]+/[a-zA-Z0-9.+-]+$", max_length=255)]
    length: Annotated[int, Field(ge=0, le=MAX_LENGTH)]
    caption: Text = ""
    width: Annotated[int, Field(gt=0, le=MAX_INTEGER)] | None = None
    height: Annotated[int, Field(gt=0, le=MAX_INTEGER)] | None = None


class _ArticleIn(_Record):
    type: Literal["article"]
    id: Id
    url: Url
    title: Text
    published_at: Timestamp
    updated_at: Timestamp | None = None
    status: Annotated[Status, Field(strict=False)]  # a JSON string naming the status
    language: str
    summary: Text = ""
    body_html: Text = ""
    section: Slug | None = None
    authors: list[Text] = Field(default_factory=list)
    tags: list[Text] = Field(default_factory=list)
    topics: list[Slug] = Field(default_factory=list)
    image: _ImageIn | None = None


class _TopicIn(_Record):
    type: Literal["topic"]
    slug: Slug
    name: Text
    language: str
    description: Text = ""


class _PickIn(_Record):
    type: Literal["pick"]
    article_id: Id
    position: Annotated[int, Field(ge=1, le=MAX_INTEGER)]
    picked_at: Timestamp
    unpicked_at: Timestamp | None = None


class _ViewsIn(_Record):
    type: Literal["views"]
    article_id: Id
    hour: Timestamp
    count: Count


_MODELS: dict[str, type[_Record]] = {
    "article": _ArticleIn,
    "topic": _TopicIn,
    "pick": _PickIn,
    "views": _ViewsIn,
}
# Pydantic's wording where a reader of `line N: ...` deserves a plainer one.
_MESSAGES = {"string_unicode": "contains an unpaired surrogate (a lone \\ud800-\\udfff escape)"}


def parse_record(line: str, languages: Sequence[str], limits: Limits = _DEFAULT_LIMITS) -> Record:
    """Parse one JSON Lines record into a domain value, or raise RecordError saying why."""
    data = _json(line)
    if not isinstance(data, dict):
        raise RecordError("expected a JSON object")
    kind = data.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(_MODELS)
        shown = repr(one_line(kind)[:80]) if isinstance(kind, str) else repr(kind)[:80]
        raise RecordError(f"unknown type {shown} (expected one of {known})")
    try:
        parsed = model.model_validate(data)
    except ValidationError as error:
        raise RecordError(_describe(error, data)) from None
    return _to_domain(parsed, languages, data, limits)


def _json(line: str) -> object:
    # Without its line break: a column must count the line as an editor shows it (the json
    # module would count the break, and put an error after it on a second line).
    text = line.rstrip("\r\n")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        # Some of the module's messages end in "at" ("Invalid control character at").
        message = error.msg.removesuffix(" at")
        raise RecordError(f"invalid JSON: {message} at column {error.pos + 1}") from None
    except RecordError:
        raise
    except RecursionError:
        raise RecordError("invalid JSON: nested too deeply") from None
    except ValueError:  # int() refuses numbers of thousands of digits
        raise RecordError("invalid JSON: a number with too many digits") from None


def _refuse_constant(name: str) -> NoReturn:
    raise RecordError(f"invalid JSON: {name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # json.loads makes one a call


def _describe(error: ValidationError, data: dict[str, Any]) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "record"
    message = _MESSAGES.get(first["type"]) or str(first["msg"]).removeprefix("Value error, ")
    return f"{_subject(data)}{field}: {message}"


def _subject(data: dict[str, Any]) -> str:
    for key in ("id", "slug", "article_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return f"{data['type']} {one_line(value)[:80]!r}: "
    return ""


def _to_domain(
    parsed: _Record, languages: Sequence[str], data: dict[str, Any], limits: Limits
) -> Record:
    try:
        if isinstance(parsed, (_ArticleIn, _TopicIn)) and parsed.language not in languages:
            shown = repr(one_line(parsed.language)[:20])
            raise RecordError(f"language: {shown} is not one of {', '.join(languages)}")
        return _domain(parsed, limits)
    except (RecordError, LimitError) as error:
        raise RecordError(f"{_subject(data)}{error}") from None


def _domain(parsed: _Record, limits: Limits) -> Record:
    match parsed:
        case _ArticleIn():
            return _article(parsed, limits)
        case _TopicIn():
            return Topic(
                slug=parsed.slug,
                language=parsed.language,
                name=_plain_line("name", parsed.name, limits.title),
                description=_plain("description", parsed.description, limits.summary),
            )
        case _PickIn():
            return Pick(parsed.article_id, parsed.position, parsed.picked_at, parsed.unpicked_at)
        case _ViewsIn():
            if parsed.hour.minute or parsed.hour.second or parsed.hour.microsecond:
                raise RecordError(f"hour: {parsed.hour.isoformat()} is not on the hour")
            return Views(parsed.article_id, parsed.hour, parsed.count)
    raise AssertionError(f"unhandled record model {type(parsed).__name__}")


def _plain(field: str, text: str, limit: Limit) -> str:
    """Text with its markup dropped, once its length is within `limit`."""
    check_chars(field, text, limit)
    return strip_markup(text)


def _plain_line(field: str, text: str, limit: Limit) -> str:
    """Like _plain, for a field that must not end up empty."""
    if not text or text.isspace():
        raise RecordError(f"{field}: must not be empty")
    plain = _plain(field, text, limit)
    if not plain:
        raise RecordError(f"{field}: must not be empty once markup is removed")
    return plain


def _article(parsed: _ArticleIn, limits: Limits) -> Article:
    check_count("tags", parsed.tags, limits.tags, "tag")
    check_count("topics", parsed.topics, limits.topics, "topic")
    check_count("authors", parsed.authors, limits.authors, "author")
    check_chars("summary", parsed.summary, limits.summary)
    check_bytes("body_html", parsed.body_html, limits.body)
    image = parsed.image
    return Article(
        id=parsed.id,
        url=parsed.url,
        title=_plain_line("title", parsed.title, limits.title),
        published_at=parsed.published_at,
        updated_at=parsed.updated_at or parsed.published_at,
        status=parsed.status,
        language=parsed.language,
        summary=one_line(parsed.summary),
        body_html=parsed.body_html,
        section=parsed.section,
        authors=tuple(
            name for index, raw in enumerate(parsed.authors) if (name := _author(raw, index))
        ),
        tags=_tags(parsed.tags),
        topics=tuple(dict.fromkeys(parsed.topics)),
        image=None
        if image is None
        else Image(
            url=image.url,
            type=image.type,
            length=image.length,
            caption=_plain("image.caption", image.caption, limits.summary),
            width=image.width,
            height=image.height,
        ),
    )


def _author(raw: str, index: int) -> str:
    known = _NAMES.get(raw)
    if known is None:
        known = _remember(_NAMES, raw, _plain(f"authors.{index}", raw, (MAX_NAME_CHARS, "")))
    return known


def _tags(raw_tags: list[str]) -> tuple[str, ...]:
    """Tag names as plain text, near-duplicates within one article counted once."""
    tags: dict[str, str] = {}
    for index, raw in enumerate(raw_tags):
        known = _TAG_NAMES.get(raw)
        if known is None:
            known = _remember(_TAG_NAMES, raw, _tag(raw, index))
        name, key = known
        tags.setdefault(key, name)
    return tuple(tags.values())


def _tag(raw: str, index: int) -> tuple[str, str]:
    """A tag's name as plain text, and its key."""
    field = f"tags.{index}"
    name = tag_name(_plain_line(field, raw, (MAX_NAME_CHARS, "")))
    key = tag_key(name)
    if len(key) > MAX_NAME_CHARS or len(key.encode()) > MAX_TAG_KEY_BYTES:
        raise RecordError(f"{field}: too long once folded for comparison")
    return name, key
