"""Rendering editions as email: Jinja2 writes MJML, mjml-python compiles it, once per variant.

An edition is compiled once for each set of followed topics (its variant); what differs per
recipient (the greeting's name, the unsubscribe and preferences links) is left in the compiled
HTML and text as placeholders that `CompiledEdition.personalise` fills with `str.replace`, so
100,000 recipients cost 100,000 string replacements, not 100,000 compiles. A sender that
encodes the compiled text once asks `CompiledEdition.fillings` for the values alone. Every
mjml-python quirk lives in `syndicate.digests.compiler`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any, Literal

from babel.numbers import format_decimal

from syndicate.digests.compiler import compile_mjml
from syndicate.digests.frozen import edition_to_json
from syndicate.digests.model import DigestItem, Edition, TopicDigest
from syndicate.domain.periods import DIGEST_KINDS
from syndicate.feeds.catalog import section_name
from syndicate.i18n.catalogs import N_, direction, local_date, local_digits, translations
from syndicate.i18n.templating import environment

log = logging.getLogger(__name__)

Variant = Literal["email", "web"]
HTML_TEMPLATE = "digests/edition.mjml.j2"
TEXT_TEMPLATE = "digests/edition.txt.j2"
NAME_LIMIT = 100  # characters of a recipient's name a greeting shows
# Bytes each placeholder may grow to once personalised (an escaped link or name), counted
# against the size limit before any recipient is known.
PERSONAL_RESERVE = 600

GREETING_NAMED = N_("Hello {name},")
GREETING_ANONYMOUS = N_("Hello,")


@dataclass(frozen=True, slots=True)
class CompiledEdition:
    """An edition compiled for one variant, with per-recipient placeholders left in."""

    edition_id: str
    language: str
    subject: str
    topics: tuple[str, ...]  # slugs of the topic sections this variant carries
    html: str
    text: str
    trimmed: int  # items dropped to stay under the size limit
    placeholders: tuple[str, str, str]  # greeting, unsubscribe URL, preferences URL
    greetings: tuple[str, str]  # with a name ("Hello {name},"), without one ("Hello,")

    def personalise(self, name: str, unsubscribe_url: str, preferences_url: str) -> tuple[str, str]:
        """The HTML and plain text for one recipient: greeting and personal links filled in."""
        in_html, in_text = self.fillings(name, unsubscribe_url, preferences_url)
        html, text = self.html, self.text
        for placeholder, html_value, text_value in zip(
            self.placeholders, in_html, in_text, strict=True
        ):
            html = html.replace(placeholder, html_value)
            text = text.replace(placeholder, text_value)
        return html, text

    def fillings(
        self, name: str, unsubscribe_url: str, preferences_url: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What fills the placeholders for one recipient, in their order: in HTML, in text.

        A sender that encodes the compiled text once splices these in itself.
        """
        shown = "".join(char for char in " ".join(name.split()) if char.isprintable())[:NAME_LIMIT]
        greeting = self.greetings[0].format(name=shown) if shown else self.greetings[1]
        in_text = (greeting, unsubscribe_url, preferences_url)
        return tuple(map(escape, in_text)), in_text


class EditionRenderer:
    """Compiles one edition for each distinct variant its subscribers need, and keeps them."""

    def __init__(
        self, edition: Edition, *, site_title: str, web_url: str, max_html_bytes: int
    ) -> None:
        """Render `edition` for the site `site_title` whose pages live under `web_url`."""
        self.edition = edition
        self.site_title = site_title
        self.web_url = web_url
        self.max_html_bytes = max_html_bytes
        self._compiled: dict[tuple[str, ...], CompiledEdition] = {}

    def for_topics(self, followed: Iterable[str]) -> CompiledEdition:
        """The compiled edition for a subscriber who follows `followed` (topic slugs)."""
        key = tuple(section.slug for section in self.edition.topics_for(frozenset(followed)))
        if key not in self._compiled:
            self._compiled[key] = compile_edition(
                self.edition,
                key,
                site_title=self.site_title,
                web_url=self.web_url,
                max_html_bytes=self.max_html_bytes,
            )
        return self._compiled[key]


def web_copy_url(web_url: str, edition_id: str) -> str:
    """Where the web copy of an edition is served: {public_url}/digests/{edition_id}."""
    return f"{web_url.rstrip('/')}/digests/{edition_id}"


