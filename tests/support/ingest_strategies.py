"""Ingest input for property tests: valid records, and lines that must be rejected.

A rejected line is known in advance, with the words its reason must hold: the field it names,
or "invalid JSON" when the line cannot be parsed at all (then no field can be named).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from syndicate.settings import IngestSettings

# Small limits, so that records over them stay small enough for many examples.
LIMITS = IngestSettings(
    max_title_chars=40,
    max_summary_chars=60,
    max_body_bytes=200,
    max_tags=5,
    max_topics=2,
    max_authors=2,
    max_line_bytes=20_000,
)
TOO_DEEP = "[" * 5_000 + "]" * 5_000
TOO_MANY_DIGITS = "9" * 5_000
# JSON text put in place of a field's value as is (json.dumps cannot write these).
RAW = {"TOO_DEEP": TOO_DEEP, "TOO_MANY_DIGITS": TOO_MANY_DIGITS, "NAN": "NaN",
       "INFINITY": "Infinity", "MINUS_INFINITY": "-Infinity", "HUGE_FLOAT": "1e400"}  # fmt: skip


def article(cms_id: str, **fields: Any) -> dict[str, Any]:
    """A valid English article record, with `fields` changed."""
    record = {
        "type": "article",
        "id": cms_id,
        "url": f"https://site.example/en/news/{cms_id}",
        "title": f"Title of {cms_id}",
        "published_at": "2025-08-20T09:30:00+03:30",
        "status": "published",
        "language": "en",
        "summary": "A lead.",
        "body_html": "<p>Body.</p>",
        "authors": ["Sara Ahmadi"],
        "tags": ["Iraq", "US"],
        "image": {"url": "https://site.example/img/1.jpg", "type": "image/jpeg", "length": 5},
    }
    return record | fields


def views(cms_id: str, **fields: Any) -> dict[str, Any]:
    """A valid views record for article `cms_id`, with `fields` changed."""
    return {"type": "views", "article_id": cms_id, "hour": "2025-08-20T13:00:00Z", "count": 7} | (
        fields
    )


def pick(cms_id: str, **fields: Any) -> dict[str, Any]:
    """A valid Editor's Choice record for article `cms_id`, with `fields` changed."""
    record = {"type": "pick", "article_id": cms_id, "position": 1,
              "picked_at": "2025-08-20T12:00:00Z", "unpicked_at": None}  # fmt: skip
    return record | fields


def line(record: dict[str, Any]) -> str:
    """A record as one JSON line; RAW placeholders become their raw JSON text."""
    text = json.dumps(record, ensure_ascii=True)
    for name, raw in RAW.items():
        text = text.replace(f'"{name}"', raw)
    return text


@dataclass(frozen=True)
class Bad:
    """A change that makes a record invalid, and what its rejection must say."""

    kind: str  # article, views or pick
    field: str  # the field to set (dotted for the image)
    value: Any
    reason: str


def _bad(kind: str, field: str, reason: str, *values: Any) -> list[Bad]:
    return [Bad(kind, field, value, reason) for value in values]


INVALID_JSON = "invalid JSON"
BAD_CHANGES: list[Bad] = [
    *_bad("article", "id", "id:", "", "a\u0000b", "\ud800", "x" * 201, 5, None, ["x"]),
    *_bad("article", "url", "url:", "ftp://site.example/1", "/en/news/1", "https://s.example/a b",
          "https://s.example/\ud800", "https://s.example/" + "x" * 3_000, "javascript:alert(1)"),
    *_bad("article", "title", "title:", "", "   ", "<b></b>", "<script>alert(1)</script>", 1,
          "x" * 41, None),
    *_bad("article", "published_at", "published_at:", "0001-01-01T00:00:00+01:00",
          "9999-12-31T23:59:59-01:00", "2025-08-20T09:30:00", "2025-02-30T09:30:00Z",
          "0999-12-31T23:00:00Z", "9000-01-01T00:00:00Z", "yesterday", 20250820, ""),
    *_bad("article", "updated_at", "updated_at:", "0001-01-01T00:30:00+01:00", "2025-13-01T00:00:00Z"),
    *_bad("article", "status", "status:", "live", None),
    *_bad("article", "language", "language:", "de", "", "\ud800"),
    *_bad("article", "section", "section:", "News & Views", "x" * 101),
    *_bad("article", "tags", "tags", "Iraq", [""], ["<i></i>"], [1], ["t"] * 6),
    *_bad("article", "topics", "topics", ["Not A Slug"], ["nowhere"], ["a", "b", "c"]),
    *_bad("article", "authors", "authors", ["a", "b", "c"], [5], "Sara"),
    *_bad("article", "summary", "summary:", "x" * 61, 5),
    *_bad("article", "body_html", "body_html:", "x" * 201, "ب" * 101),
    *_bad("article", "image.length", "image.length:", -1, 2**53, 2**63, 2**70, 1.5, "5", True),
    *_bad("article", "image.width", "image.width:", 0, 2**31, 2**64),
    *_bad("article", "image.url", "image.url:", "data:image/png;base64,AAAA"),
    *_bad("article", "image.caption", "image.caption:", "x" * 61),
    *_bad("article", "title", INVALID_JSON, "NAN", "TOO_DEEP", "TOO_MANY_DIGITS"),
    *_bad("article", "image.length", INVALID_JSON, "TOO_MANY_DIGITS", "INFINITY", "MINUS_INFINITY"),
    *_bad("article", "image.length", "image.length:", "HUGE_FLOAT"),
    *_bad("views", "count", "count:", -1, 2**31, 2**63, 2**64, 1.5, "5", None),
    *_bad("views", "count", INVALID_JSON, "TOO_MANY_DIGITS", "NAN", "TOO_DEEP"),
    *_bad("views", "hour", "hour:", "2025-08-20T13:30:00Z", "0001-01-01T00:00:00+01:00",
          "9999-12-31T23:00:00-01:00", "2025-08-20T13:00:00"),
    *_bad("views", "article_id", "article_id:", "not-stored", "", "\u0000"),
    *_bad("pick", "position", "position:", 0, 2**31, 2**63, "1"),
    *_bad("pick", "picked_at", "picked_at:", "0001-01-01T00:00:00+00:01", 12),
]  # fmt: skip


def bad_record(change: Bad, cms_id: str, stored_id: str) -> dict[str, Any]:
    """A record of `change.kind` with `change` applied; views and picks name `stored_id`."""
    record = {"article": lambda: article(cms_id), "views": lambda: views(stored_id),
              "pick": lambda: pick(stored_id)}[change.kind]()  # fmt: skip
    if change.field.startswith("image."):
        record["image"] = record["image"] | {change.field.removeprefix("image."): change.value}
    else:
        record[change.field] = change.value
    return record


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def junk_line() -> st.SearchStrategy[bytes]:
    """A line that may hold anything: bytes, JSON of any shape, a record with odd fields."""
    record_like = st.fixed_dictionaries(
        {"type": st.sampled_from(["article", "topic", "pick", "views", "comment"])},
        optional={
            key: _json_values()
            for key in ("id", "url", "title", "published_at", "status", "language", "tags",
                        "article_id", "hour", "count", "position", "picked_at", "slug", "name")
        },
    )  # fmt: skip
    return st.one_of(
        st.binary(max_size=60),
        _json_values().map(lambda value: json.dumps(value).encode()),
        record_like.map(lambda value: json.dumps(value).encode()),
        st.text(max_size=60).map(lambda text: text.encode("utf-8", "surrogatepass")),
    ).map(lambda raw: raw.replace(b"\n", b" ").replace(b"\r", b" "))
