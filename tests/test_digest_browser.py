"""Digest emails in a real browser: headless Chromium at phone and desktop widths.

Debian's chromium (CI installs it) is driven by Playwright. Screenshots are kept under
test-artifacts/ for people to look at. Set SYNDICATE_SKIP_BROWSER=1 to skip these tests.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Route
from sqlalchemy import Engine

from syndicate.digests.render import compile_edition
from tests.support.chromium import ARTIFACTS, PICTURE
from tests.support.digest_corpus import SITE_TITLES, build, digest_corpus, ingest
from tests.support.digest_texts import EXAMPLES, email_and_web_copy, ingested


def _offline(route: Route) -> None:
    """Answer image requests with the placeholder picture and refuse anything else."""
    if route.request.resource_type == "image":
        route.fulfill(content_type="image/svg+xml", body=PICTURE)
    else:
        route.abort()


@pytest.mark.parametrize("width", [375, 1200])
@pytest.mark.parametrize("language", ["en", "ar"])
def test_email_fits_phone_and_desktop_widths(
    browser: Browser, sqlite_engine: Engine, language: str, width: int
) -> None:
    """The email never scrolls sideways on a phone or a desktop, in English and in Arabic."""
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine, language=language)
    email = compile_edition(
        edition,
        ("kurds", "resistance"),
        site_title=SITE_TITLES[language],
        web_url="https://syndicate.example/",
        max_html_bytes=100_000,
    )
    html, _ = email.personalise("Sara", "https://x.example/u", "https://x.example/p")
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        try:
            page.route("**/*", _offline)
            page.set_content(html, wait_until="load")
            scroll_width, inner_width, direction = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth,"
                " getComputedStyle(document.querySelector('[role=article]')).direction]"
            )
            assert scroll_width <= inner_width, (
                f"{language} at {width}px overflows ({scroll_width}px)"
            )
            assert direction == ("rtl" if language == "ar" else "ltr")
            suffix = "" if scheme == "light" else "-dark"
            page.screenshot(
                path=ARTIFACTS / f"digest-{language}-{width}{suffix}.png", full_page=True
            )
        finally:
            page.close()


@pytest.mark.parametrize("language", ["en", "ar", "fa"])
def test_preheader_stays_hidden_and_attributes_read_as_written(
    browser: Browser, sqlite_engine: Engine, language: str
) -> None:
    """Chromium shows no preheader; alt texts and the aria-label are the editors' text."""
    site_title, title, caption = EXAMPLES[language]
    built = ingested(sqlite_engine, language)
    for variant, html in email_and_web_copy(built, site_title).items():
        page = browser.new_page(viewport={"width": 600, "height": 900})
        try:
            page.route("**/*", _offline)
            page.set_content(html, wait_until="load")
            preheader = page.locator(".sy-preheader")
            assert preheader.count() == 1, variant
            assert preheader.text_content() == f"{title} · {title}", variant
            assert preheader.is_hidden(), variant
            assert preheader.bounding_box() is None, variant
            assert f"{title} · {title}" not in page.inner_text("body"), variant
            alts, label = page.evaluate(
                "[[...document.images].map(image => image.alt),"
                " document.querySelector('[role=article]').getAttribute('aria-label')]"
            )
            assert alts == [caption, title], variant
            assert label == built.subject, variant
        finally:
            page.close()
