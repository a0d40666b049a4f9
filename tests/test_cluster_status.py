"""Operators see the cluster: `syndicate status` and /metrics show the queue, workers and sends."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from procrastinate.jobs import Status
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert, select, text

from syndicate.feeds.config import FeedConfig
from syndicate.queue import FEED_BUILD, queue_app, request_feed_build
from syndicate.queue.names import SEND_BATCH
from syndicate.queue.worker_names import record_worker_name
from syndicate.store.schema import delivery, edition, subscriber
from syndicate.web.site import create_site
from tests.support.cli import syndicate
from tests.support.ports import free_port
from tests.support.queue_workers import Worker, queue_env
from tests.support.sites import SECRET, site_settings
from tests.support.subscribers import add_subscribers
from tests.support.waiting import PATIENCE, wait_for
from tests.support.web_server import serve_in_thread

postgres = pytest.mark.postgres
StartWorker = Callable[[str], Worker]
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
EDITION = "daily-en-2026-11-30"
# A job of a kind no worker knows (one an older release deferred, say): the worker fails it.
RETIRED = "feeds.retired"
STATES = ("todo", "doing", "failed")  # the statuses syndicate_queue_jobs counts


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    """An operator's environment: the PostgreSQL store, feeds under the test's folder."""
    return queue_env(store_url, tmp_path, security__secret_key=SECRET)  # the site's key


@pytest.fixture
def site(postgres_store: Engine, store_url: str, tmp_path: Path) -> Iterator[str]:
    """The site `syndicate serve` wires, on a real server, over the store: its base URL."""
    port = free_port()
    settings = site_settings(tmp_path, f"http://127.0.0.1:{port}/", database={"url": store_url})
    yield from serve_in_thread(create_site(postgres_store, settings), port)


def cluster_section(env: dict[str, str], tmp_path: Path) -> list[str]:
    """The lines of `syndicate status`'s Cluster section."""
    ran = syndicate("status", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("Cluster"))
    end = lines.index("", start)
    return lines[start:end]


def scrape(url: str) -> Samples:
    """Every sample /metrics answers with, by name and labels, as Prometheus reads them."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def job_table(*rows: tuple[str, int, int, int]) -> list[str]:
    """The status's table of jobs: kind, waiting, running, failed."""
    width = max(len("jobs"), *(len(row[0]) for row in rows))
    header = f"  {'jobs':<{width}}  waiting  running  failed"
    return [header, *(f"  {k:<{width}}  {t:>7}  {d:>7}  {f:>6}" for k, t, d, f in rows)]


def jobs_gauge(samples: Samples, task: str) -> tuple[float, float, float]:
    """syndicate_queue_jobs of `task`: todo, doing, failed."""
    series = samples["syndicate_queue_jobs"]
    todo, doing, failed = (series[(("status", state), ("task", task))] for state in STATES)
    return todo, doing, failed


def worker_ids(engine: Engine) -> list[int]:
    """The workers registered in the queue, by id."""
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT id FROM procrastinate_workers ORDER BY id")))


def registered_worker(engine: Engine) -> int:
    """The one worker's id, once it has registered (a moment after it logs that it started)."""
    registered = wait_for(lambda: worker_ids(engine), PATIENCE, "the worker to register")
    assert isinstance(registered, list)
    [worker_id] = registered
    return int(worker_id)


def job_status(engine: Engine, job_id: int) -> str:
    """A job's status in the queue."""
    with engine.connect() as connection:
        found = connection.scalar(
            text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )
    return str(found)


def test_status_on_sqlite_says_there_is_no_queue(tmp_path: Path) -> None:
    """With SQLite the Cluster section is one line: no queue, `syndicate run` does the work."""
    env = {"SYNDICATE_DATABASE__URL": f"sqlite:///{tmp_path / 'store.db'}"}
    assert syndicate("ingest", "-", cwd=tmp_path, stdin="", env=env).returncode == 0
    assert cluster_section(env, tmp_path) == [
        "Cluster: no work queue on SQLite; `syndicate run` does all the work itself."
    ]


@postgres
def test_a_queued_build_shows_as_waiting_with_no_worker(
    postgres_store: Engine, site: str, env: dict[str, str], tmp_path: Path, feed_config: FeedConfig
) -> None:
    """A build deferred while no worker runs is the queue's depth: one feeds.build waiting."""
    assert request_feed_build(postgres_store, feed_config).job_id is not None
    assert cluster_section(env, tmp_path) == [
        "Cluster (the work queue in PostgreSQL):",
        *job_table((FEED_BUILD, 1, 0, 0), ("feeds.shard", 0, 0, 0), (SEND_BATCH, 0, 0, 0)),
        "  workers: 0 live",
        "  stalled jobs: 0",
        "  failed jobs: 0",
        "  sends running: none",
    ]
    samples = scrape(site)
    assert jobs_gauge(samples, FEED_BUILD) == (1, 0, 0)
    assert jobs_gauge(samples, SEND_BATCH) == (0, 0, 0)
    assert samples["syndicate_queue_workers_live"] == {(): 0}
    assert samples["syndicate_queue_jobs_stalled"] == {(): 0}
    assert "syndicate_queue_worker_heartbeat_age_seconds" not in samples


