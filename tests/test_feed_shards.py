"""Feed builds shared by `syndicate worker` processes: sharded by feed key, the index last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.shards import share_of, split_keys
from syndicate.queue import FEED_BUILD, FEED_SHARD, request_feed_build
from syndicate.settings import Settings
from tests.support.ports import free_port
from tests.support.queue_workers import Worker, demo_store, queue_env
from tests.support.waiting import PATIENCE, wait_for
from tests.support.web_server import serve_in_thread

postgres = pytest.mark.postgres
StartWorker = Callable[[str], Worker]

# Feed keys as the site spells them, and anything else a key could be.
feed_keys = st.one_of(
    st.from_regex(r"[a-z]{2}/(all|tags/[a-z0-9-]{1,30}|topics/[a-z-]{1,20})", fullmatch=True),
    st.text(min_size=1, max_size=40),
)


@given(st.sets(feed_keys, max_size=300), st.integers(min_value=1, max_value=64))
def test_every_key_is_in_exactly_one_shard(keys: set[str], shards: int) -> None:
    """Splitting keys gives `shards` sorted shares that hold each key once, where share_of says."""
    shares = split_keys(keys, shards)
    assert len(shares) == shards
    assert sorted(key for share in shares for key in share) == sorted(keys)
    for number, share in enumerate(shares):
        assert share == sorted(share)
        assert all(share_of(key, shards) == number for key in share)


SPLIT_IN_ANOTHER_PROCESS = """
import json, sys
from syndicate.feeds.shards import split_keys
keys, shards = json.load(sys.stdin)
print(json.dumps(split_keys(keys, shards)))
"""


@settings(max_examples=8, deadline=None)
@given(st.lists(feed_keys, min_size=1, max_size=100), st.integers(min_value=2, max_value=16))
def test_shares_are_the_same_in_every_process(keys: list[str], shards: int) -> None:
    """Another process (another hash seed) splits the same keys into the same shares."""
    ran = subprocess.run(
        [sys.executable, "-c", SPLIT_IN_ANOTHER_PROCESS],
        input=json.dumps([keys, shards]), capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": str(len(keys) * 7919 + shards)},
    )  # fmt: skip
    assert json.loads(ran.stdout) == split_keys(keys, shards)


def test_a_key_keeps_its_shard_across_releases() -> None:
    """The share of a key is a fixed function of it: a new release moves no feed elsewhere."""
    keys = ["en/all", "en/tags/iraq", "fr/topics/climat", "de/all"]
    # blake2b of the key, 8 bytes big-endian, modulo the shards: written down once.
    assert split_keys(keys, 3) == [["en/all"], [], ["de/all", "en/tags/iraq", "fr/topics/climat"]]


# -- real workers on PostgreSQL -------------------------------------------------------------


@pytest.fixture
def hub() -> Iterator[list[str]]:
    """A WebSub hub on a loopback port that accepts and records every hub.url announced."""
    topics: list[str] = []

    async def accept(request: Request) -> Response:
        form = await request.form()
        topics.extend(str(value) for name, value in form.multi_items() if name == "hub.url")
        return Response(status_code=204)

    for url in serve_in_thread(
        Starlette(routes=[Route("/hub", accept, methods=["POST"])]), free_port()
    ):
        topics.append(f"{url}/hub")  # the first entry is the hub's own URL
        yield topics


@pytest.fixture
def env(store_url: str, tmp_path: Path, hub: list[str]) -> dict[str, str]:
    """An operator's environment: the PostgreSQL store, feeds under the test's folder, a hub."""
    return queue_env(store_url, tmp_path, feeds__websub_hub=hub[0])


@pytest.fixture
def store(env: dict[str, str], tmp_path: Path) -> Iterator[Engine]:
    """The store, migrated and holding a demo corpus of 1,500 articles (some 600 feeds)."""
    engine = demo_store(env, tmp_path)
    yield engine
    engine.dispose()


def builds(engine: Engine) -> list[tuple[int, int, str | None]]:
    """Every shared build on record: its id, shards and outcome (None while unfinished)."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT pk, shards, outcome FROM feed_build ORDER BY pk"))
        return [(row.pk, row.shards, row.outcome) for row in rows]


