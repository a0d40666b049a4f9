"""Chaos: a cluster sends to 20,000 while its workers are killed, and its nodes serve one build.

Everything is real: PostgreSQL, SeaweedFS's S3 gateway, an aiosmtpd sink, two `syndicate run`
nodes and three `syndicate worker`s, all separate processes. While the lease holder's digest
job sends, a worker picked at random is SIGKILLed and replaced each time the ledger has grown
by another share of the audience (so the kills come every few seconds whatever the machine's
speed), and articles arrive in the inbox, so feed builds are killed too. Then: nobody was
skipped, repeats stay within kills x pool_size, and both nodes serve, byte for byte, what one
process builds from the same store.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert, text

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.settings import Settings
from syndicate.store import open_database
from syndicate.store.schema import subscriber
from tests.support.articles import article_record
from tests.support.newsroom import addresses
from tests.support.queue_workers import Worker
from tests.support.s3_server import S3Bucket
from tests.support.service import Service, Site, an_hour_ago
from tests.support.smtp_server import Serve
from tests.support.waiting import PATIENCE, wait_for

COUNT = 20_000
POOL = 4  # each worker's connections: the bound on repeats per kill
WORKERS = 3
KILLS = 8  # one at each eighth of the audience reached (the last may come after the end)
PREFIX = "feeds/"
FETCHERS = 4  # requests in flight to each node while the served feeds are read back


def sent_count(engine: Engine, edition: str) -> int:
    """Recipients the ledger has sent `edition` to."""
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text("SELECT count(*) FROM delivery WHERE edition_id = :e AND status = 'sent'"),
                {"e": edition},
            )
            or 0
        )


def edition_id(engine: Engine) -> str | None:
    """The English daily edition once the digest job has built it."""
    with engine.connect() as connection:
        found = connection.scalar(
            text("SELECT id FROM edition WHERE kind = 'daily' AND language = 'en'")
        )
    return str(found) if found else None


def feeds_idle(engine: Engine) -> bool:
    """No feed build waits or runs, none is half shared, and nothing is marked to rebuild."""
    with engine.connect() as connection:
        return not connection.scalar(
            text(
                "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                "        AND task_name IN ('feeds.build', 'feeds.shard'))"
                "     + (SELECT count(*) FROM dirty_feed)"
                "     + (SELECT count(*) FROM feed_build WHERE outcome IS NULL)"
            )
        )


def add_readers(engine: Engine, emails: list[str]) -> None:
    """Confirmed English daily readers, written straight to the store (import has tests of its own)."""
    now = datetime.now(UTC)
    rows = [
        {"email": email, "name": "Reader", "language": "en", "digests": ["daily"], "topics": [],
         "status": "confirmed", "created_at": now, "confirmed_at": now, "updated_at": now}
        for email in emails
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(subscriber), rows)


def served_by(node: Service, keys: list[str]) -> dict[str, bytes]:
    """What `node` serves at /feeds/KEY for each key (each must be 200), over kept connections."""

    def fetch(client: httpx.Client, key: str) -> tuple[str, bytes]:
        answer = client.get(f"{node.base}/feeds/{key}")
        assert answer.status_code == 200, (key, answer.status_code)
        return key, answer.content

    with httpx.Client(timeout=PATIENCE) as client, ThreadPoolExecutor(FETCHERS) as pool:
        return dict(pool.map(lambda key: fetch(client, key), keys))


def arrive(site: Site, number: int) -> str:
    """Drop an article of now into the inbox, as the newsroom's exporter would; its title."""
    title = f"Chaos dispatch {number}"
    staging = site.inbox / f".chaos-{number}.jsonl"  # hidden while written, then moved in whole
    staging.write_text(article_record(f"chaos-{number}", title, datetime.now(UTC)))
    staging.rename(site.inbox / f"chaos-{number}.jsonl")
    return title


def replace_worker(
    workers: list[Worker], site: Site, folder: Path, chooser: random.Random, serial: int
) -> None:
    """SIGKILL a running worker picked at random and start a fresh one in its place."""
    victim = chooser.choice([worker for worker in workers if worker.process.poll() is None])
    victim.process.kill()
    victim.process.wait()
    workers.append(Worker(folder, site.env, f"spare{serial}").started())