@postgres
def test_a_live_worker_shows_its_heartbeat_and_is_gone_after_sigterm(
    postgres_store: Engine,
    site: str,
    env: dict[str, str],
    tmp_path: Path,
    start_worker: StartWorker,
) -> None:
    """A running worker is live with a heartbeat seconds old; stopped, it leaves both views."""
    worker = start_worker("w1")
    worker_id = registered_worker(postgres_store)
    section = cluster_section(env, tmp_path)
    assert "  workers: 1 live" in section
    # Known by its --name, host and pid as well as procrastinate's number.
    label = re.escape(f"{worker_id} (w1 on {socket.gethostname()}, pid {worker.process.pid})")
    [beat] = [line for line in section if line.startswith(f"    worker {worker_id} ")]
    found = re.fullmatch(rf"    worker {label}  last heartbeat (\d+) s ago", beat)
    assert found is not None, beat
    assert int(found[1]) <= 30
    samples = scrape(site)
    assert samples["syndicate_queue_workers_live"] == {(): 1}
    [(labels, age)] = samples["syndicate_queue_worker_heartbeat_age_seconds"].items()
    assert labels == (("host", socket.gethostname()), ("name", "w1"), ("worker", str(worker_id)))
    assert 0 <= age <= 30

    assert worker.stop() == 0
    with postgres_store.connect() as connection:  # its name went with procrastinate's row
        assert connection.scalar(text("SELECT count(*) FROM queue_worker")) == 0
    section = cluster_section(env, tmp_path)
    assert "  workers: 0 live" in section
    assert not [line for line in section if line.startswith("    worker ")]
    samples = scrape(site)
    assert samples["syndicate_queue_workers_live"] == {(): 0}
    assert "syndicate_queue_worker_heartbeat_age_seconds" not in samples  # its series is gone


@postgres
def test_a_job_left_by_a_killed_worker_shows_as_stalled(
    postgres_store: Engine,
    site: str,
    env: dict[str, str],
    tmp_path: Path,
    feed_config: FeedConfig,
    start_worker: StartWorker,
) -> None:
    """A worker SIGKILLed mid-build is presumed dead once silent, and its build shows stalled."""
    doomed = start_worker("w1")
    worker_id = registered_worker(postgres_store)
    doomed_label = f"{worker_id} (w1 on {socket.gethostname()}, pid {doomed.process.pid})"
    # The build reads the store's state first: held locked here, it waits mid-job to be killed.
    with postgres_store.begin() as holding:
        holding.execute(text("LOCK TABLE state IN ACCESS EXCLUSIVE MODE"))
        job_id = request_feed_build(postgres_store, feed_config, full=True).job_id
        doomed.wait_for_line(f"job started name={FEED_BUILD} id={job_id}")
        doomed.process.kill()
        doomed.process.wait()
    assert job_status(postgres_store, job_id or 0) == "doing"
    # The one thing not real: the half minute without a heartbeat that marks a dead worker.
    with postgres_store.begin() as connection:
        connection.execute(
            text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'")
        )
    assert cluster_section(env, tmp_path) == [
        "Cluster (the work queue in PostgreSQL):",
        *job_table((FEED_BUILD, 0, 1, 0), ("feeds.shard", 0, 0, 0), (SEND_BATCH, 0, 0, 0)),
        "  workers: 0 live",
        f"    worker {doomed_label}  no heartbeat for 3600 s: presumed dead",
        "  stalled jobs: 1 (a live worker queues them again at its next look)",
        f"    job {job_id} {FEED_BUILD}  worker {doomed_label}  full=True",
        "  failed jobs: 0",
        "  sends running: none",
    ]
    samples = scrape(site)
    assert samples["syndicate_queue_jobs_stalled"] == {(): 1}
    assert samples["syndicate_queue_workers_live"] == {(): 0}
    assert samples["syndicate_queue_worker_heartbeat_age_seconds"][
        (("host", socket.gethostname()), ("name", "w1"), ("worker", str(worker_id)))
    ] == pytest.approx(3600, abs=60)
    assert jobs_gauge(samples, FEED_BUILD) == (0, 1, 0)


