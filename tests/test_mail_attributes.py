"""Arabic, Persian and English text survives the MJML compiler in every attribute and in text.

Article titles become image `alt` texts, the edition's subject becomes the message's
`aria-label` and `<title>`: whatever a reader with images off or a screen reader gets must be
the text itself, read back by an HTML parser, in the email and in its web copy.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import lxml.html
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from syndicate.digests.model import DigestItem, Edition, TopicDigest
from syndicate.text.tidy import one_line
from tests.support.digest_texts import EXAMPLES, email_and_web_copy, ingested

ENGLISH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?-()/'\"&<>\\#%"
ARABIC = (
    "".join(chr(code) for code in range(0x0621, 0x063B))  # hamza … ghain
    + "".join(chr(code) for code in range(0x0641, 0x064B))  # feh … yeh
    + "".join(chr(code) for code in range(0x0660, 0x066A))  # Arabic-Indic digits
    + "\u060c\u061b\u061f\u0640"  # comma, semicolon, question mark, tatweel
)
PERSIAN = "پچژگکی" + "".join(chr(code) for code in range(0x06F0, 0x06FA)) + "«»"
HARAKAT = "".join(chr(code) for code in range(0x064B, 0x0653)) + "\u0670"  # tanwin … sukun
INVISIBLE = (
    "\u200c\u200d"  # zero-width non-joiner and joiner
    "\u200e\u200f\u061c"  # left-to-right, right-to-left and Arabic letter marks
    "\u2066\u2067\u2068\u2069"  # isolates
    "\u00a0\u202f"  # no-break spaces
)
QUOTES = "\u201c\u201d\u2018\u2019"
EMOJI = (
    "\U0001f600",  # astral plane
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: a ZWJ sequence
    "\U0001f44d\U0001f3fd",  # a skin tone
    "\U0001f1ee\U0001f1f6",  # a flag: regional indicators
    "\u2764\ufe0f",  # a variation selector
    "\U0001f3f3\ufe0f\u200d\U0001f308",
)
LETTERS = {"en": ENGLISH, "ar": ARABIC, "fa": ARABIC + PERSIAN}


def texts(language: str) -> st.SearchStrategy[str]:
    """Text as editors write it in `language`, with every character that broke, normalised.

    The normalisation is ingest's (`one_line`): runs of breaking white space fold to one
    space and the ends are trimmed; no-break spaces inside stay.
    """
    unit = st.one_of(
        st.sampled_from(LETTERS[language] + ENGLISH[:26]),
        st.sampled_from(HARAKAT + INVISIBLE + QUOTES + " "),
        st.sampled_from(EMOJI),
    )
    return st.lists(unit, min_size=1, max_size=30).map("".join).map(one_line).filter(bool)


def item(number: int, title: str, alt: str, *, image: bool = True) -> DigestItem:
    """A digest item whose title and image description are the given texts."""
    return DigestItem(
        cms_id=f"cms-{number}",
        url=f"https://site.example/news/{number}",
        title=title,
        summary=f"{title} {alt}",
        published_at=datetime(2026, 11, 23, 9, tzinfo=UTC),
        section="news",
        image_url=f"https://site.example/img/{number}.jpg" if image else None,
        image_alt=alt if image else "",
    )


def edition(language: str, subject: str, titles: list[str], alts: list[str]) -> Edition:
    """An edition of four items (two with a picture) and one topic, made of these texts."""
    hero, story, bare, ranked = (
        item(1, titles[0], alts[0]),
        item(2, titles[1], alts[1]),
        item(3, titles[2], "", image=False),
        item(4, titles[3], "", image=False),  # Most Viewed shows no pictures
    )
    end = datetime(2026, 11, 23, 12, tzinfo=UTC)
    return Edition(
        id=f"daily-{language}-2026-11-23",
        kind="daily",
        language=language,
        date=date(2026, 11, 23),
        window_start=end - timedelta(days=1),
        window_end=end,
        built_at=end,
        subject=subject,
        picks=(hero, story, bare),
        most_viewed=(ranked,),
        topics=(TopicDigest("kurds", titles[4], (item(5, titles[5], "", image=False),)),),
    )


def read_back(html: str) -> lxml.html.HtmlElement:
    """The document as an HTML parser (libxml2's, through lxml) reads it."""
    return lxml.html.document_fromstring(html)


def titled_links(document: lxml.html.HtmlElement) -> list[str]:
    """The text of each article link, in order."""
    return [link.text_content() for link in document.xpath("//a[@class='sy-title']")]


@pytest.mark.parametrize("language", ["en", "ar", "fa"])
@given(data=st.data())
def test_every_attribute_and_text_reads_back_as_written(language: str, data: st.DataObject) -> None:
    """Alt texts, the aria-label, the title, link texts and the preheader are the text exactly."""
    text = texts(language)
    subject, site_title = data.draw(text, "subject"), data.draw(text, "site title")
    titles = data.draw(st.lists(text, min_size=6, max_size=6), "titles")
    alts = data.draw(st.lists(text, min_size=2, max_size=2), "alts")
    built = edition(language, subject, titles, alts)
    for variant, html in email_and_web_copy(built, site_title).items():
        document = read_back(html)
        where = f"in the {variant}"
        assert [img.get("alt") for img in document.iter("img")] == alts, where
        assert document.xpath("//@aria-label") == [subject], where
        assert document.findtext(".//title") == subject, where
        linked = titles[:4] + ([titles[5]] if variant == "email" else [])
        assert titled_links(document) == linked, where
        body = document.body.text_content()
        assert site_title in body, where
        assert all(f"{title} {alt}" in body for title, alt in zip(titles[:2], alts, strict=True)), (
            where
        )
        preheader = document.xpath("//body//div[contains(@style, 'display:none')]")[0]
        assert preheader.text_content() == " · ".join(titles[:3]), where
        if variant == "email":
            assert titles[4] in body, where


@pytest.mark.parametrize("language", ["en", "ar", "fa"])
def test_ingested_text_reaches_the_reader_intact(sqlite_engine: Engine, language: str) -> None:
    """From ingest to email and web copy: alt text, aria-label and titles keep every character."""
    site_title, title, caption = EXAMPLES[language]
    built = ingested(sqlite_engine, language)
    assert site_title in built.subject
    for variant, html in email_and_web_copy(built, site_title).items():
        document = read_back(html)
        where = f"in the {variant}"
        assert [img.get("alt") for img in document.iter("img")] == [caption, title], where
        assert document.xpath("//@aria-label") == [built.subject], where
        assert document.findtext(".//title") == built.subject, where
        assert set(titled_links(document)) == {title}, where
