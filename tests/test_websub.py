"""Announcing changed feeds to a WebSub hub: a real hub app on a loopback port records them."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.websub import GIVE_UP_AFTER, announce_build, notify_hub
from syndicate.observe import metrics
from tests.support.fixture_corpus import NOW, ingest_text
from tests.support.ports import free_port
from tests.support.web_server import serve_in_thread

FEEDS = [f"https://feeds.example/feeds/en/tags/t{number}.rss" for number in range(10)]


@dataclass
class Hub:
    """A hub's endpoints (/hub accepts, /broken answers 500, /slow is late) and what it got."""

    url: str
    received: list[list[tuple[str, str]]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)

    def topics(self) -> list[str]:
        """Every hub.url announced, in order of arrival."""
        return [value for form in self.received for name, value in form if name == "hub.url"]


@pytest.fixture
def hub() -> Iterator[Hub]:
    """A tiny hub that records each publish request."""
    recorded = Hub("")

    async def record(request: Request) -> None:
        form = await request.form()
        recorded.received.append([(name, str(value)) for name, value in form.multi_items()])
        recorded.content_types.append(request.headers.get("content-type", ""))

    async def accept(request: Request) -> Response:
        await record(request)
        return Response(status_code=204)

    async def broken(request: Request) -> Response:
        await record(request)
        return Response("hub trouble", status_code=500)

    released = threading.Event()  # set when the test is done, so that the server can stop

    async def slow(request: Request) -> Response:
        while not released.is_set():  # never answers while the test runs
            await asyncio.sleep(0.01)
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/hub", accept, methods=["POST"]),
            Route("/broken", broken, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )
    for url in serve_in_thread(app, free_port()):
        recorded.url = url
        yield recorded
        released.set()


def _failed_count() -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "syndicate_websub_notifications_total", {"result": "failed"}
        )
        or 0.0
    )


def test_a_build_announces_each_changed_feed_once(
    hub: Hub, sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """After a build, the hub gets one publish per feed file written, and nothing else."""
    config = replace(feed_config, hub=f"{hub.url}/hub")
    ingest_text(sqlite_engine, corpus_text)
    report = build_feeds(sqlite_engine, config, now=NOW)
    assert f'href="{hub.url}/hub" rel="hub"' in (Path(config.feeds_dir) / "en/all.atom").read_text()
    announced = announce_build(config, report)
    assert announced is not None
    assert announced.ok
    urls = report.changed_urls(config.feeds_url)
    assert len(urls) == report.written
    assert len(hub.received) == len(urls) == announced.requests
    assert all(form[0] == ("hub.mode", "publish") and len(form) == 2 for form in hub.received)
    assert sorted(hub.topics()) == sorted(urls)
    assert set(hub.content_types) == {"application/x-www-form-urlencoded"}
    assert not any("index." in url for url in urls)
    # Topic URLs are spelled exactly as the feeds' self links, Arabic slugs included.
    assert "https://feeds.example/feeds/ar/tags/%D8%A7%D9%84%D8%B9%D8%B1%D8%A7%D9%82.rss" in urls


def test_only_feeds_a_build_changed_are_announced(
    hub: Hub, sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """A build that changes nothing announces nothing; a new article announces its feeds."""
    config = replace(feed_config, hub=f"{hub.url}/hub")
    ingest_text(sqlite_engine, corpus_text)
    build_feeds(sqlite_engine, config, now=NOW)
    quiet = build_feeds(sqlite_engine, config, now=NOW + timedelta(minutes=1))
    assert quiet.changed == []
    announced = announce_build(config, quiet)
    assert announced is not None
    assert announced.requests == 0
    assert hub.received == []
    article = {
        "type": "article", "id": "cms-3001", "url": "https://site.example/en/news/3001",
        "title": "A new one", "published_at": "2025-08-22T11:00:00Z", "status": "published",
        "language": "en", "section": "news", "tags": ["Iraq"],
    }  # fmt: skip
    ingest_text(sqlite_engine, json.dumps(article))
    report = build_feeds(sqlite_engine, config, now=NOW + timedelta(minutes=2))
    announce_build(config, report)
    expected = {
        f"https://feeds.example/feeds/en/{name}.{fmt}"
        for name in ("all", "sections/news", "tags/iraq")
        for fmt in ("rss", "atom", "json")
    }
    assert set(hub.topics()) == expected
    assert len(hub.received) == len(expected)


def test_no_hub_configured_means_no_announcement(
    sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """Without [feeds] websub_hub nothing is sent."""
    ingest_text(sqlite_engine, corpus_text)
    assert announce_build(feed_config, build_feeds(sqlite_engine, feed_config, now=NOW)) is None


def test_several_feeds_per_request_when_asked(hub: Hub) -> None:
    """With batch_size, one request carries several hub.url values."""
    report = notify_hub(f"{hub.url}/hub", FEEDS[:3], batch_size=2)
    assert report.requests == 2
    assert report.notified == FEEDS[:3]
    assert [len(form) for form in hub.received] == [3, 2]
    assert hub.topics() == FEEDS[:3]


def test_a_hub_error_is_logged_counted_and_not_raised(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 from the hub fails those feeds: a log line, a count, and no exception."""
    before = _failed_count()
    report = notify_hub(f"{hub.url}/broken", FEEDS[:2])
    assert report.failed == FEEDS[:2]
    assert not report.ok
    assert _failed_count() == before + 2
    refused = [r.getMessage() for r in caplog.records if "websub publish refused" in r.getMessage()]
    assert len(refused) == 2
    assert "status=500" in refused[0]


def test_a_hub_that_keeps_failing_is_given_up_on(hub: Hub) -> None:
    """After a few failures in a row the rest are counted as failed without being sent."""
    before = _failed_count()
    report = notify_hub(f"{hub.url}/broken", FEEDS)
    assert len(hub.received) == report.requests == GIVE_UP_AFTER
    assert report.failed == FEEDS
    assert _failed_count() == before + len(FEEDS)


def test_an_unreachable_hub_is_logged_counted_and_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listening on the hub's port: the feeds fail, quietly for the caller."""
    before = _failed_count()
    with caplog.at_level(logging.INFO, logger="syndicate.feeds.websub"):
        report = notify_hub(f"http://127.0.0.1:{free_port()}/hub", FEEDS[:1])
    assert report.failed == FEEDS[:1]
    assert _failed_count() == before + 1
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("websub publish failed") and "ConnectError" in m for m in messages)
    assert any(m.startswith("websub notified") and "failed=1" in m for m in messages)


def test_a_slow_hub_times_out(hub: Hub) -> None:
    """A hub slower than the timeout fails the feed instead of holding up the build."""
    report = notify_hub(f"{hub.url}/slow", FEEDS[:1], timeout=0.1)
    assert report.failed == FEEDS[:1]


def test_a_malformed_hub_url_does_not_raise() -> None:
    """A hub setting that is not a usable URL fails every feed, without an exception."""
    report = notify_hub("hub.example/no-scheme", FEEDS[:2])
    assert report.failed == FEEDS[:2]
