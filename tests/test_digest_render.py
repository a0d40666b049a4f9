"""Digest emails: golden files, right-to-left editions, the size cap, personalisation, web copy."""

from __future__ import annotations

import logging
import os
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.delivery.message import BodyTemplate, Letter, build_message
from syndicate.digests.model import Edition
from syndicate.digests.render import (
    CompiledEdition,
    EditionRenderer,
    compile_edition,
    render_web_copy,
    web_copy_url,
    write_preview,
)
from tests.support.digest_corpus import SITE_TITLES, build, digest_corpus, ingest
from tests.support.fixture_corpus import GOLDEN

WEB_URL = "https://syndicate.example/"
UNSUBSCRIBE = "https://syndicate.example/subscription/unsubscribe?token=t0k3n&lang=en"
PREFERENCES = "https://syndicate.example/subscription/preferences?token=t0k3n&lang=en"
LIMIT = 100_000


@pytest.fixture
def editions(sqlite_engine: Engine) -> dict[str, Edition]:
    """Today's daily edition in English, Arabic and Persian, built from the digest corpus."""
    ingest(sqlite_engine, *digest_corpus())
    return {language: build(sqlite_engine, language=language) for language in SITE_TITLES}


def compiled(
    edition: Edition, topics: tuple[str, ...] = ("kurds", "resistance"), limit: int = LIMIT
) -> CompiledEdition:
    """An edition compiled for a subscriber following `topics`."""
    return compile_edition(
        edition,
        topics,
        site_title=SITE_TITLES[edition.language],
        web_url=WEB_URL,
        max_html_bytes=limit,
    )


@pytest.mark.parametrize("suffix", ["html", "txt"])
def test_daily_english_email_matches_golden_file(editions: dict[str, Edition], suffix: str) -> None:
    """The English daily email is byte for byte the reviewed golden file (UPDATE_GOLDEN=1 rewrites it)."""
    html, text = compiled(editions["en"]).personalise("Sara", UNSUBSCRIBE, PREFERENCES)
    actual = (html if suffix == "html" else text).encode()
    golden = GOLDEN / f"digest-daily-en.{suffix}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(actual)
    assert actual == golden.read_bytes()