def compile_edition(
    edition: Edition,
    followed_topics: Iterable[str],
    *,
    site_title: str,
    web_url: str,
    max_html_bytes: int,
) -> CompiledEdition:
    """Compile `edition` for subscribers following `followed_topics`, once, under the size limit.

    `web_url` is Syndicate's public base URL ([web] public_url); the email's "view in browser"
    link points at the edition's web copy under it.
    """
    sections = _unrepeated(edition.topics_for(frozenset(followed_topics)))
    nonce = _nonce(edition, sections)
    placeholders = (f"%%greeting-{nonce}%%", f"%%unsubscribe-{nonce}%%", f"%%preferences-{nonce}%%")
    greeting, unsubscribe, preferences = placeholders
    links = {"greeting": greeting, "unsubscribe": unsubscribe, "preferences": preferences}
    html, trimmed, kept = _fitting(
        edition, sections, site_title, web_url, "email", links, max_html_bytes
    )
    text_template = environment().get_template(TEXT_TEMPLATE)
    text = text_template.render(_context(kept, site_title, web_url, "email", links))
    catalog = translations(edition.language)
    return CompiledEdition(
        edition_id=edition.id,
        language=edition.language,
        subject=edition.subject,
        topics=tuple(section.slug for section in kept.topics),
        html=html,
        text=text,
        trimmed=trimmed,
        placeholders=placeholders,
        greetings=(catalog.gettext(GREETING_NAMED), catalog.gettext(GREETING_ANONYMOUS)),
    )


def render_web_copy(edition: Edition, *, site_title: str, web_url: str, max_html_bytes: int) -> str:
    """The "view in browser" page of an edition: no greeting, no personal links, no topics."""
    html, _, _ = _fitting(edition, (), site_title, web_url, "web", None, max_html_bytes)
    return html


def write_preview(
    edition: Edition,
    folder: Path,
    *,
    site_title: str,
    web_url: str,
    max_html_bytes: int,
    followed_topics: Iterable[str] | None = None,
    name: str = "",
) -> list[Path]:
    """Write edition.html, edition.txt and web.html into `folder` for a person to look at.

    Without `followed_topics` the preview carries every topic section the edition has.
    """
    followed = [t.slug for t in edition.topics] if followed_topics is None else followed_topics
    compiled = compile_edition(
        edition, followed, site_title=site_title, web_url=web_url, max_html_bytes=max_html_bytes
    )
    base = web_url.rstrip("/")
    html, text = compiled.personalise(
        name, f"{base}/unsubscribe/preview", f"{base}/preferences/preview"
    )
    web = render_web_copy(
        edition, site_title=site_title, web_url=web_url, max_html_bytes=max_html_bytes
    )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, content in (("edition.html", html), ("edition.txt", text), ("web.html", web)):
        path = folder / file_name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


# -- compiling ---------------------------------------------------------------------------


def _fitting(
    edition: Edition,
    sections: tuple[TopicDigest, ...],
    site_title: str,
    web_url: str,
    variant: Variant,
    links: dict[str, str] | None,
    limit: int,
) -> tuple[str, int, _Trimmed]:
    """The compiled HTML with as few items dropped as keeps it under `limit` bytes.

    Items go from the end: Most Viewed first, then topic articles, then picks. The size of a
    trimmed edition shrinks as more is dropped, so a binary search finds the fewest to drop.
    """
    template = environment().get_template(HTML_TEMPLATE)

    def compiled(drop: int) -> tuple[str, _Trimmed]:
        kept = _Trimmed.of(edition, sections).without(drop)
        source = template.render(_context(kept, site_title, web_url, variant, links))
        return compile_mjml(source, rtl=direction(edition.language) == "rtl"), kept

    def size(html: str) -> int:
        reserve = sum(html.count(value) for value in (links or {}).values()) * PERSONAL_RESERVE
        return len(html.encode()) + reserve

    html, kept = compiled(0)
    if size(html) <= limit:
        return html, 0, kept
    low, high = 1, kept.count
    best = compiled(high)  # dropping everything is the floor
    while low < high:  # invariant: `best` is what dropping `high` items gives
        middle = (low + high) // 2
        attempt = compiled(middle)
        if size(attempt[0]) <= limit:
            best, high = attempt, middle
        else:
            low = middle + 1
    html, kept = best
    log.warning(
        "digest_trimmed edition=%s variant=%s topics=%s trimmed=%d html_bytes=%d limit=%d",
        edition.id,
        variant,
        ",".join(section.slug for section in sections) or "-",
        high,
        size(html),
        limit,
    )
    return html, high, kept


