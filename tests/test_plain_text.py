"""Plain-text fields carry no markup: titles, names, descriptions and captions, in every feed."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import Engine, select

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.store import open_database
from syndicate.store.schema import article, tag, topic_text
from syndicate.text.sanitize import _strip_once, strip_markup
from syndicate.text.tidy import one_line, xml_safe
from tests.support.fixture_corpus import LANGUAGES, ingest_text

# Runs of white space that fold to one space; no-break spaces are text and stay.
BREAKING_SPACE = re.compile(r"[^\S\u00a0\u2007\u202f]+")
# What an HTML parser reads as the start of a tag, an end tag, a comment or a declaration.
MARKUP_START = re.compile(r"<[A-Za-z/!?]")
HOSTILE = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<b>", "</b>", "<!-- c -->",
    "<?php ?>", "<xmp><b>x</b></xmp>", "<plaintext>", "&lt;script&gt;", "&amp;lt;b&amp;gt;",
    "&lt;", "&#60;b&#62;", "&#x3C;i&#x3E;", "&", "<", ">", "\"", "'", "<3", "a < b", "&amp;",
    "<svg onload=alert(1)>", "<a href='javascript:alert(1)'>x</a>", "<style>p{}</style>",
    "\u0000", "\ufffd", "\ufeff", "\r\n", "\u200c", "ـَ", "<br>", "<p>", "</p>", "<iframe>",
]  # fmt: skip
hostile_text = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=8), min_size=1, max_size=8).map(
    "".join
)
# Hostile text with a word that survives, for the fields that must not end up empty.
hostile_name = hostile_text.map(lambda text: f"Word {text}")


def _reads_as_text_alone(text: str) -> bool:
    """True when an HTML parser finds no element, comment or declaration in `text`."""
    if MARKUP_START.search(text):
        return False
    if not text.strip():
        return True
    wrapper = lxml.html.fragment_fromstring(text, create_parent="div")
    return len(wrapper) == 0


def _parses_to_no_element(html: str) -> bool:
    return not html.strip() or len(lxml.html.fragment_fromstring(html, create_parent="div")) == 0


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<script>alert(1)</script>Hi", "Hi"),
        ("<b>bold</b>", "bold"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("&lt;b&gt;spelt&lt;/b&gt; markup", "spelt markup"),
        ("<xmp><b>raw</b></xmp>", "raw"),
        ("<img src=x onerror=alert(1)>Talks", "Talks"),
        ("a < b and c > d", "a < b and c > d"),
        ("I <3 Najaf", "I <3 Najaf"),
        ("line<br>break", "line break"),
        ("<p>one</p><p>two</p>", "one two"),
        ("  spaced \n out  ", "spaced out"),
        ("النفط &amp; الغاز", "النفط & الغاز"),
        ("I &lt;3 &lt;b&gt;Najaf&lt;/b&gt;", "I <3 Najaf"),
        ("half a &lt;b tag", "half a \u2039b tag"),
    ],
)
def test_markup_is_dropped_and_entities_decoded(html: str, text: str) -> None:
    """Tags go (scripts with their content), entities are decoded, white space is folded."""
    assert strip_markup(html) == text


@given(hostile_text)
def test_plain_text_reads_as_text_alone(text: str) -> None:
    """Whatever goes in, what comes out holds no markup, on one line, and XML can carry it."""
    plain = strip_markup(text)
    assert _reads_as_text_alone(plain)
    assert plain == re.sub(BREAKING_SPACE, " ", plain).strip()
    assert xml_safe(plain) == plain


@given(st.text().filter(lambda text: "<" not in text and "&" not in text))
def test_text_without_markup_characters_comes_out_as_the_parser_would_give_it(text: str) -> None:
    """The shortcut for text with no `<` or `&` gives what parsing it gives."""
    assert strip_markup(text) == _strip_once(text)


def _record(**fields: object) -> str:
    record = {
        "type": "article", "id": "cms-1", "url": "https://site.example/en/news/1",
        "title": "Title", "published_at": "2025-08-20T09:30:00Z", "status": "published",
        "language": "en",
    }  # fmt: skip
    return json.dumps(record | fields)


def test_plain_text_fields_are_stored_without_markup(engine: Engine) -> None:
    """Titles, tag and topic names, descriptions, authors and captions lose markup on ingest."""
    topic = {"type": "topic", "slug": "kurds", "language": "en", "name": "<b>Kurds</b> &amp; Iran",
             "description": "<p>Kurdish <em>politics</em></p><script>x()</script>"}  # fmt: skip
    image = {"url": "https://site.example/1.jpg", "type": "image/jpeg", "length": 1,
             "caption": "<script>alert(1)</script>Talks in <i>Baghdad</i>"}  # fmt: skip
    record = _record(
        title="<b>Big</b> news &amp; <img src=x onerror=alert(1)>views",
        tags=["<i>Iraq</i>", "Oil &amp; Gas", "&lt;b&gt;US&lt;/b&gt;"],
        authors=["<a href='x'>Sara Ahmadi</a>", "<b></b>"],
        topics=["kurds"],
        image=image,
    )
    _, messages = ingest_text(engine, json.dumps(topic) + "\n" + record)
    assert messages == []
    with engine.connect() as connection:
        row = connection.execute(select(article.c.title, article.c.authors, article.c.image)).one()
        tags = set(connection.scalars(select(tag.c.name)))
        text = connection.execute(select(topic_text.c.name, topic_text.c.description)).one()
    assert row.title == "Big news & views"
    assert row.authors == ["Sara Ahmadi"]
    assert row.image["caption"] == "Talks in Baghdad"
    assert tags == {"Iraq", "Oil & Gas", "US"}
    assert tuple(text) == ("Kurds & Iran", "Kurdish politics")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_record(title="<script>alert(1)</script>"), "title: must not be empty once markup is removed"),
        (_record(title="<b></b><img src=x>"), "title: must not be empty once markup is removed"),
        (_record(tags=["Iraq", "<i></i>"]), "tags.1: must not be empty once markup is removed"),
        ('{"type": "topic", "slug": "x", "language": "en", "name": "<br>"}',
         "name: must not be empty once markup is removed"),
    ],
)  # fmt: skip
def test_a_name_of_markup_alone_is_rejected(engine: Engine, line: str, reason: str) -> None:
    """A title, tag or topic name with nothing left but markup is refused, naming the field."""
    report, messages = ingest_text(engine, line)
    assert report.rejected == 1
    assert messages[0].startswith("line 1: ")
    assert messages[0].endswith(reason)


def _texts_of_rss(document: bytes) -> tuple[list[str], list[str]]:
    """The plain-text fields of an RSS feed, and its HTML ones (descriptions)."""
    root = etree.fromstring(document)
    media = "{http://search.yahoo.com/mrss/}"
    dc = "{http://purl.org/dc/elements/1.1/}"
    plain = [
        element.text or ""
        for path in ("channel/title", "channel/description", "channel/item/title",
                     "channel/item/category", f"channel/item/{dc}creator",
                     f"channel/item/{media}content/{media}description")
        for element in root.findall(path)
    ]  # fmt: skip
    html = [element.text or "" for element in root.findall("channel/item/description")]
    return plain, html


def _texts_of_atom(document: bytes) -> list[str]:
    atom = "{http://www.w3.org/2005/Atom}"
    root = etree.fromstring(document)
    texts = [root.findtext(f"{atom}title") or "", root.findtext(f"{atom}subtitle") or ""]
    for entry in root.findall(f"{atom}entry"):
        texts += [entry.findtext(f"{atom}title") or "", entry.findtext(f"{atom}summary") or ""]
        texts += [category.get("term", "") for category in entry.findall(f"{atom}category")]
        texts += [name.text or "" for name in entry.findall(f"{atom}author/{atom}name")]
    return texts


def _texts_of_json(document: bytes) -> list[str]:
    feed = json.loads(document)
    texts = [feed["title"], feed.get("description", "")]
    for item in feed["items"]:
        texts += [item["title"], item["summary"], item.get("content_text", "")]
        texts += item.get("tags", [])
        texts += [author["name"] for author in item.get("authors", [])]
        texts += [attachment.get("title", "") for attachment in item.get("attachments", [])]
    return texts


@settings(max_examples=25)
@given(
    title=hostile_name, name=hostile_name, description=hostile_text, tags=st.lists(hostile_name,
    min_size=1, max_size=3), author=hostile_text, caption=hostile_text, summary=hostile_text,
)  # fmt: skip
def test_feeds_carry_no_markup_in_their_text_fields(
    title: str, name: str, description: str, tags: list[str], author: str, caption: str,
    summary: str,
) -> None:  # fmt: skip
    """Hostile text through ingest and a build: no feed format carries markup in a text field."""
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/store.db")
        topic = {"type": "topic", "slug": "hostile", "language": "en", "name": name,
                 "description": description}  # fmt: skip
        image = {"url": "https://site.example/1.jpg", "type": "image/jpeg", "length": 1,
                 "caption": caption}  # fmt: skip
        record = _record(title=title, summary=summary, tags=tags, authors=[author],
                         topics=["hostile"], image=image)  # fmt: skip
        _, messages = ingest_text(engine, json.dumps(topic) + "\n" + record)
        assert messages == []
        config = FeedConfig(
            site_url="https://site.example/", site_titles=dict.fromkeys(LANGUAGES, "Demo"), languages=LANGUAGES,
            feeds_dir=f"{folder}/feeds", feeds_url="https://feeds.example/feeds/", items=5,
        )  # fmt: skip
        build_feeds(engine, config, now=datetime(2025, 8, 22, tzinfo=UTC))
        engine.dispose()
        written = sorted(Path(folder, "feeds").rglob("*.*"))
        assert any(path.suffix == ".rss" and "/topics/" in str(path) for path in written)
        for path in written:
            document = path.read_bytes()
            if path.suffix == ".rss":
                plain, html = _texts_of_rss(document)
                assert all(_reads_as_text_alone(text) for text in plain), path
                # RSS descriptions are HTML: read as HTML, they hold text alone.
                assert all(_parses_to_no_element(text) for text in html), path
            elif path.suffix == ".atom":
                assert all(_reads_as_text_alone(text) for text in _texts_of_atom(document)), path
            elif path.suffix == ".json" and path.name != "index.json":
                assert all(_reads_as_text_alone(text) for text in _texts_of_json(document)), path


@given(st.text())
def test_tidying_text_is_what_the_regular_expressions_say(text: str) -> None:
    """The quick paths of xml_safe and one_line give what their definitions give."""
    assert xml_safe(text) == re.sub(
        "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", text
    )
    assert one_line(text) == re.sub(BREAKING_SPACE, " ", xml_safe(text)).strip()
