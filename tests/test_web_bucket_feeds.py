"""With [feeds] publish = "s3", every node's /feeds/ serves the bucket as the folder is served.

Against a real SeaweedFS (tests/support/s3_server.py) and real uvicorn servers on loopback
ports. The cache's clock is the test's own, so freshness is driven, never slept through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from syndicate.feeds.bucket import Bucket
from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.object_store import ObjectStore
from syndicate.store import open_database
from syndicate.web.app import create_app
from syndicate.web.bucket_feeds import BucketFeeds, open_bucket_feeds
from syndicate.web.site import create_site
from syndicate.web.static_feeds import size
from tests.support.fixture_corpus import NOW, ingest_text
from tests.support.ports import free_port
from tests.support.s3_server import S3Bucket
from tests.support.sites import site_settings
from tests.support.web_server import serve_in_thread

PREFIX = "site/feeds"
MAX_AGE = 120
FRESH_SECONDS = 30.0
SERVED = (
    "/feeds/",
    "/feeds/index.html",
    "/feeds/index.opml",
    "/feeds/en/all.rss",
    "/feeds/en/all.atom",
    "/feeds/en/all.json",
    "/feeds/fa/all.json",
    "/feeds/en/tags/iraq.rss",
    "/en/tags/iraq/",  # a tag page, rendered from the feed's JSON
)
# Headers that say when or by whom, not what: a file's Last-Modified is its mtime on disk and
# its upload time in the bucket.
CIRCUMSTANTIAL = {"date", "server", "last-modified"}
HOSTILE = (
    "/feeds/../store.db",
    "/feeds/%2e%2e/store.db",
    "/feeds/en/..%2f..%2fstore.db",
    "/feeds/%2e%2e%2f%2e%2e%2fother/secret.rss",
    "/feeds/.hidden.rss",
    "/feeds/en//all.rss",
    "/feeds/en\\..\\..\\other.rss",
    "/feeds/en/all.rss%00.html",
    "/feeds/en/all.txt",
)


class Clock:
    """The cache's clock, moved by the test."""

    def __init__(self) -> None:
        """Start at an arbitrary reading."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The current reading, in seconds."""
        return self.now


@dataclass
class Built:
    """The fixture corpus built into a folder and into a bucket, alike."""

    folder: Path
    bucket: Bucket
    s3: S3Bucket