def test_the_golden_email_encoded_once_and_filled_reads_as_the_golden_file(
    editions: dict[str, Edition],
) -> None:
    """Encoded once as templates and filled with `fillings`, the email decodes to the golden file."""
    email = compiled(editions["en"])
    in_html, in_text = email.fillings("Sara", UNSUBSCRIBE, PREFERENCES)
    text = BodyTemplate(email.text, email.placeholders).fill(in_text)
    html = BodyTemplate(email.html, email.placeholders).fill(in_html)
    raw = build_message(
        Letter(
            from_address="Demo News <news@syndicate.example>",
            to_email="sara@example.org",
            subject=email.subject,
            text="",
            html="",
            list_id="daily.en.syndicate.example",
            unsubscribe_url=UNSUBSCRIBE,
        ),
        bodies=(text, html),
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    for subtype, suffix in (("plain", "txt"), ("html", "html")):
        part = message.get_body((subtype,))
        assert part is not None
        decoded = part.get_content().replace("\r\n", "\n").encode()
        golden = (GOLDEN / f"digest-daily-en.{suffix}").read_bytes()
        assert decoded == golden.removesuffix(b"\n") + b"\n"  # a MIME part ends with a line break


def test_fillings_are_what_personalise_puts_in(editions: dict[str, Edition]) -> None:
    """The values `fillings` gives, in place of the placeholders, make `personalise`'s email."""
    email = compiled(editions["en"])
    name = '<b>Ann</b> "O\'Neil"\r\n'
    in_html, in_text = email.fillings(name, UNSUBSCRIBE, PREFERENCES)
    html, text = email.html, email.text
    for placeholder, html_value, text_value in zip(
        email.placeholders, in_html, in_text, strict=True
    ):
        html, text = html.replace(placeholder, html_value), text.replace(placeholder, text_value)
    assert (html, text) == email.personalise(name, UNSUBSCRIBE, PREFERENCES)
    assert in_text[0] == 'Hello <b>Ann</b> "O\'Neil",'
    assert in_html[0] == "Hello &lt;b&gt;Ann&lt;/b&gt; &quot;O&#x27;Neil&quot;,"


@pytest.mark.parametrize("language", ["ar", "fa"])
def test_arabic_and_persian_emails_are_right_to_left_throughout(
    editions: dict[str, Edition], language: str
) -> None:
    """Arabic and Persian emails declare rtl on the page and lay out every block right to left."""
    html, _ = compiled(editions[language]).personalise("", UNSUBSCRIBE, PREFERENCES)
    assert f'<html lang="{language}" dir="rtl"' in html
    assert f'lang="{language}" dir="rtl"' in html.split("<body", 1)[1]
    assert "direction:rtl" in html
    assert "direction:ltr" not in html
    assert "text-align:left" not in html
    assert 'align="left"' not in html
    assert "text-transform:uppercase" not in html
    assert "letter-spacing:1" not in html


def test_english_email_is_left_to_right(editions: dict[str, Edition]) -> None:
    """An English email declares ltr and never rtl."""
    html = compiled(editions["en"]).html
    assert '<html lang="en" dir="ltr"' in html
    assert "direction:rtl" not in html


def test_email_has_preheader_alt_texts_and_a_dark_palette(editions: dict[str, Edition]) -> None:
    """The inbox preview shows the top stories, every image is described, dark mode is styled."""
    html = compiled(editions["en"]).html
    preheader = re.search(
        r'<div class="sy-preheader" style="display:none;[^"]*">([^<]*)</div>', html
    )
    assert preheader is not None
    assert preheader[1].startswith("US &amp; Iraq agree on a timetable · ")
    images = re.findall(r"<img [^>]*>", html)
    assert images
    assert all(re.search(r'alt="[^"]+"', image) for image in images)
    assert '<meta name="color-scheme" content="light dark"' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "fonts.googleapis.com" not in html


def test_size_cap_trims_most_viewed_first_and_logs(
    editions: dict[str, Edition], caplog: pytest.LogCaptureFixture
) -> None:
    """An email over the size limit loses its last items, Most Viewed first, and says so in the log."""
    full = compiled(editions["en"])
    assert full.trimmed == 0
    limit = len(full.html.encode()) - 1
    with caplog.at_level(logging.WARNING, logger="syndicate.digests.render"):
        trimmed = compiled(editions["en"], limit=limit)
    assert trimmed.trimmed == 1
    assert len(trimmed.html.encode()) <= limit
    assert "Last week&#39;s most read" not in trimmed.html  # the last Most Viewed item
    assert "Ten years after the siege" in trimmed.html
    (line,) = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("digest_trimmed")
    ]
    assert "edition=daily-en-2026-11-23" in line
    assert "trimmed=1 " in line


@pytest.mark.parametrize("limit", [14_000, 18_000, 22_000, 26_000])
def test_size_cap_drops_topics_before_picks(editions: dict[str, Edition], limit: int) -> None:
    """Trimming takes Most Viewed, then topic articles, then picks, and always ends under the limit."""
    email = compiled(editions["en"], limit=limit)
    html = email.html
    assert len(html.encode()) <= limit
    shown = {
        title: title in html
        for title in (
            "Ten years after the siege",
            "Kurdish parties weigh a coalition",
            "What the PMF wants",
        )
    }
    most_viewed, topic, pick = shown.values()
    assert not most_viewed or (topic and pick)
    assert not topic or pick


def test_personalise_escapes_a_hostile_name_and_fills_each_recipients_links(
    editions: dict[str, Edition],
) -> None:
    """A name full of markup arrives as text, and every recipient gets their own links."""
    email = compiled(editions["en"])
    html, text = email.personalise('<script>alert(1)</script> "Bob"', UNSUBSCRIBE, PREFERENCES)
    assert "<script>" not in html
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt; &quot;Bob&quot;," in html
    assert (
        'href="https://syndicate.example/subscription/unsubscribe?token=t0k3n&amp;lang=en"' in html
    )
    assert (
        'href="https://syndicate.example/subscription/preferences?token=t0k3n&amp;lang=en"' in html
    )
    assert 'Hello <script>alert(1)</script> "Bob",' in text
    other, _ = email.personalise(
        "Dana", UNSUBSCRIBE.replace("t0k3n", "dana"), PREFERENCES.replace("t0k3n", "dana")
    )
    assert "Hello Dana," in other
    assert other.count("token=dana") == 2
    assert "t0k3n" not in other
    for output in (html, text, other):
        assert "%%" not in output


