"""Every HTML page the site serves, in every language, as headless Chromium shows it.

The site is the one `syndicate serve` wires (`create_site`) on a real uvicorn server, with feeds,
digest editions and the subscription pages. The pages are found from the app's own routes: each
language's walk through the site records the route every answer came from, and a route that
no walk reached fails the test, so a page added later cannot go unchecked. On every page the
browser must report no Content-Security-Policy violation and no console error, the page's own
styles must be applied (a computed style that only its stylesheet sets), the text must run in
the language's direction, and a language switcher must show its names in reading order.

The site's own 503 page (`web.app`'s busy handler) has no route that writes, so it cannot be
reached; the subscription pages' 503 is, by holding the store's write lock.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import lxml.html
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response
from playwright.sync_api import Route as BrowserRoute
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.i18n.catalogs import direction, language_name
from syndicate.store import open_database
from syndicate.web.site import create_site
from tests.support.chromium import ARTIFACTS, PICTURE
from tests.support.digest_corpus import NOW, SITE_TITLES, build, digest_corpus, ingest
from tests.support.fixture_corpus import FIXTURES, LANGUAGES, ingest_text
from tests.support.ports import free_port
from tests.support.sites import site_settings
from tests.support.sqlite_lock import LockHolder
from tests.support.waiting import wait_for
from tests.support.web_server import serve_in_thread

SUBSCRIBES_PER_HOUR = 2  # the walk's third subscribe is the one refused as too many
# Each language's walk comes from its own address (uvicorn trusts X-Forwarded-For from
# loopback), so each has its own subscribe allowance.
CLIENTS = {"en": "192.0.2.10", "ar": "198.51.100.10", "fa": "203.0.113.10"}
# Answers that are not pages people read: what they are instead.
NOT_PAGES = {
    ("GET", "/"): "a redirect to /feeds/",
    ("GET", "/feeds"): "a redirect to /feeds/",
    ("GET", "/healthz"): "JSON",
    ("GET", "/metrics"): "Prometheus text",
    ("GET", "/style.css"): "the pages' stylesheet",
    ("GET", "/subscribe/style.css"): "the subscription pages' stylesheet",
    **{
        ("POST", f"/webhooks/{name}"): "a provider's JSON webhook (tests/test_webhooks_*.py)"
        for name in ("ses", "postmark", "mailgun", "sendgrid")
    },
}
FEEDS_INDEX = ("GET", "/feeds/")  # the feed files' fast path, outside Starlette's routes
NOT_FOUND = "no route: 404"


# The site -------------------------------------------------------------------------------


@dataclass
class Site:
    """The served site, what it was built from, and the routes its app answers."""

    url: str
    folder: Path
    routes: list[tuple[str, str, re.Pattern[str]]]  # method, path pattern, its regex
    lock: LockHolder

    def route_of(self, method: str, url: str) -> tuple[str, str]:
        """The route that answers `method` on `url`, or the 404 that no route answers."""
        path = urlsplit(url).path
        if path == FEEDS_INDEX[1]:
            return FEEDS_INDEX
        for route_method, pattern, regex in self.routes:
            if route_method == method and regex.fullmatch(path):
                return (method, pattern)
        return (method, NOT_FOUND)

    def first_feed(self, language: str, kind: str) -> str:
        """The slug of the first tag or topic feed of `language` on disk."""
        return sorted((self.folder / "feeds" / language / kind).glob("*.json"))[0].stem

    def page_routes(self) -> set[tuple[str, str]]:
        """Every route that answers with a page: the app's routes, less NOT_PAGES."""
        found = {(method, pattern) for method, pattern, _ in self.routes}
        return (found | {FEEDS_INDEX}) - set(NOT_PAGES)


def _starlette(app: Any) -> Starlette:
    """The Starlette app inside the site's ASGI wrappers (feed files, headers, redirects)."""
    inner = app.pages
    while not isinstance(inner, Starlette):
        inner = inner.app
    return inner


