"""Rendering feeds: data in, bytes out. The only module that touches feedgen.

An article looks the same in every feed it appears in, so each article is rendered once per
format into a fragment (an RSS `<item>`, an Atom `<entry>`, a JSON Feed item) and every feed is
its head plus the fragments of its items. That is what makes a full build of thousands of tag
feeds affordable.

feedgen's traps, all handled here:
- `add_entry` prepends by default; we never add entries to it at all (fragments are spliced).
- `updated` and `lastBuildDate` default to now; both are always set to the newest item's date,
  so a feed's bytes depend only on its content.
- Atom entry links lose rel, type and length (a shadowed loop variable): enclosure links are
  added here with lxml instead.
- media:content lands in a `media:group` unless `group=None`; media:description is not
  supported, so it is added here.
- RSS channels only get the self link; the hub link is added here.
- Atom content type "CDATA" is not valid Atom; content is always type="html" (escaped).
- RSS <description> is HTML, but feedgen fills it from the plain-text summary as is; it is
  escaped here. An empty body gets no content element at all (an empty one is invalid Atom).

RSS text uses hexadecimal character references for `&`, `<` and `>` (`&#x26;`), as the RSS
Advisory Board's profile recommends: some RSS readers decode named entities twice.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from feedgen.entry import FeedEntry
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.ext.media import MediaEntryExtension, MediaExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from syndicate import __version__
from syndicate.domain.model import Image
from syndicate.feeds.layout import public_url
from syndicate.i18n.catalogs import direction
from syndicate.text.sanitize import plain_lead, sanitize_html
from syndicate.text.tidy import one_line

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_NS = "http://search.yahoo.com/mrss/"
RSS_NSMAP = {
    "atom": ATOM_NS,
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": MEDIA_NS,
}
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
GENERATOR = "Syndicate"
RSS_CLOSING = b"  </channel>\n</rss>\n"
ATOM_CLOSING = b"</feed>\n"
# Where a feed with no items yet takes its date from, so that even it is deterministic.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SUMMARY_LIMIT = 2000  # characters of an editor's summary kept
_NAMED_MARKUP = re.compile(rb"&(amp|lt|gt);")
_HEX_REFERENCES = {b"amp": b"&#x26;", b"lt": b"&#x3C;", b"gt": b"&#x3E;"}


@dataclass(frozen=True, slots=True)
class Label:
    """A tag or topic on an item: the name readers see and the slug of its feed."""

    name: str
    slug: str


@dataclass(frozen=True, slots=True)
class FeedItem:
    """What a feed shows of one article."""

    cms_id: str
    url: str
    title: str
    summary: str
    body_html: str
    published_at: datetime
    updated_at: datetime
    language: str
    authors: tuple[str, ...] = ()
    tags: tuple[Label, ...] = ()
    topics: tuple[Label, ...] = ()
    image: Image | None = None


@dataclass(frozen=True, slots=True)
class Fragments:
    """One article rendered for each format, ready to splice into any feed."""

    rss: bytes
    atom: bytes
    json: bytes


@dataclass(frozen=True, slots=True)
class FeedHead:
    """Everything about a feed except its items."""

    key: str
    language: str
    title: str
    description: str
    home_url: str
    updated: datetime
    site_title: str


class FeedRenderer:
    """Renders fragments and feeds for one site; holds only settings-derived constants."""

    def __init__(
        self, *, site_url: str, feeds_url: str, hub: str | None = None, embed_frames: bool = False
    ) -> None:
        """Render for the site `site_url`, whose feeds are published under `feeds_url`."""
        self.site_url = site_url
        self.feeds_url = feeds_url
        self.hub = hub
        self.embed_frames = embed_frames
        # Ids are tag URIs (RFC 4151) minted from the site's host: they never depend on an
        # article's URL or title, so an article keeps one id in every feed, forever.
        self.id_prefix = f"tag:{urlsplit(site_url).hostname},2000:"

    # -- ids and urls ---------------------------------------------------------------------

    def article_id(self, cms_id: str) -> str:
        """The permanent id of an article in every feed."""
        return f"{self.id_prefix}article:{quote(cms_id, safe='-._~')}"

    def feed_url(self, key: str, fmt: str) -> str:
        """The public URL of feed `key` in format `fmt`."""
        return public_url(self.feeds_url, f"{key}.{fmt}")

    # -- fragments ------------------------------------------------------------------------

    def fragments(self, item: FeedItem) -> Fragments:
        """Render one article for every format."""
        content = self._content(item)
        # Summaries and captions are plain text by contract, but CMS editors paste markup.
        summary = (
            plain_lead(item.summary, SUMMARY_LIMIT) or plain_lead(item.body_html) or item.title
        )
        entry = self._entry(item, content, summary)
        return Fragments(
            rss=self._rss_item(item, entry),
            atom=self._atom_entry(item, entry),
            json=self._json_item(item, content, summary),
        )

    def _content(self, item: FeedItem) -> str:
        cleaned = sanitize_html(item.body_html, item.url, frames=self.embed_frames)
        if cleaned and direction(item.language) == "rtl":
            return f'<div dir="rtl" lang="{item.language}">{cleaned}</div>'
        return cleaned

    def _entry(self, item: FeedItem, content: str, summary: str) -> FeedEntry:
        """One feedgen entry serves both XML formats; what differs is added to the trees."""
        entry = FeedEntry()
        entry.register_extension("dc", DcEntryExtension, atom=False, rss=True)
        entry.register_extension("media", MediaEntryExtension, atom=False, rss=True)
        entry.id(self.article_id(item.cms_id))
        entry.title(item.title)
        entry.link(href=item.url)
        entry.published(item.published_at)
        entry.updated(_updated(item))
        # summary() also fills RSS <description>; description() would overwrite Atom content.
        entry.summary(summary)
        if content:
            entry.content(content, type="html")
        for name in item.authors:
            # feedgen writes RSS <author> only with an e-mail address, which we do not have;
            # RSS gets dc:creator instead.
            entry.author(name=name)
        if item.authors:
            entry.dc.dc_creator(list(item.authors))
        if item.image is not None:
            entry.enclosure(item.image.url, str(item.image.length), item.image.type)
            entry.media.content(_media_content(item.image), group=None)
        return entry

    def _rss_item(self, item: FeedItem, entry: FeedEntry) -> bytes:
        element = entry.rss_entry()
        description = element.find("description")
        assert description is not None
        description.text = html.escape(description.text or "", quote=False)
        # Categories go in directly: feedgen's category() validates each dict at a cost that
        # dominated full builds, for no gain here.
        anchor = element.find("guid")
        for label, kind in reversed(_labels(item)):
            category = etree.Element("category", domain=f"{self.feeds_url}{item.language}/{kind}/")
            category.text = label.name
            anchor.addnext(category)
        if item.image is not None and item.image.caption:
            media = element.find(f"{{{MEDIA_NS}}}content")
            assert media is not None
            caption = etree.SubElement(media, f"{{{MEDIA_NS}}}description", type="plain")
            caption.text = plain_lead(item.image.caption, SUMMARY_LIMIT)
        return _fragment(element, "rss")

    def _atom_entry(self, item: FeedItem, entry: FeedEntry) -> bytes:
        element = entry.atom_entry()
        anchor = element.find("summary")
        for label, kind in reversed(_labels(item)):
            anchor.addnext(
                etree.Element(
                    "category", term=label.name, scheme=f"{self.feeds_url}{item.language}/{kind}/"
                )
            )
        if item.image is not None:
            # feedgen's enclosure() made this link but dropped its rel, type and length (the
            # loop in atom_entry shadows the link dict); put them back.
            for link in element.findall("link"):
                if link.get("href") == item.image.url and link.get("rel") is None:
                    link.set("rel", "enclosure")
                    link.set("type", item.image.type)
                    link.set("length", str(item.image.length))
                    break
        return _fragment(element, "atom")

    def _json_item(self, item: FeedItem, content: str, summary: str) -> bytes:
        data: dict[str, Any] = {
            "id": self.article_id(item.cms_id),
            "url": item.url,
            "title": item.title,
            **({"content_html": content} if content else {"content_text": summary}),
            "summary": summary,
            "date_published": _iso(item.published_at),
            "date_modified": _iso(_updated(item)),
            "language": item.language,
        }
        if item.authors:
            data["authors"] = [{"name": name} for name in item.authors]
        if item.tags or item.topics:
            data["tags"] = [label.name for label, _ in _labels(item)]
        if item.image is not None:
            data["image"] = item.image.url
            data["attachments"] = [
                {
                    "url": item.image.url,
                    "mime_type": item.image.type,
                    "size_in_bytes": item.image.length,
                    **({"title": item.image.caption} if item.image.caption else {}),
                }
            ]
        return _json(data)

    # -- whole feeds ----------------------------------------------------------------------

    def documents(
        self, head: FeedHead, fragments: Mapping[str, Sequence[bytes]]
    ) -> dict[str, bytes]:
        """The complete feed in every format, from its head and each format's item fragments."""
        title = one_line(head.title)
        description = one_line(head.description) or title
        generator = FeedGenerator()  # one generator serves both XML formats
        generator.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
        generator.register_extension(
            "media", MediaExtension, MediaEntryExtension, atom=False, rss=True
        )
        generator.id(f"{self.id_prefix}feed:{quote(head.key, safe='/-._~')}")
        generator.title(title)
        generator.description(description)
        generator.subtitle(description)
        generator.language(head.language)
        generator.updated(head.updated)
        generator.lastBuildDate(head.updated)
        generator.author(name=one_line(head.site_title), uri=self.site_url)
        return {
            "rss": self._splice(self._rss_head(generator, head), RSS_CLOSING, fragments["rss"]),
            "atom": self._splice(self._atom_head(generator, head), ATOM_CLOSING, fragments["atom"]),
            "json": self._json_feed(head, title, description, fragments["json"]),
        }

    @staticmethod
    def _splice(document: bytes, closing: bytes, fragments: Sequence[bytes]) -> bytes:
        if not document.endswith(closing):
            raise AssertionError("feed head does not end as expected")
        return b"".join([document[: -len(closing)], *fragments, closing])

    def _links(self, generator: FeedGenerator, head: FeedHead, fmt: str) -> None:
        self_link = {"href": self.feed_url(head.key, fmt), "rel": "self", "type": MEDIA_TYPES[fmt]}
        # RSS <link> is taken from the last link, so the site's page goes last.
        alternate = {"href": head.home_url, "rel": "alternate", "type": "text/html"}
        generator.link([self_link, alternate], replace=True)

    def _rss_head(self, generator: FeedGenerator, head: FeedHead) -> bytes:
        self._links(generator, head, "rss")
        generator.generator(f"{GENERATOR} {__version__}")
        root, _ = generator._create_rss()
        if self.hub:
            self_link = root[0].find(f"{{{ATOM_NS}}}link")
            assert self_link is not None
            self_link.addnext(etree.Element(f"{{{ATOM_NS}}}link", href=self.hub, rel="hub"))
        return _hex_references(_document(root))

    def _atom_head(self, generator: FeedGenerator, head: FeedHead) -> bytes:
        self._links(generator, head, "atom")
        generator.generator(GENERATOR, version=__version__)
        root, _ = generator._create_atom()
        if self.hub:
            root.findall("link")[-1].addnext(etree.Element("link", href=self.hub, rel="hub"))
        return _document(root)

    def _json_feed(
        self, head: FeedHead, title: str, description: str, fragments: Sequence[bytes]
    ) -> bytes:
        data: dict[str, Any] = {
            "version": JSON_FEED_VERSION,
            "title": title,
            "home_page_url": head.home_url,
            "feed_url": self.feed_url(head.key, "json"),
            "description": description,
            "language": head.language,
            "authors": [{"name": one_line(head.site_title), "url": self.site_url}],
        }
        if self.hub:
            data["hubs"] = [{"type": "WebSub", "url": self.hub}]
        opening = _json(data)[:-1]  # without its closing brace, to append the items
        items = b",\n".join(fragments)
        return b"".join([opening, b',"items":[\n', items, b"\n]}\n" if fragments else b"]}\n"])


