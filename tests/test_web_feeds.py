"""The feeds as pollers see them over HTTP, from a real uvicorn server on a loopback port."""

from __future__ import annotations

import gzip
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path

import feedparser
import httpx
import pytest
from sqlalchemy import Engine

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.web.app import create_app
from tests.support.fixture_corpus import NOW, ingest_text
from tests.support.ports import free_port
from tests.support.web_server import serve_in_thread

FEED = "/feeds/en/all.rss"


@dataclass
class Server:
    """A running server: where it listens and the folder it serves."""

    url: str
    port: int
    folder: Path

    def raw(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a request with `path` exactly as given (no client-side normalising)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def _start(folder: Path) -> Iterator[Server]:
    """Run uvicorn in a thread on a free port until the test is done."""
    port = free_port()
    for url in serve_in_thread(create_app(folder, max_age=120), port):
        yield Server(url, port, folder)


@pytest.fixture
def server(sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig) -> Iterator[Server]:
    """The fixture corpus built and served."""
    ingest_text(sqlite_engine, corpus_text)
    build_feeds(sqlite_engine, feed_config, now=NOW)
    yield from _start(Path(feed_config.feeds_dir))


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the server (it asks for no compression unless a test says so)."""
    with httpx.Client(base_url=server.url, headers={"accept-encoding": "identity"}) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/feeds/en/all.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/en/all.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/en/all.json", "application/feed+json; charset=utf-8"),
        ("/feeds/index.opml", "text/x-opml; charset=utf-8"),
        ("/feeds/index.html", "text/html; charset=utf-8"),
        ("/feeds/", "text/html; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_media_type(
    client: httpx.Client, server: Server, path: str, media_type: str
) -> None:
    """Each kind of file has its registered media type, and the bytes on disk as body."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    on_disk = path.removeprefix("/feeds/") or "index.html"
    assert response.content == (server.folder / on_disk).read_bytes()


def test_validators_and_caching_headers(client: httpx.Client, server: Server) -> None:
    """A strong ETag, Last-Modified from the file, Cache-Control, and CORS for partner pages."""
    response = client.get(FEED)
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    mtime = int((server.folder / "en/all.rss").stat().st_mtime)
    assert response.headers["last-modified"] == formatdate(mtime, usegmt=True)
    assert response.headers["cache-control"] == "public, max-age=120"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "ETag" in response.headers["access-control-expose-headers"]
    assert client.get(FEED).headers["etag"] == etag, "the same bytes keep the same ETag"


def test_if_none_match_gets_304_without_body(client: httpx.Client) -> None:
    """A poller holding the current ETag gets 304 and no body; a stale one gets the feed."""
    etag = client.get(FEED).headers["etag"]
    fresh = client.get(FEED, headers={"if-none-match": etag})
    assert fresh.status_code == 304
    assert fresh.content == b""
    assert fresh.headers["etag"] == etag
    assert client.get(FEED, headers={"if-none-match": f'"x", {etag}'}).status_code == 304
    assert client.get(FEED, headers={"if-none-match": '"stale"'}).status_code == 200


def test_if_modified_since(client: httpx.Client, server: Server) -> None:
    """If-Modified-Since at or after the file's time gets 304; an earlier one gets the feed."""
    mtime = int((server.folder / "en/all.rss").stat().st_mtime)
    assert (
        client.get(FEED, headers={"if-modified-since": formatdate(mtime, usegmt=True)}).status_code
        == 304
    )
    earlier = formatdate(mtime - 60, usegmt=True)
    assert client.get(FEED, headers={"if-modified-since": earlier}).status_code == 200
    assert client.get(FEED, headers={"if-modified-since": "not a date"}).status_code == 200


def test_if_none_match_wins_over_if_modified_since(client: httpx.Client, server: Server) -> None:
    """With both, a stale ETag means 200 even if the date says unmodified (RFC 9110)."""
    mtime = int((server.folder / "en/all.rss").stat().st_mtime)
    headers = {"if-none-match": '"stale"', "if-modified-since": formatdate(mtime, usegmt=True)}
    assert client.get(FEED, headers=headers).status_code == 200


def test_a_rebuilt_feed_gets_a_new_etag(
    client: httpx.Client, server: Server, sqlite_engine: Engine, feed_config: FeedConfig
) -> None:
    """When a build changes a feed, the old ETag no longer matches and the new bytes are served."""
    etag = client.get(FEED).headers["etag"]
    update = {
        "type": "article", "id": "cms-new", "url": "https://site.example/en/news/new",
        "title": "Brand new", "published_at": "2025-08-22T11:00:00Z", "status": "published",
        "language": "en",
    }  # fmt: skip
    ingest_text(sqlite_engine, json.dumps(update))
    build_feeds(sqlite_engine, feed_config, now=NOW + timedelta(minutes=1))
    response = client.get(FEED, headers={"if-none-match": etag})
    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert b"Brand new" in response.content


def test_gzip_variant(client: httpx.Client, server: Server) -> None:
    """Clients that accept gzip get it, with its own ETag, and it revalidates too."""
    plain = client.get(FEED)
    response = client.get(FEED, headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.content == plain.content  # httpx decodes it; the bytes must round-trip
    assert response.headers["etag"] != plain.headers["etag"]
    status, headers, body = server.raw("GET", FEED, {"accept-encoding": "gzip"})
    assert status == 200
    assert gzip.decompress(body) == plain.content
    assert int(headers["content-length"]) == len(body) < len(plain.content)
    again = client.get(FEED, headers={"accept-encoding": "gzip", "if-none-match": headers["etag"]})
    assert again.status_code == 304


def test_head_has_the_headers_and_no_body(server: Server, client: httpx.Client) -> None:
    """HEAD answers like GET without the body."""
    get = client.get(FEED)
    status, headers, body = server.raw("HEAD", FEED)
    assert status == 200
    assert body == b""
    assert headers["etag"] == get.headers["etag"]
    assert int(headers["content-length"]) == len(get.content)


def test_other_methods_are_refused(client: httpx.Client) -> None:
    """Feeds are read-only: POST, PUT and DELETE get 405 with an Allow header."""
    for method in ("POST", "PUT", "DELETE"):
        response = client.request(method, FEED)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, OPTIONS"


def test_cors_preflight(client: httpx.Client) -> None:
    """A partner page's script may send conditional headers across origins."""
    response = client.options(
        FEED,
        headers={"origin": "https://partner.example", "access-control-request-method": "GET"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "If-None-Match" in response.headers["access-control-allow-headers"]


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/../store.db",
        "/feeds/%2e%2e/store.db",
        "/feeds/en/..%2f..%2fstore.db",
        "/feeds/%2e%2e%2fstore.db",
        "/feeds/en/%252e%252e/all.rss",
        "/feeds//etc/passwd",
        "/feeds/en/.all.rss.tmp",
        "/feeds/en\\..\\..\\store.db",
        "/feeds/en/all.rss%00.html",
        "/feeds/en",
        "/feeds/nowhere.rss",
    ],
)
def test_paths_that_try_to_leave_the_folder_get_404(server: Server, path: str) -> None:
    """Traversal, encoded dots, hidden temp files and directories without a slash are not found."""
    (server.folder.parent / "store.db").write_bytes(b"secret")
    (server.folder / "en" / ".all.rss.tmp").write_bytes(b"partial")
    status, _, body = server.raw("GET", path)
    assert status == 404
    assert b"secret" not in body
    assert b"partial" not in body


def test_a_symbolic_link_out_of_the_folder_is_not_followed(server: Server) -> None:
    """A link planted inside the folder that points outside it is not served."""
    outside = server.folder.parent / "outside.rss"
    outside.write_bytes(b"outside")
    os.symlink(outside, server.folder / "en" / "planted.rss")
    status, _, body = server.raw("GET", "/feeds/en/planted.rss")
    assert status == 404
    assert body != b"outside"


def test_health_and_front_door(client: httpx.Client) -> None:
    """/healthz says ok once a build is on disk; / and /feeds lead to the feeds index."""
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    for path in ("/", "/feeds"):
        response = client.get(path)
        assert response.status_code == 308
        assert response.headers["location"] == "/feeds/"


def test_health_is_503_before_the_first_build(tmp_path: Path) -> None:
    """A server with nothing built yet tells load balancers not to send it traffic."""
    (tmp_path / "feeds").mkdir()
    for server in _start(tmp_path / "feeds"):
        assert httpx.get(f"{server.url}/healthz").status_code == 503


def test_feedparser_polls_conditionally(server: Server) -> None:
    """A real feed reader library fetches the feed, then revalidates with its ETag and gets 304."""
    first = feedparser.parse(server.url + FEED)
    assert not first.bozo
    assert first.status == 200
    assert first.feed.language == "en"
    assert first.entries
    second = feedparser.parse(server.url + FEED, etag=first.etag, modified=first.modified)
    assert second.status == 304
    assert second.entries == []
