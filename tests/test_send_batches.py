"""A send on PostgreSQL: batches of subscriber ids, sent by `syndicate worker` processes.

Real PostgreSQL, real worker processes, a real SMTP server on loopback. The cutting of an
audience into batches is a pure function, checked over arbitrary id sets with Hypothesis.
"""

from __future__ import annotations

import itertools
import mailbox
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from syndicate.delivery.ledger import delivered_count
from syndicate.delivery.send_lease import LEASE_TTL, SendInProgress, batch_lease_name
from syndicate.digests.editions import load_edition
from syndicate.queue import request_send
from syndicate.queue.names import SEND_BATCH
from syndicate.send.batches import Batch, audience_batches, send_batch, split_batches
from syndicate.settings import MailSettings, Settings, load_settings
from syndicate.store import leases
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.newsroom import POOL, Newsroom, addresses
from tests.support.queue_workers import Worker
from tests.support.smtp_server import Recorder, Serve
from tests.support.subscribers import add_subscribers
from tests.support.waiting import PATIENCE, wait_for

COUNT = 300  # subscribers
BATCH = 50  # [queue] send_batch: six batches
postgres = pytest.mark.postgres
StartWorker = Callable[[str], Worker]


@given(
    ids=st.sets(st.integers(min_value=1, max_value=10**9), max_size=400),
    done=st.sets(st.integers(min_value=1, max_value=10**9)),
    size=st.integers(min_value=1, max_value=60),
)
def test_batches_cover_every_id_once_in_order_and_never_beyond_their_size(
    ids: set[int], done: set[int], size: int
) -> None:
    """Every id falls in exactly one batch; batches follow each other; each holds at most `size`."""
    ordered = sorted(ids)
    batches = list(split_batches(((pk, pk in done) for pk in ordered), size))
    covered = [[pk for pk in ordered if batch.first <= pk <= batch.last] for batch in batches]
    assert [pk for members in covered for pk in members] == ordered  # each once, in order
    assert all(0 < len(members) <= size for members in covered)
    assert all(len(members) == size for members in covered[:-1])  # only the last is short
    assert [batch.size for batch in batches] == [len(members) for members in covered]
    assert [batch.pending for batch in batches] == [
        sum(pk not in done for pk in members) for members in covered
    ]
    assert all(a.last < b.first for a, b in itertools.pairwise(batches))


def test_a_batch_sends_its_range_only_and_never_beside_another_holder(
    engine: Engine, tmp_path: Path
) -> None:
    """A batch mails subscribers first..last only; while another holds its lease, it sends none."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    add_subscribers(engine, addresses(30))
    settings = Settings(mail=MailSettings(outbox_dir=tmp_path / "outbox"))
    batches = audience_batches(engine, edition, 10)
    assert [(batch.size, batch.pending) for batch in batches] == [(10, 10)] * 3
    # A live holder (this process) sends the second batch: a worker that seemed dead, say.
    lease = batch_lease_name(edition.id, batches[1].first)
    leases.acquire(engine, lease, leases.holder_name(), LEASE_TTL)
    with pytest.raises(SendInProgress):
        send_batch(engine, settings, edition, batches[1], stop=None)
    report = send_batch(engine, settings, edition, batches[0], stop=None)
    assert (report.sent, report.failed) == (10, 0)
    mailed = sorted(str(message["To"]) for message in mailbox.Maildir(tmp_path / "outbox"))
    assert mailed == addresses(10)
    # Asked again, the send is cut the same way, the range the ledger has all left out.
    assert audience_batches(engine, edition, 10) == batches[1:]


@pytest.fixture
def smtp(serve: Serve) -> tuple[Recorder, int]:
    """The SMTP server the workers send to, and its port."""
    server, settings = serve()
    return server, settings.port


@pytest.fixture
def room(tmp_path: Path, store_url: str, smtp: tuple[Recorder, int]) -> Newsroom:
    """300 subscribers and a daily edition on PostgreSQL, sent in batches of 50."""
    settings = {
        "SYNDICATE_DATABASE__URL": store_url,
        "SYNDICATE_QUEUE__SEND_BATCH": str(BATCH),
        # A message the test holds at the server never times out, however long it is held.
        "SYNDICATE_MAIL__SMTP__TIMEOUT": "600",
    }
    return Newsroom(tmp_path, smtp[1], COUNT, settings)


@pytest.fixture
def env(room: Newsroom) -> dict[str, str]:
    """The newsroom's settings, for the workers (start_worker)."""
    return room.env


