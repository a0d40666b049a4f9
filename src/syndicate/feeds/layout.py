"""Where each feed lives: a key such as `en/tags/iraq` names it and is its path without suffix.

Keys are the feeds' public URLs (`{public_url}/feeds/{key}.rss`), so they never change shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from urllib.parse import quote

FORMATS = ("rss", "atom", "json")
# The media type of every file a build writes, by suffix: what the web serves the feeds folder
# with and what each object in a bucket carries, so both answer alike.
MEDIA_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


def cache_control(max_age: int) -> str:
    """The Cache-Control of a feed file that clients may reuse for `max_age` seconds."""
    return f"public, max-age={max_age}"


def public_url(feeds_url: str, path: str) -> str:
    """The public URL of `path` (such as `en/tags/iraq.rss`) in the feeds folder at `feeds_url`.

    Every place that names a feed by URL (self links, pages, WebSub notices) spells it here,
    so a hub or a reader always sees one spelling.
    """
    return f"{feeds_url}{quote(path)}"


class Kind(StrEnum):
    """The kinds of feed, in the order the index lists them."""

    ALL = "all"
    EDITORS_CHOICE = "editors-choice"
    MOST_VIEWED = "most-viewed"
    SECTION = "sections"
    TOPIC = "topics"
    TAG = "tags"


def all_key(language: str) -> str:
    """The whole site in one language."""
    return f"{language}/all"


def section_key(language: str, section: str) -> str:
    """One section, such as `report`."""
    return f"{language}/sections/{section}"


def tag_key(language: str, slug: str) -> str:
    """One tag, by its assigned slug."""
    return f"{language}/tags/{slug}"


def topic_key(language: str, slug: str) -> str:
    """One In Focus topic."""
    return f"{language}/topics/{slug}"


def editors_choice_key(language: str) -> str:
    """The editors' current picks."""
    return f"{language}/editors-choice"


def most_viewed_key(language: str, period: str) -> str:
    """The most read articles of the last day, week or month."""
    return f"{language}/most-viewed/{period}"


def article_keys(
    language: str, section: str | None, tag_slugs: Iterable[str], topic_slugs: Iterable[str]
) -> set[str]:
    """The feeds an article of this shape appears in by what it is (not by picks or views)."""
    keys = {all_key(language)}
    if section:
        keys.add(section_key(language, section))
    keys.update(tag_key(language, slug) for slug in tag_slugs)
    keys.update(topic_key(language, slug) for slug in topic_slugs)
    return keys


def split_key(key: str) -> tuple[str, Kind, str | None]:
    """A key's language, kind and parameter (section, tag or topic slug, or period)."""
    language, _, rest = key.partition("/")
    kind_name, _, param = rest.partition("/")
    return language, Kind(kind_name), param or None
