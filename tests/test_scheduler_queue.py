"""`syndicate run` on PostgreSQL: the scheduler polls the sources and asks the workers to build."""

from __future__ import annotations

import mailbox
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.queue import FEED_BUILD
from tests.support.articles import article_record
from tests.support.queue_workers import Worker
from tests.support.service import Service, Site, an_hour_ago
from tests.support.waiting import PATIENCE, wait_for


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
    site.env["SYNDICATE_QUEUE__RUN_WORKERS"] = "0"  # a node that only serves and schedules
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


def process_gone(pid: int) -> bool:
    """Whether process `pid` has ended (gone, or a zombie nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.postgres
def test_one_machine_on_postgresql_needs_only_syndicate_run(
    tmp_path: Path, demo_corpus: Path, store_url: str, services: list[Service]
) -> None:
    """[queue] run_workers = 1: the service's own worker builds and sends, and ends with it."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    site = Site(tmp_path, empty)
    site.env["SYNDICATE_DATABASE__URL"] = store_url
    assert site.cli("ingest", str(demo_corpus)).returncode == 0
    site.subscribe([f"reader{n}@example.org" for n in range(30)])
    daily_at, due = an_hour_ago("UTC")
    site.feature("one-machine", due - timedelta(minutes=30))
    service = site.start(schedule__daily_at=daily_at)  # healthy: its worker built the feeds
    services.append(service)
    assert "companion worker started pid=" in service.log
    site.ask_digest("daily")
    service.wait_logged("digest finished kind=daily")
    assert "result=ok" in service.log
    assert len(mailbox.Maildir(site.outbox).keys()) == 30
    assert service.terminate() == 0
    assert re.search(r"companion worker stopped pid=\d+ status=0", service.log)

    # Killed outright, the service cannot stop its worker: Linux tells the worker instead.
    again = site.start()
    services.append(again)
    pid = int(re.findall(r"companion worker started pid=(\d+)", again.log)[-1])
    again.process.kill()
    again.process.wait()
    wait_for(lambda: process_gone(pid), PATIENCE, "the orphaned worker to stop")
