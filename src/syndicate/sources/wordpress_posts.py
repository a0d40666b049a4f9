"""WordPress posts as ingest records: the one place that knows the shape of WordPress's JSON.

Pure: a post (as the REST API sends it with `_embed`) in, an ingest-format article record out.
Nothing is validated here beyond picking values out: a post that cannot be an article (no link,
no title, an unknown language) becomes a record that ingest rejects, with ingest's own reason.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from syndicate.text.tidy import one_line

# WordPress's post statuses, as the ingest format's. "future" is a scheduled post: WordPress
# publishes it at its date_gmt, which is exactly the design's "a future published_at appears
# when its time comes", so it is stored as published with that date (and a post moved back to
# draft is modified, so the next poll sees it). Unknown statuses are never shown: draft.
STATUSES = {
    "publish": "published",
    "future": "published",
    "draft": "draft",
    "pending": "draft",
    "private": "draft",
    "auto-draft": "draft",
    "inherit": "draft",
    "trash": "retracted",
}
_UNKNOWN_STATUS = "draft"
# WordPress's *_gmt fields are UTC written without an offset (a proxy may have added one).
_GMT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>Z|[+-]\d{2}:\d{2})?")
_NO_DATE = "0000-00-00T00:00:00"
# WordPress's automatic excerpt ends in " [&hellip;]"; a reader is better served by "…".
_EXCERPT_MORE = re.compile(r"\s*\[(?:…|\.\.\.)\]$")


@dataclass(frozen=True)
class Vocabulary:
    """What a post's categories are matched against: the site's sections and stored topics."""

    default_language: str
    sections: frozenset[str]
    topics: Mapping[str, frozenset[str]] = field(default_factory=dict)  # language -> slugs


def post_id(post: object) -> str | None:
    """The article id of a post, `wp-<id>`, or None when it has no numeric id."""
    if isinstance(post, dict):
        value = post.get("id")
        if type(value) is int:
            return f"wp-{value}"
    return None


def modified_gmt(post: object) -> str | None:
    """When a post was last modified, as RFC 3339 UTC (`…+00:00`), or None."""
    return _utc(post.get("modified_gmt")) if isinstance(post, dict) else None


def article_record(post: Mapping[str, Any], vocabulary: Vocabulary) -> dict[str, Any]:
    """The ingest-format article record of one WordPress post."""
    embedded = _mapping(post.get("_embedded"))
    raw_status = post.get("status")
    status = STATUSES.get(raw_status, _UNKNOWN_STATUS) if isinstance(raw_status, str) else None
    updated_at = modified_gmt(post)
    published_at = _utc(post.get("date_gmt"))
    if published_at is None and status != "published":
        published_at = updated_at  # a draft may have no date yet; it is never shown anyway
    lang = post.get("lang")  # Polylang's field
    language = lang if isinstance(lang, str) and lang else vocabulary.default_language
    categories = _terms(embedded, "category")
    record: dict[str, Any] = {
        "type": "article",
        "id": post_id(post),
        "url": post.get("link"),
        "title": wordpress_text(_rendered(post.get("title"))),
        "summary": _EXCERPT_MORE.sub("…", wordpress_text(_rendered(post.get("excerpt")))),
        "body_html": _rendered(post.get("content")),
        "published_at": published_at if published_at is not None else post.get("date_gmt"),
        "status": status if status is not None else raw_status,
        "language": language,
        "authors": [
            wordpress_text(author["name"])
            for author in _list(embedded.get("author"))
            if isinstance(author, dict) and isinstance(author.get("name"), str)
        ],
        "tags": [wordpress_text(name) for _, name in _terms(embedded, "post_tag")],
        "topics": list(
            dict.fromkeys(
                slug
                for slug, _ in categories
                if slug in vocabulary.topics.get(language, frozenset())
            )
        ),
    }
    if updated_at is not None:
        record["updated_at"] = updated_at
    section = next((slug for slug, _ in categories if slug in vocabulary.sections), None)
    if section is not None:
        record["section"] = section
    image = _image(embedded)
    if image is not None:
        record["image"] = image
    return record


def wordpress_text(html: str) -> str:
    """The text a reader sees in a WordPress HTML fragment, on one line, entities decoded.

    Hidden elements and the theme's "Continue reading" link (class more-link) are left out:
    unlike `sanitize.strip_markup`, which keeps every element's text, this reads WordPress.
    """
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return one_line("".join(parser.parts))


class _TextParser(HTMLParser):
    _HIDDEN = frozenset({"script", "style", "template", "noscript"})
    _BLOCKS = frozenset(
        {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "td"}
        | {"figcaption", "figure", "section", "article", "ul", "ol", "dd", "dt", "hr"}
    )
    _VOID = frozenset(
        {"area", "br", "col", "embed", "hr", "img", "input", "source", "track", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden: list[str] = []  # open elements whose text is not shown

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = next((value or "" for name, value in attrs if name == "class"), "").split()
        # Themes append a "Continue reading" link (class more-link) to excerpts: not the lead.
        if self._hidden or tag in self._HIDDEN or "more-link" in classes:
            if tag not in self._VOID:
                self._hidden.append(tag)
            return
        if tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._hidden:
            if tag in self._hidden:
                index = len(self._hidden) - 1 - self._hidden[::-1].index(tag)
                del self._hidden[index:]
            return
        if tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _utc(value: object) -> str | None:
    if not isinstance(value, str) or value == _NO_DATE:
        return None
    match = _GMT.fullmatch(value)
    if match is None:
        return None
    return value if match["offset"] else value + "+00:00"


def _rendered(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _terms(embedded: Mapping[str, Any], taxonomy: str) -> list[tuple[str, str]]:
    """(slug, name) of the post's terms in `taxonomy`, in WordPress's order."""
    found: list[tuple[str, str]] = []
    for group in _list(embedded.get("wp:term")):
        for term in _list(group):
            if not isinstance(term, dict) or term.get("taxonomy") != taxonomy:
                continue
            slug, name = term.get("slug"), term.get("name")
            if isinstance(slug, str) and isinstance(name, str):
                found.append((slug.lower(), name))
    return found


def _image(embedded: Mapping[str, Any]) -> dict[str, Any] | None:
    """The featured image, or None (a missing or forbidden one is an error object, no URL)."""
    media = next(iter(_list(embedded.get("wp:featuredmedia"))), None)
    if not isinstance(media, dict) or not isinstance(media.get("source_url"), str):
        return None
    url: str = media["source_url"]
    mime = media.get("mime_type")
    if not isinstance(mime, str) or not mime:
        mime = mimetypes.guess_type(url)[0]
    if mime is None:
        return None  # without a type it cannot be an enclosure; the article is still good
    details = _mapping(media.get("media_details"))
    image: dict[str, Any] = {
        "url": url,
        "type": mime,
        # Older WordPress does not record file sizes; RSS says 0 when the length is unknown.
        "length": _count(details.get("filesize"), minimum=0) or 0,
        "caption": wordpress_text(_rendered(media.get("caption"))),
    }
    for key in ("width", "height"):
        value = _count(details.get(key), minimum=1)
        if value is not None:
            image[key] = value
    return image


def _count(value: object, *, minimum: int) -> int | None:
    return value if type(value) is int and value >= minimum else None