def test_a_name_cannot_break_lines_or_run_on(editions: dict[str, Edition]) -> None:
    """Line breaks and control characters in a name are dropped; a very long name is cut."""
    email = compiled(editions["en"])
    _, text = email.personalise("Ann\r\nBcc: x@example.com\x1b", UNSUBSCRIBE, PREFERENCES)
    assert "Hello Ann Bcc: x@example.com," in text
    html, _ = email.personalise("x" * 500, UNSUBSCRIBE, PREFERENCES)
    assert "x" * 100 + "," in html
    assert "x" * 101 not in html


@pytest.mark.parametrize(
    ("language", "greeting"), [("en", "Hello,"), ("ar", "مرحبًا،"), ("fa", "سلام،")]
)
def test_greeting_without_a_name_reads_naturally(
    editions: dict[str, Edition], language: str, greeting: str
) -> None:
    """Someone who gave no name is greeted without an empty gap where the name would be."""
    for name in ("", "   "):
        html, text = compiled(editions[language]).personalise(name, UNSUBSCRIBE, PREFERENCES)
        assert f">{greeting}</div>" in html
        assert f"\n{greeting}\n" in text


def test_plain_text_twin_has_every_link(editions: dict[str, Edition]) -> None:
    """The plain-text part links each article, the web copy, preferences and unsubscribe."""
    edition = editions["en"]
    _, text = compiled(edition).personalise("Sara", UNSUBSCRIBE, PREFERENCES)
    for item in (
        *edition.picks,
        *edition.most_viewed,
        *(i for t in edition.topics for i in t.items),
    ):
        assert item.url in text
    assert f"View in browser: {WEB_URL}digests/daily-en-2026-11-23" in text
    assert f"Unsubscribe: {UNSUBSCRIBE}" in text
    assert f"Manage your preferences: {PREFERENCES}" in text
    assert "<" not in text.replace("<withdrawal>", "")


def test_view_in_browser_links_the_web_copy_which_has_nothing_personal(
    editions: dict[str, Edition],
) -> None:
    """The email links its web copy; the web copy has no greeting, personal links or topics."""
    edition = editions["en"]
    url = web_copy_url(WEB_URL, edition.id)
    assert url == "https://syndicate.example/digests/daily-en-2026-11-23"
    assert f'href="{url}"' in compiled(edition).html
    page = render_web_copy(edition, site_title="Demo News", web_url=WEB_URL, max_html_bytes=LIMIT)
    assert "This is the web copy of the daily digest of Demo News." in page
    assert "Hello" not in page
    assert "Unsubscribe" not in page
    assert "%%" not in page
    assert "Your topics" not in page
    assert "What the PMF wants" in page


def test_topic_sections_only_for_followers(editions: dict[str, Edition]) -> None:
    """Only subscribers who follow a topic get its section."""
    edition = editions["en"]
    assert "Kurdish parties weigh a coalition" in compiled(edition, ("kurds",)).html
    plain = compiled(edition, ())
    assert "Kurdish parties weigh a coalition" not in plain.html
    assert "Your topics" not in plain.text


def test_each_variant_is_compiled_once(editions: dict[str, Edition]) -> None:
    """Subscribers whose followed topics give the same sections share one compiled email."""
    renderer = EditionRenderer(
        editions["en"], site_title="Demo News", web_url=WEB_URL, max_html_bytes=LIMIT
    )
    kurds = renderer.for_topics(["kurds"])
    assert renderer.for_topics(["kurds", "taliban"]) is kurds
    assert renderer.for_topics([]) is renderer.for_topics(["taliban"])
    assert renderer.for_topics(["resistance", "kurds"]).topics == ("kurds", "resistance")


def test_preview_writes_files_to_look_at(editions: dict[str, Edition], tmp_path: Path) -> None:
    """A preview writes the email as HTML and text, and its web copy, into a folder."""
    paths = write_preview(
        editions["ar"],
        tmp_path / "preview",
        site_title=SITE_TITLES["ar"],
        web_url=WEB_URL,
        max_html_bytes=LIMIT,
    )
    assert [path.name for path in paths] == ["edition.html", "edition.txt", "web.html"]
    html = paths[0].read_text(encoding="utf-8")
    assert 'dir="rtl"' in html
    assert "مرحبًا،" in html
    assert "%%" not in html
    assert "الأكراد والانتخابات" in html  # every topic section is previewed