def app_routes(app: Any) -> list[tuple[str, str, re.Pattern[str]]]:
    """(method, path pattern, regex) of every route, mounted apps opened."""
    found: list[tuple[str, str, re.Pattern[str]]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route):
                pattern = prefix + route.path
                regex = re.compile(re.escape(prefix) + route.path_regex.pattern.strip("^$"))
                for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                    found.append((method, pattern, regex))

    walk(list(_starlette(app).routes), "")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Feeds, an edition in every language and the subscription pages, served on loopback."""
    folder = tmp_path_factory.mktemp("pages")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = site_settings(
        folder,
        f"{url}/",
        site={"title": SITE_TITLES["en"], "titles": SITE_TITLES},
        web={"lock_timeout": 0.3},
        subscribers={"subscribe_per_hour": SUBSCRIBES_PER_HOUR},
    )
    engine = open_database(settings.database.url)
    ingest_text(engine, (FIXTURES / "corpus.jsonl").read_text("utf-8"))
    ingest(engine, *digest_corpus())
    build_feeds(engine, FeedConfig.from_settings(settings), now=NOW)
    for language in LANGUAGES:
        build(engine, language=language)
    app = create_site(engine, settings)
    lock = LockHolder(folder / "store.db")
    for served in serve_in_thread(app, port):
        yield Site(served, folder, app_routes(app), lock)
    lock.close()
    engine.dispose()


# What a page must show ------------------------------------------------------------------

# A computed style that only the page's own styles set, and its value, by kind of page.
Style = tuple[str, object]
STYLESHEET: Style = ("getComputedStyle(document.body).maxWidth", "576px")  # /style.css: 36rem
FEEDS_INDEX_STYLE: Style = ("getComputedStyle(document.body).maxWidth", "960px")  # <style>
# A web copy is styled by <style> elements and style attributes, as the email is.
WEB_COPY_STYLE: Style = (
    "[getComputedStyle(document.body).marginTop,"
    " getComputedStyle(document.querySelector('div[style*=\"max-width:600px\"]')).maxWidth]",
    ["0px", "600px"],
)

# Records what the browser reports: console errors and warnings, page errors, and every
# securitypolicyviolation event (installed before any page script, which CSP forbids anyway).
WATCH_POLICY = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

# The on-screen boxes of a language switcher's names, in document order.
SWITCHER_BOXES = """
[...document.querySelectorAll('nav [lang]')].map((element) => {
  const box = element.getBoundingClientRect();
  return [element.getAttribute('lang'), box.left, box.right];
})
"""


@dataclass
class Walk:
    """One language's walk through the site in one browser tab, checking every page."""

    site: Site
    language: str
    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)
    reached: dict[tuple[str, str], int] = field(default_factory=dict)  # route -> status

    def goto(self, path: str, status: int = 200, style: Style = STYLESHEET) -> None:
        """Open `path` and check the page."""
        response = self.page.goto(self.site.url + path)
        self.check(response, "GET", status, style)

    def submit(self, button: str, status: int = 200, style: Style = STYLESHEET) -> None:
        """Click the form's submit `button` and check the page it leads to."""
        with self.page.expect_navigation() as navigation:
            self.page.click(button)
        self.check(navigation.value, "POST", status, style)

    def follow(self, link: str, status: int = 200, style: Style = STYLESHEET) -> None:
        """Click `link` and check the page it leads to."""
        with self.page.expect_navigation() as navigation:
            self.page.click(link)
        self.check(navigation.value, "GET", status, style)

    def check(self, response: Response | None, method: str, status: int, style: Style) -> None:
        """The page answered `status`, styled, in its direction, without a reported problem."""
        assert response is not None
        url = self.page.url
        assert response.status == status, f"{method} {url}: {response.status}"
        self.reached[self.site.route_of(method, url)] = status
        self.page.wait_for_load_state("load")
        name = re.sub(r"[^a-z0-9]+", "-", urlsplit(url).path).strip("-") or "root"
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"page-{self.language}-{name}-{status}.png")
        problems, self.problems[:] = list(self.problems), []
        assert problems == [], f"{method} {url} reported: {problems}"
        expression, styled = style
        assert self.page.evaluate(expression) == styled, f"{url} is unstyled"
        self.check_direction(url)
        self.check_switcher(url)

    def check_direction(self, url: str) -> None:
        """The page (the language's section of the feeds index) reads in the right direction."""
        wanted = direction(self.language)
        element = (
            f"document.querySelector('section[lang={self.language}]')"
            if urlsplit(url).path == FEEDS_INDEX[1]
            else "document.documentElement"
        )
        shown = self.page.evaluate(f"[{element}.dir, getComputedStyle({element}).direction]")
        assert shown == [wanted, wanted], f"{url}: {shown}"

    def check_switcher(self, url: str) -> None:
        """A language switcher shows its names in reading order, whatever their scripts."""
        boxes = self.page.evaluate(SWITCHER_BOXES)
        if not boxes:
            return
        assert [code for code, _, _ in boxes] == list(LANGUAGES), url
        edges = [left for _, left, _ in boxes]
        if direction(self.language) == "rtl":
            edges = [-right for _, _, right in boxes]
        assert edges == sorted(edges), f"{url}: the names are out of order: {boxes}"


@pytest.fixture
def walk(site: Site, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Walk]:
    """A fresh browser context for one language, watching for every reported problem."""
    language = request.param
    context = browser.new_context(
        viewport={"width": 900, "height": 900},
        extra_http_headers={"x-forwarded-for": CLIENTS[language]},
    )
    context.add_init_script(WATCH_POLICY)
    context.route("https://site.example/**", _picture)  # the articles' images, offline
    page = context.new_page()
    walk = Walk(site, language, context, page)
    page.on("console", lambda message: _console(walk, message))
    page.on("pageerror", lambda error: walk.problems.append(f"page error: {error}"))
    try:
        yield walk
    finally:
        context.close()


def _console(walk: Walk, message: ConsoleMessage) -> None:
    """Keep an error or warning, unless it is the page's own error status, which is meant."""
    if message.type not in ("error", "warning"):
        return
    # Chromium logs a page answered with 404 or 503 as a failed load of the page itself.
    failed_load = message.text.startswith("Failed to load resource: the server responded")
    if failed_load and message.location.get("url") == walk.page.url:
        return
    walk.problems.append(f"console {message.type}: {message.text} ({message.location})")


