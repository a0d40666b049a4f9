"""Tag and topic pages as readers and feed readers see them, from a real uvicorn server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import feedparser
import httpx
import lxml.html
import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from syndicate.digests.editions import subject_line
from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.store import open_database
from syndicate.web.app import create_app
from syndicate.web.security import WEB_COPY_POLICY
from tests.support.fixture_corpus import FIXTURES, LANGUAGES, NOW, ingest_text
from tests.support.ports import free_port
from tests.support.web_server import serve_in_thread

# An article whose tag is written as markup: ingest keeps its text alone, which still holds
# characters that every page must escape.
SCRIPT_TAG = "<b>Tags</b> & <script>alert(1)</script>names <3"
TAG_TEXT = "Tags & names <3"
HOSTILE = {
    "type": "article", "id": "cms-2001", "url": "https://site.example/en/news/2001",
    "title": "Tag names are data", "summary": "A <b>summary</b> & more.",
    "published_at": "2025-08-22T10:00:00Z", "status": "published", "language": "en",
    "section": "news", "tags": [SCRIPT_TAG, "Iraq"],
}  # fmt: skip
HOSTILE_SLUG = "tags-names-3"
FEED_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


@dataclass
class Site:
    """A built feeds folder served with its pages, and what built it."""

    url: str
    port: int
    config: FeedConfig
    engine: Engine

    @property
    def folder(self) -> Path:
        """The feeds folder."""
        return Path(self.config.feeds_dir)

    def raw(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET `path` exactly as written, without any client-side normalising."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def _serve_site(engine: Engine, config: FeedConfig, corpus: str) -> Iterator[Site]:
    """Build `corpus` (and a tag made of markup) and serve it, with public URLs on this port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = replace(config, feeds_url=f"{base}/feeds/")
    ingest_text(engine, corpus + "\n" + json.dumps(HOSTILE))
    build_feeds(engine, config, now=NOW)
    app = create_app(config.feeds_dir, max_age=120, public_url=f"{base}/", languages=LANGUAGES)
    for url in serve_in_thread(app, port):
        yield Site(url, port, config, engine)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One built and served site for the tests that only read (building is most of the time)."""
    folder = tmp_path_factory.mktemp("site")
    engine = open_database(f"sqlite:///{folder / 'store.db'}")
    config = FeedConfig(
        site_url="https://site.example/",
        site_titles={"en": "Demo News", "ar": "أخبار تجريبية", "fa": "اخبار آزمایشی"},
        languages=LANGUAGES,
        feeds_dir=str(folder / "feeds"),
        feeds_url="",
        items=5,
    )
    yield from _serve_site(engine, config, (FIXTURES / "corpus.jsonl").read_text("utf-8"))
    engine.dispose()


@pytest.fixture
def fresh_site(sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig) -> Iterator[Site]:
    """A site of its own, for a test that builds again."""
    yield from _serve_site(sqlite_engine, feed_config, corpus_text)


def _page(response: httpx.Response) -> Any:
    return lxml.html.document_fromstring(response.content)


def _json_feed(site: Site, key: str) -> dict[str, Any]:
    feed: dict[str, Any] = json.loads((site.folder / f"{key}.json").read_bytes())
    return feed


def test_english_tag_page_lists_the_feeds_latest_items(site: Site) -> None:
    """A tag page shows the feed's items newest first: linked title, date and summary."""
    response = httpx.get(f"{site.url}/en/tags/iraq/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = _page(response)
    assert page.get("lang") == "en"
    assert page.get("dir") == "ltr"
    assert page.findtext(".//h1") == "Iraq"
    feed = _json_feed(site, "en/tags/iraq")
    assert page.findtext(".//title") == feed["title"]
    items = page.findall(".//ol[@class='items']/li")
    assert [li.find("h2/a").get("href") for li in items] == [i["url"] for i in feed["items"]]
    assert [li.find("h2/a").text_content() for li in items] == [i["title"] for i in feed["items"]]
    first = items[0]
    assert first.find(".//time").get("datetime") == feed["items"][0]["date_published"]
    assert first.find(".//time").text == "August 22, 2025"
    assert first.find(".//p[@class='summary']").text == feed["items"][0]["summary"]


def test_arabic_topic_page_is_right_to_left_and_in_arabic(site: Site) -> None:
    """An Arabic page declares lang and dir=rtl, and every heading and link is in Arabic."""
    response = httpx.get(f"{site.url}/ar/topics/resistance/")
    assert response.status_code == 200
    page = _page(response)
    assert (page.get("lang"), page.get("dir")) == ("ar", "rtl")
    assert page.findtext(".//h1") == "المقاومة"
    assert "الملفات" in page.find(".//nav").text_content()  # "Topics"
    assert "كل الخلاصات" in page.find(".//nav").text_content()  # "All feeds"
    assert "تابِع عبر قارئ الخلاصات" in response.text
    for english in ("All feeds", "Follow in a feed reader", "Topics", "August"):
        assert english not in response.text
    assert page.findtext(".//time") == "21 أغسطس 2025"


def test_persian_page_dates_use_persian_digits_as_the_mail_does(site: Site) -> None:
    """A Persian page writes its dates as the Persian digests do: in Persian digits."""
    response = httpx.get(f"{site.url}/{quote('fa/tags/کردها')}/")
    assert response.status_code == 200
    shown = _page(response).find(".//time")
    day = datetime.fromisoformat(shown.get("datetime")).astimezone(UTC).date()
    assert shown.text == subject_line("daily", "fa", "", day).rsplit("، ", 1)[1]
    assert not any(digit in shown.text for digit in "0123456789")
    assert day.strftime("%Y").translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) in shown.text