def batch_jobs(engine: Engine) -> list[tuple[int, str, Batch]]:
    """Every send batch job: its id, status and range."""
    query = text(
        "SELECT id, status, (args->>'first')::bigint AS first, (args->>'last')::bigint AS last"
        " FROM procrastinate_jobs WHERE task_name = :name ORDER BY id"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"name": SEND_BATCH}).all()
    return [(row.id, row.status, Batch(row.first, row.last)) for row in rows]


def everyone_once(server: Recorder) -> bool:
    """Whether every subscriber has exactly one message."""
    return Counter(server.addresses()) == Counter(addresses(COUNT))


@postgres
def test_two_workers_share_the_batches_and_everyone_gets_one_message(
    room: Newsroom, smtp: tuple[Recorder, int], start_worker: StartWorker, postgres_store: Engine
) -> None:
    """`digest send` queues six batches; two workers send them; each subscriber gets one."""
    server, _ = smtp
    server.delay = 0.005  # each batch takes a moment, so both workers take some
    workers = [start_worker("w1"), start_worker("w2")]
    sent = room.send()
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"{room.edition}: {COUNT} sent, 0 failed, 0 suppressed, 0 ")
    assert f"{room.edition}: 6 batches queued for the workers" in sent.stderr
    assert "no worker is running" not in sent.stderr
    assert everyone_once(server)
    for worker in workers:
        assert any("send batch done" in line for line in worker.lines()), worker.name
    jobs = batch_jobs(postgres_store)
    assert [status for _, status, _ in jobs] == ["succeeded"] * 6
    batches = sorted(batch for _, _, batch in jobs)
    assert all(a.last < b.first for a, b in itertools.pairwise(batches))


@postgres
def test_asking_again_while_the_batches_wait_queues_nothing_more(
    room: Newsroom, smtp: tuple[Recorder, int], start_worker: StartWorker, postgres_store: Engine
) -> None:
    """With no worker, `--no-wait` queues the batches and says nobody works; again adds none."""
    server, _ = smtp
    first = room.cli("digest", "send", room.edition, "--no-wait")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"{room.edition}: 6 batches queued for the workers\n"
    assert "no worker is running: the send waits in the queue" in first.stderr
    jobs = batch_jobs(postgres_store)
    assert [status for _, status, _ in jobs] == ["todo"] * 6
    again = room.cli("digest", "send", room.edition, "--no-wait")
    assert again.stdout == (
        f"{room.edition}: 6 batches queued for the workers (6 of them queued already)\n"
    )
    assert batch_jobs(postgres_store) == jobs  # nothing deferred
    start_worker("w1")
    done = [(job, "succeeded", batch) for job, _, batch in jobs]
    wait_for(lambda: batch_jobs(postgres_store) == done, PATIENCE, "the six batches to be sent")
    assert everyone_once(server)