def _picture(route: BrowserRoute) -> None:
    route.fulfill(content_type="image/svg+xml", body=PICTURE)


# The walks ------------------------------------------------------------------------------


def confirmation_link(site: Site, address: str) -> str:
    """The confirmation link mailed to `address`, once the mail is in the outbox."""

    def mailed() -> EmailMessage | None:
        for raw in mailbox.Maildir(site.folder / "outbox", create=True):
            message = message_from_bytes(raw.as_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            if message["To"].addresses[0].addr_spec == address:
                return message
        return None

    message = wait_for(mailed, 30, f"the confirmation mail to {address}")
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"http://\S+/subscribe/confirm\?\S+", body.get_content())
    assert found, body.get_content()
    return found.group(0)


def fill_subscribe_form(page: Page, email: str) -> None:
    """Type `email` into the subscribe form and tick the daily digest."""
    page.fill("#email", email)
    page.check("input[name=digests][value=daily]")


def walk_feeds_and_archive(walk: Walk) -> None:
    """The feeds index, a tag and a topic page, a missing page, the archive and an edition."""
    language, site = walk.language, walk.site
    walk.goto("/feeds/", style=FEEDS_INDEX_STYLE)
    walk.goto(f"/{language}/tags/{site.first_feed(language, 'tags')}/")
    walk.goto(f"/{language}/topics/{site.first_feed(language, 'topics')}/")
    walk.goto(f"/{language}/no-such-page/", status=404)
    walk.goto(f"/digests/?lang={language}")
    walk.follow("ol.items a", style=WEB_COPY_STYLE)
    walk.goto(f"/digests/daily-{language}-1999-01-01", status=404)


def walk_subscription(walk: Walk) -> None:
    """Subscribe (wrongly, then rightly), confirm, change preferences, unsubscribe."""
    language, page = walk.language, walk.page
    address = f"reader-{language}@example.org"
    walk.goto(f"/subscribe/?lang={language}")
    fill_subscribe_form(page, "not an address")
    walk.submit("button[type=submit]", status=422)
    fill_subscribe_form(page, address)
    walk.submit("button[type=submit]")
    link = urlsplit(confirmation_link(walk.site, address))
    walk.goto(f"{link.path}?{link.query}")
    walk.follow("a.button")  # manage your preferences
    walk.submit("button[type=submit]")  # saved
    walk.follow("a[href*='/subscribe/unsubscribe?']")
    walk.submit("button[type=submit]")  # unsubscribed
    walk.goto(f"/subscribe/confirm?token=forged&lang={language}", status=400)
    walk.goto(f"/subscribe/no-such-page?lang={language}", status=404)


def walk_refusals(walk: Walk) -> None:
    """A form without its cookie, a store that stays locked, and one subscribe too many."""
    language, page, site = walk.language, walk.page, walk.site
    walk.goto(f"/subscribe/?lang={language}")
    walk.context.clear_cookies()
    fill_subscribe_form(page, f"late-{language}@example.org")
    walk.submit("button[type=submit]", status=403)
    walk.goto(f"/subscribe/?lang={language}")
    fill_subscribe_form(page, f"busy-{language}@example.org")
    site.lock.hold()
    try:
        walk.submit("button[type=submit]", status=503)
    finally:
        site.lock.release()
    walk.goto(f"/subscribe/?lang={language}")
    fill_subscribe_form(page, f"third-{language}@example.org")
    walk.submit("button[type=submit]", status=429)


@pytest.mark.parametrize("walk", LANGUAGES, indirect=True)
def test_every_page_is_styled_and_reads_in_its_direction_without_policy_violations(
    site: Site, walk: Walk
) -> None:
    """Every route's pages in this language: no CSP violation or console error, styled, in order."""
    walk_feeds_and_archive(walk)
    walk_subscription(walk)
    walk_refusals(walk)
    missing = site.page_routes() - set(walk.reached)
    assert not missing, f"routes no walk reached (add them, or to NOT_PAGES): {sorted(missing)}"


# Markup ---------------------------------------------------------------------------------

SWITCHER_PAGES = ["/digests/?lang={language}", "/subscribe/?lang={language}"]


@pytest.mark.parametrize("path", SWITCHER_PAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_name_in_a_language_switcher_is_isolated(site: Site, language: str, path: str) -> None:
    """A switcher's names sit in <bdi>, so English, العربية and فارسی never trade places."""
    document = lxml.html.document_fromstring(
        httpx.get(site.url + path.format(language=language)).content
    )
    [switcher] = document.xpath("//nav[.//*[@hreflang]]")
    items = switcher.xpath(".//*[@lang]")
    assert [item.get("lang") for item in items] == list(LANGUAGES)
    for item, code in zip(items, LANGUAGES, strict=True):
        isolated = item.xpath("self::bdi | .//bdi | self::*[@dir='auto']")
        assert isolated, lxml.html.tostring(item)
        assert isolated[0].text_content() == language_name(code)
