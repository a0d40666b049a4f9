"""The work queue: `syndicate worker` processes run feed builds deferred through PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from syndicate.feeds.config import FeedConfig
from syndicate.queue import FEED_BUILD, request_feed_build
from tests.support.cli import syndicate
from tests.support.queue_workers import Worker, demo_store, queue_env
from tests.support.waiting import PATIENCE, wait_for

postgres = pytest.mark.postgres


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    """An operator's environment: the PostgreSQL store, feeds under the test's folder."""
    return queue_env(store_url, tmp_path)


@pytest.fixture
def store(env: dict[str, str], tmp_path: Path) -> Iterator[Engine]:
    """The store, migrated and holding a demo corpus of 1,500 articles."""
    engine = demo_store(env, tmp_path)
    yield engine
    engine.dispose()


def build_jobs(engine: Engine) -> list[tuple[int, str]]:
    """Every feed build job in the queue: its id and status."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, status FROM procrastinate_jobs WHERE task_name = :name ORDER BY id"),
            {"name": FEED_BUILD},
        )
        return [(row.id, row.status) for row in rows]


def wait_for_jobs(engine: Engine, expected: list[tuple[int, str]]) -> None:
    """Wait until the queue's feed build jobs are `expected` (a job is recorded after its log)."""
    wait_for(lambda: build_jobs(engine) == expected, PATIENCE, f"the build jobs to be {expected}")


@postgres
def test_a_worker_runs_a_deferred_build_and_writes_the_feeds(
    store: Engine, tmp_path: Path, feed_config: FeedConfig, start_worker: Callable[[str], Worker]
) -> None:
    """A build asked for on PostgreSQL is queued, and a worker process writes the feeds."""
    worker = start_worker("w1")
    request = request_feed_build(store, feed_config)
    assert request.report is None  # not built here: queued
    assert request.job_id is not None
    done = worker.wait_for_line(f"job done name={FEED_BUILD} id={request.job_id} ")
    assert "seconds=" in done
    assert (tmp_path / "feeds" / "index.opml").is_file()
    assert (tmp_path / "feeds" / "en" / "all.rss").is_file()
    wait_for_jobs(store, [(request.job_id, "succeeded")])


@postgres
def test_two_requests_for_a_waiting_build_are_one_job(
    store: Engine, tmp_path: Path, feed_config: FeedConfig, start_worker: Callable[[str], Worker]
) -> None:
    """While a build waits for a worker, asking again collapses into it: one job, run once."""
    first = request_feed_build(store, feed_config)
    second = request_feed_build(store, feed_config)
    assert first.job_id is not None
    assert second.collapsed
    assert build_jobs(store) == [(first.job_id, "todo")]
    worker = start_worker("w1")
    worker.wait_for_line(f"job done name={FEED_BUILD} id={first.job_id} ")
    assert worker.stop() == 0
    assert sum(f"job done name={FEED_BUILD}" in line for line in worker.lines()) == 1
    wait_for_jobs(store, [(first.job_id, "succeeded")])


@postgres
def test_sigterm_lets_the_job_in_flight_finish_then_the_worker_exits(
    store: Engine, tmp_path: Path, feed_config: FeedConfig, start_worker: Callable[[str], Worker]
) -> None:
    """A worker told to stop mid-build finishes that build, records it, and exits 0."""
    worker = start_worker("w1")
    job_id = request_feed_build(store, feed_config, full=True).job_id
    worker.wait_for_line(f"job started name={FEED_BUILD} id={job_id}")
    assert worker.stop() == 0
    events = [
        event
        for line in worker.lines()
        for event in ("job started name=feeds", "worker stopping", "job done name=feeds", "stopped")
        if event in line
    ]
    assert events == ["job started name=feeds", "worker stopping", "job done name=feeds", "stopped"]
    assert "worker stopping name=w1 signal=SIGTERM" in worker.log.read_text()
    assert build_jobs(store) == [(job_id, "succeeded")]  # recorded before the worker ended
    assert (tmp_path / "feeds" / "index.opml").is_file()