def _labels(item: FeedItem) -> list[tuple[Label, str]]:
    return [(label, "tags") for label in item.tags] + [(label, "topics") for label in item.topics]


def _updated(item: FeedItem) -> datetime:
    # An update stamped before publication is a CMS slip; a feed must not go back in time.
    return max(item.updated_at, item.published_at)


def _media_content(image: Image) -> dict[str, str]:
    content = {"url": image.url, "type": image.type, "medium": "image"}
    if image.length:
        content["fileSize"] = str(image.length)
    if image.width:
        content["width"] = str(image.width)
    if image.height:
        content["height"] = str(image.height)
    return content


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _document(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8"))


def _fragment(element: etree._Element, fmt: str) -> bytes:
    """An item element's bytes as they read inside a feed, indented and namespace-free.

    The element is serialized inside a stand-in of the feed's root, which declares the same
    namespaces as the real one, so the fragment carries no declarations of its own.
    """
    if fmt == "rss":
        root = etree.Element("rss", nsmap=RSS_NSMAP)
        etree.SubElement(root, "channel").append(element)
        start, end = b"<channel>\n", b"  </channel>"
    else:
        root = etree.Element("feed", xmlns=ATOM_NS)
        root.append(element)
        start, end = b'">\n', b"</feed>"
    serialized = bytes(etree.tostring(root, pretty_print=True, encoding="UTF-8"))
    begin = serialized.index(start) + len(start)
    fragment = serialized[begin : serialized.rindex(end)]
    return _hex_references(fragment) if fmt == "rss" else fragment


def _hex_references(rss: bytes) -> bytes:
    """`&amp;`, `&lt;` and `&gt;` as `&#x26;`, `&#x3C;` and `&#x3E;`: the same characters."""
    return _NAMED_MARKUP.sub(lambda match: _HEX_REFERENCES[match.group(1)], rss)