@postgres
def test_the_progress_counts_every_workers_messages_and_the_summary_the_ledgers(
    room: Newsroom,
    smtp: tuple[Recorder, int],
    start_worker: StartWorker,
    postgres_store: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Progress adds up to the recipients left; a refusal fails the send; again skips the done."""
    server, _ = smtp
    server.refuse["reader00007@example.org"] = "550 5.1.1 no such user"
    start_worker("w1")
    start_worker("w2")
    monkeypatch.chdir(room.folder)
    for key, value in room.env.items():
        if key.startswith("SYNDICATE_"):
            monkeypatch.setenv(key, value)
    edition = load_edition(postgres_store, room.edition)
    assert edition is not None
    started: list[int] = []
    steps: list[int] = []
    outcome = request_send(
        postgres_store,
        load_settings(None),
        edition,
        on_start=started.append,
        on_progress=steps.append,
    )
    assert started == [COUNT]
    assert sum(steps) == COUNT  # everyone handled, whichever worker did it
    assert outcome.report is not None
    assert (outcome.report.sent, outcome.report.failed) == (COUNT - 1, 1)
    assert outcome.failed == ()
    again = room.send()
    assert again.returncode == 0, again.stderr
    assert f"{room.edition}: 0 batches queued" in again.stderr
    assert f"0 sent, 0 failed, 1 suppressed, {COUNT - 1} skipped" in again.stdout
    assert len(server.received) == COUNT - 1


def held_at(server: Recorder, count: int) -> None:
    """From message `count` on, the server holds each message until the test lets it go."""
    server.gate, server.hold_from = threading.Event(), count


def last_job_started(worker: Worker) -> int:
    """The id of the send batch job the worker started last."""
    fragment = f"job started name={SEND_BATCH} id="
    started = [line for line in worker.lines() if fragment in line]
    return int(started[-1].split(fragment)[1].split()[0])


@postgres
def test_a_batch_of_a_killed_worker_is_finished_by_another(
    room: Newsroom, smtp: tuple[Recorder, int], start_worker: StartWorker, postgres_store: Engine
) -> None:
    """SIGKILL mid-batch: a new worker takes the batch over; nobody skipped, few repeats."""
    server, _ = smtp
    held_at(server, 60)
    doomed, other = start_worker("w1"), start_worker("w2")
    assert room.cli("digest", "send", room.edition, "--no-wait").returncode == 0
    doomed.wait_for_line(f"job started name={SEND_BATCH}")
    other.wait_for_line(f"job started name={SEND_BATCH}")
    wait_for(lambda: len(server.received) == 60, PATIENCE, "60 messages to arrive")
    job = last_job_started(doomed)
    doomed.process.kill()
    doomed.process.wait()
    # The one thing not real: the half minute without a heartbeat that marks a dead worker.
    with postgres_store.begin() as connection:
        connection.execute(
            text(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
                " WHERE id = (SELECT worker_id FROM procrastinate_jobs WHERE id = :job)"
            ),
            {"job": job},
        )
    # A new worker asks for a look for stalled jobs as it starts, and runs it before any batch
    # (the batches come after the queue's other jobs): the other worker is still held.
    heir = start_worker("w3")
    heir.wait_for_line(f"job stalled name={SEND_BATCH} id={job} retried")
    assert server.gate is not None
    server.gate.set()
    finished = room.send()  # watches the batches under way to their end
    assert finished.returncode == 0, finished.stderr
    counts = Counter(server.addresses())
    assert set(counts) == set(addresses(COUNT))  # nobody skipped
    repeats = sum(count - 1 for count in counts.values())
    assert repeats <= POOL, f"{repeats} repeats, more than one per connection of the killed worker"
    assert [status for _, status, _ in batch_jobs(postgres_store)] == ["succeeded"] * 6


@postgres
def test_sigterm_records_the_messages_in_flight_and_hands_the_rest_back(
    room: Newsroom, smtp: tuple[Recorder, int], start_worker: StartWorker, postgres_store: Engine
) -> None:
    """A worker told to stop mid-batch records what it sent, queues the rest, and exits 0."""
    server, _ = smtp
    held_at(server, 20)
    stopping = start_worker("w1")
    assert room.cli("digest", "send", room.edition, "--no-wait").returncode == 0
    job = int(stopping.wait_for_line(f"job started name={SEND_BATCH}").split("id=")[1].split()[0])
    wait_for(lambda: len(server.received) == 20, PATIENCE, "20 messages to arrive")
    stopping.process.terminate()
    stopping.wait_for_line("worker stopping name=w1 signal=SIGTERM")
    assert server.gate is not None
    server.gate.set()  # the messages in flight go through now
    assert stopping.process.wait(timeout=PATIENCE) == 0
    log = stopping.log.read_text()
    assert "stopped=True" in log
    assert "send batch handed back" in log
    # Everything the server took from the stopped worker is in the ledger: nothing in flight lost.
    assert delivered_count(postgres_store, room.edition) == len(server.received) < BATCH
    [(first_job, status, batch), *_] = batch_jobs(postgres_store)
    assert (first_job, status) == (job, "succeeded")
    handed_back = [row for row in batch_jobs(postgres_store) if row[2] == batch and row[0] != job]
    assert [status for _, status, _ in handed_back] == ["todo"]
    heir = start_worker("w2")
    finished = room.send()
    assert finished.returncode == 0, finished.stderr
    assert everyone_once(server)  # the in-flight messages were recorded: no repeats at all
    heir.wait_for_line(f"send batch done edition={room.edition} batch={batch} ")


@postgres
def test_failed_batches_are_named_and_the_send_exits_non_zero(
    room: Newsroom, smtp: tuple[Recorder, int], start_worker: StartWorker
) -> None:
    """Over the hard-bounce limit every batch pauses: `digest send` names them, says why, exits 1."""
    server, _ = smtp
    for address in addresses(COUNT)[:10]:
        server.refuse[address] = "550 5.1.1 no such user"
    room.env["SYNDICATE_BOUNCES__PAUSE_SAMPLE"] = "20"
    room.env["SYNDICATE_BOUNCES__PAUSE_RATE"] = "0.1"
    start_worker("w1")
    sent = room.send()
    assert sent.returncode == 1
    assert "6 batches failed (subscriber ids " in sent.stderr
    assert "the workers' logs say why" in sent.stderr
    assert "the send paused itself: hard-bounce rate" in sent.stderr
    assert len(server.received) < COUNT