def built_at(engine: Engine) -> datetime | None:
    """The clock of the last build recorded, if any."""
    with engine.connect() as connection:
        value = connection.scalar(text("SELECT value FROM state WHERE name = 'built_at'"))
    return datetime.fromisoformat(value) if value else None


def wait_for_builds(engine: Engine, expected: list[tuple[int, int, str | None]]) -> None:
    """Wait until the shared builds on record are `expected`."""
    wait_for(lambda: builds(engine) == expected, 3 * PATIENCE, f"the builds to be {expected}")


def feed_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def single_process_build(
    env: dict[str, str], engine: Engine, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> FeedConfig:
    """A whole full build of the same store in this process, as of the last build's clock."""
    for name, value in env.items():
        if name.startswith("SYNDICATE_"):
            monkeypatch.setenv(name, value)
    # The hub too: feeds name it. This build announces nothing (the service and workers do).
    config = replace(FeedConfig.from_settings(Settings()), feeds_dir=str(folder))
    clock = built_at(engine)
    assert clock is not None
    build_feeds(engine, config, now=clock, full=True)
    return config


@contextmanager
def registry_held(engine: Engine) -> Iterator[None]:
    """Hold the feed registry against writes: shards publish their feeds, then wait to record."""
    with engine.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE published_feed IN EXCLUSIVE MODE"))
        yield


def wait_for_waiting_shards(engine: Engine, count: int) -> None:
    """Wait until `count` shard jobs run and their sessions wait on a lock (to record)."""

    def waiting() -> bool:
        with engine.connect() as connection:
            doing = connection.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"
                     " AND status = 'doing'"),
                {"name": FEED_SHARD},
            )  # fmt: skip
            blocked = connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND wait_event_type = 'Lock'")
            )  # fmt: skip
        return doing == count and (blocked or 0) >= count

    wait_for(waiting, PATIENCE, f"{count} shards waiting to record")


def wait_until_told(*workers: Worker) -> None:
    """Wait until one of `workers` has told the hub of a build (it does so after recording it)."""
    wait_for(
        lambda: any("websub notified" in line for worker in workers for line in worker.lines()),
        PATIENCE,
        "the hub to be told",
    )


def shard_lines(*workers: Worker) -> list[str]:
    """The `feeds shard done` lines of the workers' logs."""
    return [line for worker in workers for line in worker.lines() if "feeds shard done" in line]


