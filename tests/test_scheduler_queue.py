"""`syndicate run` on PostgreSQL: the scheduler polls the sources and asks the workers to build."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.queue import FEED_BUILD
from tests.support.articles import article_record
from tests.support.databases import POSTGRES_URL, postgres_database
from tests.support.queue_workers import Worker
from tests.support.service import Service, Site
from tests.support.waiting import PATIENCE, wait_for


@pytest.fixture
def store_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for one test."""
    if not POSTGRES_URL:
        pytest.skip("SYNDICATE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    yield from postgres_database()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers a test starts; any still running at its end are killed."""
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


@pytest.mark.postgres
def test_the_schedulers_poll_has_a_worker_build_the_feeds(
    tmp_path: Path,
    demo_corpus: Path,
    store_url: str,
    services: list[Service],
    workers: list[Worker],
) -> None:
    """An inbox article polled by the lease holder reaches the feeds through a worker's build."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    site = Site(tmp_path, empty)
    site.env["SYNDICATE_DATABASE__URL"] = store_url
    # The cluster's settings, the same for the service and its worker (feeds name this URL).
    site.env["SYNDICATE_WEB__PUBLIC_URL"] = "https://news.example/"
    assert site.cli("ingest", str(demo_corpus)).returncode == 0
    workers.append(Worker(tmp_path, site.env, "w1").started())
    service = site.start()
    services.append(service)

    published = datetime.now(UTC) - timedelta(minutes=1)
    staging = site.inbox / ".drop.jsonl"  # written under a hidden name, then moved in whole
    staging.write_text(article_record("queued-1", "Built by a worker", published))
    staging.rename(site.inbox / "drop.jsonl")

    feed = tmp_path / "feeds" / "en" / "all.rss"
    wait_for(lambda: "Built by a worker" in feed.read_text(), PATIENCE, "the article in the feed")
    service.wait_logged("feed build queued as job")
    built = workers[0].wait_for_line("feeds built mode=incremental")
    assert "written=0 " not in built
    worker_log = workers[0].log.read_text()
    assert f"job done name={FEED_BUILD}" in worker_log
    # The first build, asked for as the service started, was the worker's too (a full one).
    assert worker_log.index("feeds built mode=full") < worker_log.index(built)
    # The service only polled and asked: it built nothing itself, not even as it started.
    assert "a build is asked of the workers" in service.log
    assert "feeds built" not in service.log
    assert service.terminate() == 0