@pytest.fixture
def built(
    sqlite_engine: Engine,
    corpus_text: str,
    feed_config: FeedConfig,
    s3_bucket: S3Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> Built:
    """One store built to a folder and to a fresh bucket's prefix; keys in the environment."""
    for name, value in s3_bucket.environment().items():
        monkeypatch.setenv(name, value)
    ingest_text(sqlite_engine, corpus_text)
    bucket = Bucket(
        name=s3_bucket.name,
        prefix=PREFIX,
        endpoint_url=s3_bucket.server.endpoint_url,
        timeout=5,
        max_age=MAX_AGE,
    )
    build_feeds(sqlite_engine, feed_config, now=NOW)
    build_feeds(sqlite_engine, replace(feed_config, bucket=bucket), now=NOW)
    return Built(Path(feed_config.feeds_dir), bucket, s3_bucket)


def _bucket_feeds(built: Built, clock: Clock, **cache: float) -> BucketFeeds:
    return open_bucket_feeds(
        built.bucket,
        cache_bytes=int(cache.get("cache_bytes", 1 << 26)),
        cache_seconds=cache.get("cache_seconds", FRESH_SECONDS),
        clock=clock,
    )


def _serve(feeds: BucketFeeds | None, folder: Path) -> Iterator[httpx.Client]:
    app = create_app(folder, max_age=MAX_AGE, languages=("en", "fa"), feeds=feeds)
    for url in serve_in_thread(app, free_port()):
        with httpx.Client(base_url=url, headers={"accept-encoding": "identity"}) as client:
            yield client


@pytest.fixture
def clock() -> Clock:
    """The bucket cache's clock."""
    return Clock()


@pytest.fixture
def feeds(built: Built, clock: Clock) -> BucketFeeds:
    """The bucket's /feeds/ as a node serves it."""
    return _bucket_feeds(built, clock)


@pytest.fixture
def node(feeds: BucketFeeds, tmp_path: Path) -> Iterator[httpx.Client]:
    """A web node serving the bucket (its own feeds folder is empty)."""
    yield from _serve(feeds, tmp_path / "empty")


@pytest.fixture
def folder_node(built: Built) -> Iterator[httpx.Client]:
    """A web node serving the folder build of the same store, as today."""
    yield from _serve(None, built.folder)


def _answer(client: httpx.Client, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    response = client.get(path, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k not in CIRCUMSTANTIAL}
    return response.status_code, kept, response.content


def test_the_bucket_is_served_as_the_folder_is(
    node: httpx.Client, folder_node: httpx.Client
) -> None:
    """Same status, bytes, ETag, media type, caching and security headers, plain and gzipped."""
    for path in SERVED:
        for encoding in ("identity", "gzip"):
            ours = _answer(node, path, **{"accept-encoding": encoding})
            assert ours == _answer(folder_node, path, **{"accept-encoding": encoding}), path
            assert ours[0] == 200, path
    _status, headers, body = _answer(node, "/feeds/en/all.rss", **{"accept-encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"  # (httpx has decompressed the body)
    assert int(headers["content-length"]) < len(body)
    assert headers["cache-control"] == f"public, max-age={MAX_AGE}"


def test_two_nodes_on_one_bucket_serve_the_same_bytes(
    built: Built, node: httpx.Client, clock: Clock, tmp_path: Path
) -> None:
    """A second node, with its own cache and client, answers exactly as the first."""
    for other in _serve(_bucket_feeds(built, clock), tmp_path / "other"):
        for path in SERVED:
            assert _answer(other, path) == _answer(node, path), path


def test_a_matching_if_none_match_gets_304(node: httpx.Client, folder_node: httpx.Client) -> None:
    """The folder's ETag is the bucket's: a client moved between them keeps its copy."""
    etag = folder_node.get("/feeds/en/all.atom").headers["etag"]
    response = node.get("/feeds/en/all.atom", headers={"if-none-match": etag})
    assert (response.status_code, response.content) == (304, b"")
    assert response.headers["etag"] == etag
    gzipped = node.get("/feeds/en/all.atom", headers={"accept-encoding": "gzip"})
    again = node.get("/feeds/en/all.atom", headers={"if-none-match": gzipped.headers["etag"]})
    assert again.status_code == 304


def test_a_changed_object_is_served_once_the_cached_copy_is_older_than_cache_seconds(
    built: Built, node: httpx.Client, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Within cache_seconds the cached copy answers; after, the bucket's new bytes and ETag."""
    caplog.set_level(logging.DEBUG, logger="syndicate.feeds.object_store")
    first = node.get("/feeds/en/all.json")
    clock.now += FRESH_SECONDS
    assert node.get("/feeds/en/all.json").content == first.content
    # The bucket was asked again, conditionally, and sent no body.
    reads = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("feed object read")
    ]
    assert reads == [
        f"feed object read key={PREFIX}/en/all.json status=200 bytes={len(first.content)}",
        f"feed object read key={PREFIX}/en/all.json status=304",
    ]
    client = built.s3.server.client()
    key = f"{PREFIX}/en/all.json"
    client.put_object(Bucket=built.s3.name, Key=key, Body=b'{"changed": true}')
    assert node.get("/feeds/en/all.json").content == first.content
    clock.now += FRESH_SECONDS - 1
    assert node.get("/feeds/en/all.json").content == first.content
    clock.now += 1
    changed = node.get("/feeds/en/all.json")
    assert changed.content == b'{"changed": true}'
    assert changed.headers["etag"] != first.headers["etag"]
    client.delete_object(Bucket=built.s3.name, Key=key)
    clock.now += FRESH_SECONDS
    assert node.get("/feeds/en/all.json").status_code == 404


@pytest.mark.parametrize("path", ["/feeds/en/tags/nothing.rss", "/feeds/xx/", "/feeds/en/"])
def test_a_missing_object_is_404(node: httpx.Client, path: str) -> None:
    """A key the bucket lacks is a plain 404, as the folder answers."""
    response = node.get(path)
    assert (response.status_code, response.content) == (404, b"Not Found\n")


@pytest.mark.parametrize("path", HOSTILE)
def test_paths_that_try_to_leave_the_prefix_get_404(
    built: Built, node: httpx.Client, path: str
) -> None:
    """Parent steps, encoded slashes, hidden names, NULs and odd suffixes never reach the bucket."""
    client = built.s3.server.client()
    for key in ("site/store.db", "site/other/secret.rss", f"{PREFIX}/.hidden.rss"):
        client.put_object(Bucket=built.s3.name, Key=key, Body=b"secret")
    response = node.get(path)
    assert response.status_code == 404
    assert b"secret" not in response.content


def test_an_unreachable_bucket_serves_the_cached_copy_marked_stale_else_503(
    built: Built,
    node: httpx.Client,
    feeds: BucketFeeds,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cached file is still served (with Warning) and logged; one never fetched is a 503."""
    fresh = node.get("/feeds/en/all.rss")
    nowhere = replace(built.bucket, endpoint_url=f"http://127.0.0.1:{free_port()}")
    feeds.store = ObjectStore(nowhere, attempts=1)
    clock.now += FRESH_SECONDS
    caplog.set_level(logging.WARNING, logger="syndicate.web.bucket_feeds")
    stale = node.get("/feeds/en/all.rss")
    assert (stale.status_code, stale.content) == (200, fresh.content)
    assert stale.headers["warning"] == '110 - "Response is Stale"'
    missing = node.get("/feeds/en/all.atom")
    assert missing.status_code == 503
    assert missing.headers["retry-after"] == "30"
    lines = [record.getMessage() for record in caplog.records]
    assert any(
        line.startswith("feeds bucket unreachable; served stale key=en/all.rss ") for line in lines
    )
    assert any(
        line.startswith("feeds bucket unreachable; answered 503 key=en/all.atom ") for line in lines
    )
    assert node.get("/healthz").status_code == 503  # index.opml was never fetched


def test_health_follows_the_bucket(built: Built, clock: Clock, tmp_path: Path) -> None:
    """/healthz is 200 once the bucket holds an index, 503 while its prefix is empty."""
    for node in _serve(_bucket_feeds(built, clock), tmp_path / "a"):
        assert node.get("/healthz").status_code == 200
    empty = replace(built, bucket=replace(built.bucket, prefix="nothing-here"))
    for node in _serve(_bucket_feeds(empty, clock), tmp_path / "b"):
        assert node.get("/healthz").status_code == 503


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=8),
    budget=st.integers(min_value=0, max_value=6000),
)
def test_the_cache_stays_within_its_bytes(
    built: Built, clock: Clock, sizes: list[int], budget: int
) -> None:
    """Whatever files are read, the cache holds at most cache_bytes, the newest when it fits."""
    client = built.s3.server.client()
    feeds = _bucket_feeds(built, clock, cache_bytes=budget)
    for number, amount in enumerate(sizes):
        relative = f"cache/{number}.json"
        body = bytes(range(256)) * (amount // 256) + b"x" * (amount % 256)
        client.put_object(Bucket=built.s3.name, Key=f"{PREFIX}/{relative}", Body=body)
        found = asyncio.run(feeds.find(relative))
        assert found is not None
        assert found.plain.body == body
        held = feeds.cached()
        assert feeds.cached_bytes == sum(size(item) for item in held.values()) <= budget
        assert (relative in held) == (size(found) <= budget)


def test_the_site_serves_the_bucket_when_builds_publish_there(built: Built, tmp_path: Path) -> None:
    """`syndicate serve` and `run` with [feeds] publish = "s3": /feeds/ and /healthz read the bucket."""
    s3 = {
        "bucket": built.bucket.name,
        "prefix": PREFIX,
        "endpoint_url": built.bucket.endpoint_url,
        "cache_seconds": 0,
    }
    settings = site_settings(
        tmp_path, "http://127.0.0.1/", feeds={"publish": "s3", "max_age": MAX_AGE, "s3": s3}
    )
    site = create_site(open_database(settings.database.url), settings)
    for url in serve_in_thread(site, free_port()):
        with httpx.Client(base_url=url) as client:
            assert client.get("/healthz").status_code == 200
            served = client.get("/feeds/en/all.rss").content
    assert served == (built.folder / "en" / "all.rss").read_bytes()