@dataclass(frozen=True, slots=True)
class _Trimmed:
    """An edition's items, possibly with some dropped from the end to fit the size limit."""

    edition: Edition
    picks: tuple[DigestItem, ...]
    most_viewed: tuple[DigestItem, ...]
    topics: tuple[TopicDigest, ...]

    @classmethod
    def of(cls, edition: Edition, sections: tuple[TopicDigest, ...]) -> _Trimmed:
        """Everything, nothing dropped yet."""
        return cls(edition, edition.picks, edition.most_viewed, sections)

    @property
    def count(self) -> int:
        """How many items there are to drop."""
        topic_items = sum(len(section.items) for section in self.topics)
        return len(self.picks) + len(self.most_viewed) + topic_items

    def without(self, drop: int) -> _Trimmed:
        """These items less `drop` of them: Most Viewed first, then topics, then picks."""
        most_viewed = self.most_viewed[: max(len(self.most_viewed) - drop, 0)]
        drop -= len(self.most_viewed) - len(most_viewed)
        topics = list(self.topics)
        while drop and topics:
            last = topics[-1]
            keep = max(len(last.items) - drop, 0)
            drop -= len(last.items) - keep
            topics[-1:] = [replace(last, items=last.items[:keep])] if keep else []
        picks = self.picks[: max(len(self.picks) - drop, 0)]
        return replace(self, picks=picks, most_viewed=most_viewed, topics=tuple(topics))


def _unrepeated(sections: Iterable[TopicDigest]) -> tuple[TopicDigest, ...]:
    """Topic sections where an article in two followed topics shows only in the first."""
    seen: set[str] = set()
    kept = []
    for section in sections:
        items = tuple(item for item in section.items if item.cms_id not in seen)
        seen.update(item.cms_id for item in items)
        if items:
            kept.append(replace(section, items=items))
    return tuple(kept)


def _nonce(edition: Edition, sections: tuple[TopicDigest, ...]) -> str:
    """A value no article text can contain, so placeholders never match content.

    It is a hash of the content itself (deterministic, yet a title cannot hold the hash of the
    edition it is part of).
    """
    data = json.dumps([edition_to_json(edition), [s.slug for s in sections]], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _context(
    kept: _Trimmed,
    site_title: str,
    web_url: str,
    variant: Variant,
    links: dict[str, str] | None,
) -> dict[str, Any]:
    """What the templates see: the items, the reader's language and direction, and links."""
    edition = kept.edition
    language = edition.language
    catalog = translations(language)
    kind = DIGEST_KINDS[edition.kind]
    rtl = direction(language) == "rtl"

    def section_label(item: DigestItem) -> str:
        return section_name(language, item.section) if item.section else ""

    def number(value: int) -> str:
        return _format_number(value, language)

    first_titles = [item.title for item in (*kept.picks, *kept.most_viewed)][:3]
    return {
        "gettext": catalog.gettext,
        "ngettext": catalog.ngettext,
        "lang": language,
        "dir": "rtl" if rtl else "ltr",
        "rtl": rtl,
        "start": "right" if rtl else "left",
        "variant": variant,
        "kind": edition.kind,
        "site_title": site_title,
        "subject": edition.subject,
        "kind_title": catalog.gettext(kind.title),
        "date_label": local_date(edition.date, language),
        "intro": catalog.gettext(kind.intro),
        "reason": catalog.gettext(kind.reason).format(site=site_title),
        "web_note": catalog.gettext(kind.web_note).format(site=site_title),
        "preheader": " · ".join(first_titles) or catalog.gettext(kind.intro),
        "picks": kept.picks,
        "most_viewed": kept.most_viewed,
        "topics": kept.topics,
        "section_label": section_label,
        "number": number,
        "view_url": web_copy_url(web_url, edition.id),
        "greeting": links["greeting"] if links else "",
        "unsubscribe_url": links["unsubscribe"] if links else "",
        "preferences_url": links["preferences"] if links else "",
    }


def _format_number(value: int, language: str) -> str:
    """A small count in the reader's digits."""
    return local_digits(str(format_decimal(value, locale=language)), language)