@pytest.mark.parametrize(
    "key",
    [
        "en/tags/iraq",
        "en/topics/resistance",
        "ar/tags/العراق",
        "ar/topics/resistance",
        "fa/tags/کردها",
    ],
)
def test_pages_link_their_feeds_and_readers_can_follow_them(site: Site, key: str) -> None:
    """Discovery links and visible links give each format's public URL; each one parses."""
    response = httpx.get(f"{site.url}/{quote(key)}/")
    assert response.status_code == 200
    page = _page(response)
    alternates = {
        link.get("type"): link.get("href")
        for link in page.findall(".//head/link")
        if link.get("rel") == "alternate"
    }
    expected = {media: f"{site.url}/feeds/{quote(key)}.{fmt}" for fmt, media in FEED_TYPES.items()}
    assert alternates == expected
    visible = {a.get("type"): a.get("href") for a in page.findall(".//p[@class='feeds']/a")}
    assert visible == expected
    page_links = [a.get("href") for a in page.findall(".//ol[@class='items']/li/h2/a")]
    for fmt in ("rss", "atom"):
        parsed = feedparser.parse(httpx.get(expected[FEED_TYPES[fmt]]).content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.feed.title == page.findtext(".//title")
        assert [entry.link for entry in parsed.entries] == page_links
    json_feed = httpx.get(expected["application/feed+json"]).json()
    assert json_feed["version"] == "https://jsonfeed.org/version/1.1"
    assert json_feed["feed_url"] == expected["application/feed+json"]


def test_untrusted_names_and_titles_are_escaped(site: Site) -> None:
    """A tag written as markup is shown as its text, escaped; no script element reaches the page."""
    response = httpx.get(f"{site.url}/en/tags/{HOSTILE_SLUG}/")
    assert response.status_code == 200
    page = _page(response)
    assert page.findall(".//script") == []
    assert page.findtext(".//h1") == TAG_TEXT
    assert "Tags &amp; names &lt;3" in response.text
    assert page.find(".//p[@class='summary']").text == "A summary & more."
    iraq = httpx.get(f"{site.url}/en/tags/iraq/").text
    assert "US &amp; Iraq agree on timetable" in iraq


@pytest.mark.parametrize(
    "path",
    [
        "/en/tags/nothing/",
        "/en/topics/nothing/",
        "/en/tags/IRAQ/",
        "/xx/tags/iraq/",
        "/en/sections/news/",
        "/en/tags/iraq.json/",
        "/en/tags/%2e%2e/",
        "/en/tags/..%2f..%2fstore.db/",
        "/en/tags/..%2fall/",
        "/en/tags/%252e%252e/",
        "/en/tags/a%2Fb/",
        "/en/tags/%00/",
        "/en/tags/iraq%00/",
        "/en/tags/.iraq/",
        "/en/tags/iraq_/",
        "/../store.db",
        "/nowhere",
    ],
)
def test_unknown_and_hostile_paths_get_a_404_page(site: Site, path: str) -> None:
    """Unknown slugs, other kinds and traversal attempts get a real 404 page, never a 500."""
    (site.folder.parent / "store.db.json").write_bytes(b'{"secret": true}')
    status, headers, body = site.raw(path)
    assert status == 404
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"<h1>Page not found</h1>" in body
    assert b"secret" not in body


def test_a_404_page_speaks_the_language_of_the_path(site: Site) -> None:
    """An unknown Arabic tag gets the not-found page in Arabic, right to left."""
    response = httpx.get(f"{site.url}/ar/tags/nothing/")
    assert response.status_code == 404
    page = _page(response)
    assert (page.get("lang"), page.get("dir")) == ("ar", "rtl")
    assert page.findtext(".//h1") == "الصفحة غير موجودة"
    assert page.findtext(".//p[@class='site-title']") == "أخبار تجريبية"


def test_the_feeds_index_links_every_tag_and_topic_page(site: Site) -> None:
    """Each tag and topic in the feeds index links its page, and each such link answers 200."""
    index_url = f"{site.url}/feeds/index.html"
    document = lxml.html.fromstring(httpx.get(index_url).content)
    pages = {urljoin(index_url, href) for href in document.xpath("//span[@class='name']/a/@href")}
    assert f"{site.url}/en/topics/resistance/" in pages
    assert f"{site.url}/en/tags/iraq/" in pages
    assert not any("/all/" in page or "/sections/" in page for page in pages)
    for page in sorted(pages)[:20]:
        assert httpx.get(page).status_code == 200, page


def test_a_path_without_its_slash_is_redirected(site: Site) -> None:
    """/en/tags/iraq leads to the page's one URL, /en/tags/iraq/."""
    response = httpx.get(f"{site.url}/en/tags/iraq")
    assert response.is_redirect
    assert response.headers["location"].endswith("/en/tags/iraq/")


def test_conditional_get_on_pages(site: Site) -> None:
    """Pages carry an ETag and the feed file's Last-Modified; a current copy gets 304."""
    path = f"{site.url}/en/tags/iraq/"
    first = httpx.get(path)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=120"
    feed = httpx.get(f"{site.url}/feeds/en/tags/iraq.json")
    assert first.headers["last-modified"] == feed.headers["last-modified"]
    again = httpx.get(path, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    since = httpx.get(path, headers={"if-modified-since": first.headers["last-modified"]})
    assert since.status_code == 304
    assert httpx.get(path, headers={"if-none-match": '"stale"'}).status_code == 200
    head = httpx.head(path)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", etag)


def test_a_rebuilt_feed_changes_its_page(fresh_site: Site) -> None:
    """When a build adds an item to the feed, the old ETag no longer matches."""
    site = fresh_site
    path = f"{site.url}/en/tags/iraq/"
    etag = httpx.get(path).headers["etag"]
    news = HOSTILE | {"id": "cms-2002", "title": "Fresh from Baghdad", "tags": ["Iraq"]}
    news |= {"url": "https://site.example/en/news/2002", "published_at": "2025-08-22T11:30:00Z"}
    ingest_text(site.engine, json.dumps(news))
    # A feed file's mtime has one-second resolution in Last-Modified; the ETag has none.
    build_feeds(site.engine, site.config, now=NOW + timedelta(minutes=1))
    response = httpx.get(path, headers={"if-none-match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert "Fresh from Baghdad" in response.text


@pytest.mark.parametrize("path", ["/en/tags/iraq/", "/ar/topics/resistance/", "/en/tags/nothing/"])
def test_pages_carry_security_headers(site: Site, path: str) -> None:
    """No script, no framing, no sniffing; the stylesheet is the only thing a page loads."""
    response = httpx.get(f"{site.url}{quote(path)}")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy
    assert "img-src" not in policy  # default-src 'none': nothing else loads
    assert "form-action 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in response.headers  # the public URL is http
    style = httpx.get(f"{site.url}/style.css")
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert "ol.items" in style.text


def test_the_feeds_index_page_is_protected_too(site: Site) -> None:
    """feeds/index.html, a static page, forbids script and framing as the other pages do."""
    response = httpx.get(f"{site.url}/feeds/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in httpx.get(f"{site.url}/feeds/en/all.rss").headers


def test_strict_transport_security_only_over_https(site: Site) -> None:
    """With an https public URL every page tells browsers to use https from then on."""
    port = free_port()
    app = create_app(site.folder, public_url="https://feeds.example/", languages=LANGUAGES)
    for url in serve_in_thread(app, port):
        response = httpx.get(f"{url}/en/tags/iraq/")
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert 'href="https://feeds.example/feeds/en/tags/iraq.rss"' in response.text


def test_each_part_of_the_site_gets_its_own_policy(site: Site) -> None:
    """Web copies may use inline styles and remote images; a route's own header stands."""

    async def web_copy(request: Request) -> Response:
        return HTMLResponse("<p style='color:red'>copy</p>")

    async def own_policy(request: Request) -> Response:
        return HTMLResponse("<p>form</p>", headers={"content-security-policy": "sandbox"})

    routes = [
        Route("/digests/{edition_id:str}", web_copy),
        Route("/subscribe/", own_policy),
    ]
    app = create_app(site.folder, routes=routes, languages=LANGUAGES)
    for url in serve_in_thread(app, free_port()):
        copy = httpx.get(f"{url}/digests/daily-en-2025-08-22")
        assert copy.headers["content-security-policy"] == WEB_COPY_POLICY
        assert copy.headers["referrer-policy"] == "no-referrer"
        assert copy.headers["x-frame-options"] == "DENY"
        form = httpx.get(f"{url}/subscribe/")
        assert form.headers["content-security-policy"] == "sandbox"
        assert form.headers["referrer-policy"] == "no-referrer"
        assert form.headers["x-content-type-options"] == "nosniff"


def test_a_browser_renders_the_arabic_page_without_policy_violations(
    site: Site, browser: Browser
) -> None:
    """Headless Chromium loads the page and its stylesheet, lays it out RTL, and reports no error."""
    tab = browser.new_page()
    try:
        problems: list[str] = []
        tab.on("console", lambda message: problems.append(message.text))
        tab.on("pageerror", lambda error: problems.append(str(error)))
        tab.goto(f"{site.url}/ar/topics/resistance/")
        assert tab.evaluate("getComputedStyle(document.body).direction") == "rtl"
        # list-style comes from the stylesheet: it loaded despite the strict policy.
        style = "getComputedStyle(document.querySelector('ol.items')).listStyleType"
        assert tab.evaluate(style) == "none"
        assert problems == []
    finally:
        tab.close()
