"""A checker for JSON Feed 1.1 (https://jsonfeed.org/version/1.1), written from the spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

TOP_LEVEL = {
    "version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url",
    "icon", "favicon", "authors", "language", "expired", "hubs", "items",
}  # fmt: skip
ITEM = {
    "id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
    "banner_image", "date_published", "date_modified", "authors", "tags", "language",
    "attachments",
}  # fmt: skip


class InvalidJsonFeed(AssertionError):
    """The document breaks a rule of JSON Feed 1.1."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidJsonFeed(message)


def _url(value: Any, where: str) -> None:
    _check(isinstance(value, str), f"{where} must be a string")
    parts = urlsplit(value)
    _check(
        parts.scheme in ("http", "https") and bool(parts.netloc), f"{where} must be an absolute URL"
    )


def _date(value: Any, where: str) -> None:
    _check(isinstance(value, str), f"{where} must be a string")
    parsed = datetime.fromisoformat(value)
    _check(parsed.tzinfo is not None, f"{where} must be RFC 3339 with an offset")


def _authors(value: Any, where: str) -> None:
    _check(isinstance(value, list) and value, f"{where} must be a non-empty array")
    for author in value:
        _check(isinstance(author, dict), f"{where} entries must be objects")
        _check(
            bool({"name", "url", "avatar"} & set(author)),
            f"{where} entries need name, url or avatar",
        )


def validate_json_feed(feed: Any) -> None:
    """Raise InvalidJsonFeed unless `feed` (parsed JSON) is a valid JSON Feed 1.1 document."""
    _check(isinstance(feed, dict), "a feed is a JSON object")
    _check(feed.get("version") == "https://jsonfeed.org/version/1.1", "version must be 1.1's URL")
    _check(isinstance(feed.get("title"), str) and bool(feed["title"]), "title is required")
    unknown = {key for key in feed if key not in TOP_LEVEL and not key.startswith("_")}
    _check(not unknown, f"unknown top-level keys {unknown}")
    for key in ("home_page_url", "feed_url"):
        if key in feed:
            _url(feed[key], key)
    if "authors" in feed:
        _authors(feed["authors"], "authors")
    for hub in feed.get("hubs", []):
        _check(isinstance(hub.get("type"), str), "hub type is required")
        _url(hub.get("url"), "hub url")
    items = feed.get("items")
    _check(isinstance(items, list), "items is required and is an array")
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"items[{index}]"
        _check(isinstance(item, dict), f"{where} must be an object")
        unknown = {key for key in item if key not in ITEM and not key.startswith("_")}
        _check(not unknown, f"{where} has unknown keys {unknown}")
        _check(
            isinstance(item.get("id"), str) and bool(item["id"]),
            f"{where}.id is a non-empty string",
        )
        _check(item["id"] not in seen, f"{where}.id repeats")
        seen.add(item["id"])
        _check("content_html" in item or "content_text" in item, f"{where} needs content")
        for key in ("url", "image"):
            if key in item:
                _url(item[key], f"{where}.{key}")
        for key in ("date_published", "date_modified"):
            if key in item:
                _date(item[key], f"{where}.{key}")
        if "authors" in item:
            _authors(item["authors"], f"{where}.authors")
        if "tags" in item:
            _check(all(isinstance(tag, str) for tag in item["tags"]), f"{where}.tags are strings")
        for attachment in item.get("attachments", []):
            _url(attachment.get("url"), f"{where}.attachments.url")
            _check(isinstance(attachment.get("mime_type"), str), f"{where}.attachments.mime_type")
            if "size_in_bytes" in attachment:
                _check(isinstance(attachment["size_in_bytes"], int), f"{where} size_in_bytes")