@postgres
def test_a_job_no_worker_can_run_shows_as_failed(
    postgres_store: Engine,
    store_url: str,
    site: str,
    env: dict[str, str],
    tmp_path: Path,
    start_worker: StartWorker,
) -> None:
    """A job of a kind the workers do not know fails; status lists it with its arguments."""
    with queue_app(store_url).open() as app:
        job_id = app.configure_task(RETIRED).defer(full=False)
    start_worker("w1")
    wait_for(lambda: job_status(postgres_store, job_id) == "failed", PATIENCE, "the job to fail")
    section = cluster_section(env, tmp_path)
    assert section[1:6] == job_table(
        (FEED_BUILD, 0, 0, 0), ("feeds.shard", 0, 0, 0), (SEND_BATCH, 0, 0, 0), (RETIRED, 0, 0, 1)
    )
    assert "  failed jobs: 1" in section
    [failed] = [line for line in section if line.startswith(f"    job {job_id} ")]
    assert failed.startswith(f"    job {job_id} {RETIRED}  full=False  failed 20")
    assert failed.endswith(" after 1 attempt")
    assert jobs_gauge(scrape(site), RETIRED) == (0, 0, 1)


# A send across workers. The batch job itself is another part's (SEND_BATCH, args edition_id,
# first, last); until it lands, the two workers here are procrastinate's own worker calls
# (register, fetch, finish) made from the test: the queue's rows are what real ones leave.


def send_to_ten(engine: Engine) -> list[int]:
    """An edition and its ten English daily readers, by subscriber id."""
    moment = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(edition).values(
                id=EDITION, kind="daily", language="en", date="2026-11-30", window_start=moment,
                window_end=moment, built_at=moment, subject="Today", content={},
            )
        )  # fmt: skip
    add_subscribers(engine, [f"reader{number}@example.org" for number in range(10)])
    with engine.connect() as connection:
        return list(connection.scalars(select(subscriber.c.pk).order_by(subscriber.c.pk)))


def record_sent(engine: Engine, pks: list[int]) -> None:
    """The ledger's rows of messages sent to `pks`, as a batch records them."""
    moment = datetime.now(UTC)
    with engine.begin() as connection:
        for pk in pks:
            connection.execute(
                insert(delivery).values(
                    edition_id=EDITION, subscriber_pk=pk, status="sent",
                    message_id=f"<{pk}@example.org>", detail="", at=moment,
                )
            )  # fmt: skip


async def two_workers_on_a_send(url: str, pks: list[int], engine: Engine) -> list[int]:
    """Four batches of 3, 3, 3 and 1 readers; two workers part-way through: their ids."""
    app = queue_app(url)
    async with app.open_async():
        for first in range(0, len(pks), 3):
            batch = pks[first : first + 3]
            await app.configure_task(SEND_BATCH).defer_async(
                edition_id=EDITION, first=batch[0], last=batch[-1]
            )
        manager = app.job_manager
        one, two = await manager.register_worker(), await manager.register_worker()
        await record_worker_name(app, one, "sender")  # the other has not said who it is
        first_batch = await manager.fetch_job(None, one)
        assert first_batch is not None
        record_sent(engine, pks[0:3])
        await manager.finish_job(first_batch, Status.SUCCEEDED, delete_job=False)
        assert await manager.fetch_job(None, one) is not None  # readers 4 to 6: none sent yet
        assert await manager.fetch_job(None, two) is not None  # readers 7 to 9: one sent
        record_sent(engine, pks[6:7])
    return [one, two]


@postgres
def test_a_running_send_shows_its_progress_across_workers_from_the_ledger(
    postgres_store: Engine, site: str, env: dict[str, str], tmp_path: Path, store_url: str
) -> None:
    """Batches by state, the workers on them, and the ledger's count against the audience."""
    pks = send_to_ten(postgres_store)
    one, two = asyncio.run(two_workers_on_a_send(store_url, pks, postgres_store))
    section = cluster_section(env, tmp_path)
    assert section[1:5] == job_table(
        (FEED_BUILD, 0, 0, 0), ("feeds.shard", 0, 0, 0), (SEND_BATCH, 1, 2, 0)
    )
    assert section[-2:] == [
        "  sends running:",
        f"    {EDITION}  4 of 10 sent (40.0 %); batches 1 waiting, 2 running, 1 done, 0 failed;"
        f" on workers {one} (sender on {socket.gethostname()}, pid {os.getpid()}), {two}",
    ]
    samples = scrape(site)
    edition_label = (("edition", EDITION),)
    assert samples["syndicate_send_sent"] == {edition_label: 4}
    assert samples["syndicate_send_audience"] == {edition_label: 10}
    assert samples["syndicate_send_progress_ratio"] == {edition_label: 0.4}
    assert samples["syndicate_send_batches"] == {
        (("edition", EDITION), ("state", state)): count
        for state, count in (("waiting", 1), ("running", 2), ("done", 1), ("failed", 0))
    }
    assert samples["syndicate_queue_workers_live"] == {(): 2}
    assert set(samples["syndicate_queue_worker_heartbeat_age_seconds"]) == {
        (("host", socket.gethostname()), ("name", "sender"), ("worker", str(one))),
        (("host", ""), ("name", ""), ("worker", str(two))),  # not said yet: known by number
    }