@postgres
def test_a_full_build_shared_by_workers_writes_what_one_process_writes(
    store: Engine,
    env: dict[str, str],
    tmp_path: Path,
    feed_config: FeedConfig,
    hub: list[str],
    start_worker: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three shards over two workers give the very files a whole build gives, the index last."""
    env["SYNDICATE_QUEUE__FEED_SHARDS"] = "3"
    workers = [start_worker("w1"), start_worker("w2")]
    request_feed_build(store, feed_config, full=True)
    wait_for_builds(store, [(1, 3, "done")])
    logs = "".join(worker.log.read_text() for worker in workers)
    assert "feeds build shared build=1 mode=full shards=3" in logs
    assert len(shard_lines(*workers)) == 3
    sharded = tmp_path / "feeds"
    single_process_build(env, store, tmp_path / "single", monkeypatch)
    files = feed_files(sharded)
    assert len(files) > 2000
    assert files == feed_files(tmp_path / "single")
    feeds = [path for path in sharded.rglob("*") if path.is_file() and "index." not in path.name]
    last_feed = max(path.stat().st_mtime_ns for path in feeds)
    assert (sharded / "index.opml").stat().st_mtime_ns >= last_feed
    assert (sharded / "index.html").stat().st_mtime_ns >= last_feed
    # The worker that finished the build told the hub of every feed file it wrote, once (after
    # recording the build: its log says when it is done).
    wait_until_told(*workers)
    announced = hub[1:]
    assert len(announced) == len(set(announced)) == len(feeds)
    assert any(url.endswith("/en/all.rss") for url in announced)
    # Shared again with nothing new: not a file rewritten, nothing announced.
    request_feed_build(store, feed_config, full=True)
    wait_for_builds(store, [(1, 3, "done"), (2, 3, "done")])
    summaries = [
        line for worker in workers for line in worker.lines() if "feeds built mode=full" in line
    ]
    assert len(summaries) == 2
    assert any(" written=0 " in line and " removed=0 " in line for line in summaries)
    assert hub[1:] == announced


@postgres
def test_a_shard_whose_worker_is_killed_is_finished_by_another(
    store: Engine,
    env: dict[str, str],
    tmp_path: Path,
    feed_config: FeedConfig,
    hub: list[str],
    start_worker: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker SIGKILLed mid-shard: its shard is retried elsewhere and the build completes."""
    doomed, survivor = start_worker("w1"), start_worker("w2")  # two live workers, two shards
    with registry_held(store):
        request_feed_build(store, feed_config, full=True)
        wait_for_waiting_shards(store, 2)
        doomed.process.kill()
        doomed.process.wait()
    survivor.wait_for_line("feeds shard done build=1")
    assert builds(store) == [(1, 2, None)]  # half done: the killed worker's shard is unrecorded
    # The one thing not real: the half minute without a heartbeat that marks a dead worker.
    with store.begin() as connection:
        connection.execute(
            text(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                " WHERE id IN (SELECT worker_id FROM procrastinate_jobs"
                "              WHERE task_name = :name AND status = 'doing')"
            ),
            {"name": FEED_SHARD},
        )
    heir = start_worker("w3")
    wait_for_builds(store, [(1, 2, "done")])
    assert any(f"job stalled name={FEED_SHARD}" in line for line in heir.lines() + survivor.lines())
    assert len(shard_lines(survivor, heir)) == 2
    single_process_build(env, store, tmp_path / "single", monkeypatch)
    assert feed_files(tmp_path / "feeds") == feed_files(tmp_path / "single")
    # The hub hears of every feed, the killed worker's too (its heir found them written).
    wait_until_told(survivor, heir)
    feeds = [path for path in (tmp_path / "feeds").rglob("*") if "index." not in path.name]
    assert len(set(hub[1:])) == len([path for path in feeds if path.is_file()])


@postgres
def test_a_build_asked_for_during_a_shared_one_records_after_it(
    store: Engine, feed_config: FeedConfig, start_worker: StartWorker
) -> None:
    """A second build waits while a shared build's shards are out, then runs and records after."""
    first, second = start_worker("w1"), start_worker("w2")
    with registry_held(store):
        request_feed_build(store, feed_config, full=True)
        wait_for_waiting_shards(store, 2)
        third = start_worker("w3")  # free to take the next build
        waiting = request_feed_build(store, feed_config)
        assert waiting.job_id is not None
        third.wait_for_line(f"job done name={FEED_BUILD} id={waiting.job_id} ")
        assert "feeds build waits for build=1 shards_left=2" in third.log.read_text()
        assert built_at(store) is None  # nothing recorded while the first build's feeds are out
    wait_for_builds(store, [(1, 2, "done")])
    with store.connect() as connection:
        clock = connection.scalar(text("SELECT clock FROM feed_build WHERE pk = 1"))

    def recorded_after_the_first() -> bool:
        moment = built_at(store)
        return moment is not None and moment > clock

    wait_for(recorded_after_the_first, PATIENCE, "the second build to record after the first")
    logs = "".join(worker.log.read_text() for worker in (first, second, third))
    assert logs.count("feeds build waits for build=1") >= 1


@postgres
def test_a_shared_build_whose_shards_are_gone_is_abandoned(
    store: Engine, feed_config: FeedConfig, start_worker: StartWorker
) -> None:
    """A shared build left unfinished with no shard job alive does not block the next build."""
    with store.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO feed_build (mode, clock, shards, dirty, started_at)"
                " VALUES ('full', now(), 2, '{}', now())"
            )
        )
    worker = start_worker("w1")
    job_id = request_feed_build(store, feed_config).job_id
    worker.wait_for_line(f"job done name={FEED_BUILD} id={job_id} ")
    assert "feeds build abandoned build=1 shards_alive=0" in worker.log.read_text()
    assert builds(store) == [(1, 2, "abandoned")]
    assert built_at(store) is not None  # the build that followed was done and recorded