@postgres
def test_a_build_left_by_a_killed_worker_is_finished_by_another(
    store: Engine, tmp_path: Path, feed_config: FeedConfig, start_worker: Callable[[str], Worker]
) -> None:
    """A worker SIGKILLed mid-build stops beating; a worker that starts later runs the build."""
    doomed = start_worker("w1")
    job_id = request_feed_build(store, feed_config, full=True).job_id
    doomed.wait_for_line(f"job started name={FEED_BUILD} id={job_id}")
    doomed.process.kill()
    doomed.process.wait()
    assert build_jobs(store) == [(job_id, "doing")]
    # The one thing not real: the half minute without a heartbeat that marks a dead worker.
    with store.begin() as connection:
        connection.execute(
            text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'")
        )
    heir = start_worker("w2")
    heir.wait_for_line(f"job stalled name={FEED_BUILD} id={job_id} retried")
    heir.wait_for_line(f"job done name={FEED_BUILD} id={job_id} ")
    wait_for_jobs(store, [(job_id, "succeeded")])
    assert (tmp_path / "feeds" / "index.opml").is_file()


@postgres
def test_a_live_worker_hands_back_a_dead_workers_build_once_it_falls_silent(
    store: Engine,
    env: dict[str, str],
    tmp_path: Path,
    feed_config: FeedConfig,
    start_worker: Callable[[str], Worker],
) -> None:
    """No restart, no help: a worker that goes on living picks up a killed one's build.

    With `[queue] heartbeat_seconds = 1` and `stalled_seconds = 3`, the survivor's own looks
    find the silent worker's job and run it.
    """
    env.update({"SYNDICATE_QUEUE__HEARTBEAT_SECONDS": "1", "SYNDICATE_QUEUE__STALLED_SECONDS": "3"})
    workers = [start_worker("w1"), start_worker("w2")]
    with store.begin() as holding:
        # The build reads the store's state first: held here, it waits mid-job to be killed.
        holding.execute(text("LOCK TABLE state IN ACCESS EXCLUSIVE MODE"))
        job_id = request_feed_build(store, feed_config, full=True).job_id
        started = f"job started name={FEED_BUILD} id={job_id}"
        wait_for(
            lambda: any(started in line for w in workers for line in w.lines()),
            PATIENCE,
            "a worker to take the build",
        )
        doomed, survivor = (
            workers if any(started in line for line in workers[0].lines()) else workers[::-1]
        )
        doomed.process.kill()
        doomed.process.wait()
    survivor.wait_for_line(f"job stalled name={FEED_BUILD} id={job_id} retried")
    survivor.wait_for_line(f"job done name={FEED_BUILD} id={job_id} ")
    wait_for_jobs(store, [(job_id, "succeeded")])
    assert (tmp_path / "feeds" / "index.opml").is_file()


def test_a_worker_on_sqlite_refuses_with_one_line(tmp_path: Path) -> None:
    """`syndicate worker` on SQLite says workers need PostgreSQL and exits 2."""
    env = {"SYNDICATE_DATABASE__URL": f"sqlite:///{tmp_path / 'store.db'}"}
    ran = syndicate("worker", cwd=tmp_path, env=env)
    assert ran.returncode == 2
    assert not (tmp_path / "store.db").exists()  # refused before anything was opened
    assert ran.stderr == (
        "syndicate: workers need PostgreSQL ([database] url); "
        "with SQLite `syndicate run` does all the work itself\n"
    )


def test_a_build_asked_for_on_sqlite_runs_in_this_process(
    sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig, tmp_path: Path
) -> None:
    """With SQLite there is no queue: the build happens at once, here, and says what it did."""
    env = {"SYNDICATE_DATABASE__URL": str(sqlite_engine.url)}
    assert syndicate("ingest", "-", cwd=tmp_path, stdin=corpus_text, env=env).returncode == 0
    request = request_feed_build(sqlite_engine, feed_config)
    assert request.job_id is None
    assert request.report is not None
    assert request.report.mode == "full"
    assert request.report.written > 0
    assert (Path(feed_config.feeds_dir) / "en" / "all.rss").is_file()