@pytest.mark.postgres
# Its waits may each take minutes on a loaded machine (20,000 messages, eight kills): room for
# them all, beyond the suite's five minutes a test.
@pytest.mark.timeout(900)
def test_a_send_outlives_killed_workers_and_every_node_serves_one_build(
    tmp_path: Path,
    demo_corpus: Path,
    store_url: str,
    s3_bucket: S3Bucket,
    serve: Serve,
    services: list[Service],
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20,000 reached, repeats within kills x pool_size; both nodes serve one process's build."""
    sink, smtp = serve()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    site = Site(tmp_path, empty)
    site.env.update(
        {
            "SYNDICATE_DATABASE__URL": store_url,
            "SYNDICATE_WEB__PUBLIC_URL": "https://news.example/",
            "SYNDICATE_FEEDS__PUBLISH": "s3",
            "SYNDICATE_FEEDS__S3__BUCKET": s3_bucket.name,
            "SYNDICATE_FEEDS__S3__PREFIX": PREFIX,
            "SYNDICATE_FEEDS__S3__ENDPOINT_URL": s3_bucket.server.endpoint_url,
            "SYNDICATE_FEEDS__S3__REGION": s3_bucket.server.region,
            "SYNDICATE_FEEDS__S3__CACHE_SECONDS": "0",  # every request asks the bucket
            **s3_bucket.environment(),
            "SYNDICATE_MAIL__TRANSPORT": "smtp",
            "SYNDICATE_MAIL__SMTP__HOST": smtp.host,
            "SYNDICATE_MAIL__SMTP__PORT": str(smtp.port),
            "SYNDICATE_MAIL__SMTP__POOL_SIZE": str(POOL),
            "SYNDICATE_QUEUE__SEND_BATCH": "500",
            "SYNDICATE_QUEUE__RUN_WORKERS": "0",  # the nodes serve and schedule; workers work
            "SYNDICATE_QUEUE__HEARTBEAT_SECONDS": "1",
            "SYNDICATE_QUEUE__STALLED_SECONDS": "3",
        }
    )
    assert site.cli("ingest", str(demo_corpus)).returncode == 0
    daily_at, due = an_hour_ago("UTC")
    site.feature("chaos-pick", due - timedelta(minutes=30))
    store = open_database(store_url)
    add_readers(store, addresses(COUNT))
    chooser = random.Random(14)

    workers += [Worker(tmp_path, site.env, f"w{n}").started() for n in range(1, WORKERS + 1)]
    nodes = [site.start(schedule__daily_at=daily_at), site.start()]
    services += nodes
    site.ask_digest("daily")
    edition = str(wait_for(lambda: edition_id(store), PATIENCE, "the edition to be built"))

    kills = 0
    titles = []
    while kills < KILLS and sent_count(store, edition) < COUNT:
        mark = (kills + 1) * COUNT // (KILLS + 1)
        wait_for(lambda: sent_count(store, edition) >= mark, 3 * PATIENCE, f"{mark} sent")  # noqa: B023
        replace_worker(workers, site, tmp_path, chooser, kills)
        kills += 1
        if kills % 3 == 1:
            titles.append(arrive(site, kills))
    wait_for(lambda: sent_count(store, edition) == COUNT, 5 * PATIENCE, "everyone sent")
    wait_for(
        lambda: any("digest finished kind=daily" in node.log for node in nodes),
        3 * PATIENCE,
        "the digest job to finish",
    )
    assert any("result=ok" in line for node in nodes for line in node.log.splitlines()
               if "digest finished kind=daily" in line)  # fmt: skip

    received = Counter(sink.addresses())
    assert set(received) == set(addresses(COUNT)), "somebody was skipped"
    repeats = sum(received.values()) - COUNT
    assert repeats <= kills * POOL, f"{repeats} repeats after {kills} kills"

    # The feeds: every build the kills interrupted was finished; both nodes serve the bucket.
    wait_for(lambda: feeds_idle(store), 3 * PATIENCE, "the feed builds to finish")
    client = s3_bucket.server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket.name, Prefix=PREFIX)
    keys = [item["Key"].removeprefix(PREFIX) for page in pages for item in page.get("Contents", [])]
    assert "index.opml" in keys
    assert "en/all.rss" in keys
    first, second = (served_by(node, keys) for node in nodes)
    assert first == second, [key for key in keys if first[key] != second[key]][:5]
    served = first
    for title in titles:
        assert title.encode() in served["en/all.rss"]

    # One process, the same store, the same clock as the cluster's last build.
    for node in nodes:
        assert node.terminate() == 0
    for worker in workers:
        if worker.process.poll() is None:
            assert worker.stop() == 0
    for name, value in site.env.items():
        if name.startswith("SYNDICATE_"):
            monkeypatch.setenv(name, value)
    reference = tmp_path / "reference"
    config = replace(FeedConfig.from_settings(Settings()), feeds_dir=str(reference), bucket=None)
    with store.connect() as connection:
        clock = connection.scalar(text("SELECT value FROM state WHERE name = 'built_at'"))
    build_feeds(store, config, now=datetime.fromisoformat(clock), full=True)
    built = {
        str(path.relative_to(reference)): path.read_bytes()
        for path in reference.rglob("*")
        if path.is_file()
    }
    assert sorted(served) == sorted(built)
    different = [key for key in built if served[key] != built[key]]
    assert different == [], f"{len(different)} files differ, such as {different[:5]}"
    store.dispose()
