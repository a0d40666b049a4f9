"""[mail.smtp] rate_per_second and max_connections held across processes sharing PostgreSQL.

Real sending processes (tests/support/smtp_senders), a real PostgreSQL and a real aiosmtpd
sink; on SQLite each process keeps the limits alone, as before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.smtp import SmtpTransport
from syndicate.settings import MailSettings
from syndicate.store import open_database
from syndicate.store.shared_limits import book_span
from tests.support.databases import POSTGRES_URL, postgres_database
from tests.support.smtp_senders import CONTEXT, SENDER, Sender, start_sender
from tests.support.smtp_server import Serve
from tests.support.waiting import PATIENCE, wait_for

RATE = 120.0  # messages a second, for the whole cluster
SECONDS = 5.0  # how long the send takes at that rate


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated, empty PostgreSQL store's URL."""
    if not POSTGRES_URL:
        pytest.skip("SYNDICATE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    for url in postgres_database():
        open_database(url).dispose()
        yield url


@pytest.fixture
def senders() -> Iterator[list[Sender]]:
    """The sending processes a test starts; any still running at its end are killed."""
    started: list[Sender] = []
    yield started
    for sender in started:
        if sender.process.is_alive():
            sender.process.kill()
        sender.process.join()


def run_senders(
    senders: list[Sender], url: str, settings: Any, parts: list[list[str]], folder: Path
) -> list[dict[str, int]]:
    """Start a process for each part of the recipients, let them go at once, and their reports."""
    results = CONTEXT.Queue()
    for number, part in enumerate(parts):
        log = folder / f"sender-{number}.log"
        senders.append(start_sender(url, settings, part, log, results))
    for sender in senders:
        assert sender.ready.wait(PATIENCE), "a sending process did not start"
    for sender in senders:
        sender.go.set()
    reports = [results.get(timeout=PATIENCE * 2) for _ in parts]
    for sender in senders:
        sender.process.join(PATIENCE)
        assert sender.process.exitcode == 0
    return reports


@pytest.mark.postgres
def test_three_processes_share_one_rate(
    serve: Serve, postgres_url: str, senders: list[Sender], tmp_path: Path
) -> None:
    """Three processes at rate_per_second = 120 deliver at most 5 % over 120 a second together.

    Each books blocks of start times from one schedule in PostgreSQL, so the three together
    are spaced as one. The rate is the sink's: the slope of the message count over the sink's
    own receive times, fitted over the whole five-second send, so that a stall of the sink or
    of a sender at either end moves it little. The limit may only err low (a start time a
    stalled process left unused is dropped, and a booking's answer arrives late, never early):
    so the upper bound is asserted strictly, and the lower only as "not starved", which a
    loaded two-core machine could otherwise break without any fault of the limiter's.
    """
    sink, settings = serve()
    settings = settings.model_copy(update={"rate_per_second": RATE, "pool_size": 2})
    total = int(RATE * SECONDS)
    everyone = [f"r{n}@example.org" for n in range(total)]
    parts = [everyone[part::3] for part in range(3)]
    reports = run_senders(senders, postgres_url, settings, parts, tmp_path)
    assert sorted(sink.addresses()) == sorted(everyone)
    assert sum(report["sent"] for report in reports) == total
    rate = sink.rate()
    assert rate <= RATE * 1.05, f"{rate:.1f} messages a second, over {RATE:.0f}"
    assert rate >= RATE * 0.5, f"{rate:.1f} messages a second: starved"


@pytest.mark.postgres
def test_three_processes_never_open_more_connections_than_the_cap(
    serve: Serve, postgres_url: str, senders: list[Sender], tmp_path: Path
) -> None:
    """With max_connections = 2, three processes of two connections each open two at most.

    The sink takes a while over each message, so that every process wants both its
    connections; the processes that hold no slot wait for one, and every message arrives.
    """
    sink, settings = serve()
    sink.delay = 0.01
    settings = settings.model_copy(update={"max_connections": 2, "pool_size": 2})
    everyone = [f"r{n}@example.org" for n in range(90)]
    parts = [everyone[part::3] for part in range(3)]
    reports = run_senders(senders, postgres_url, settings, parts, tmp_path)
    assert sorted(sink.addresses()) == sorted(everyone)
    assert sink.most_connections <= 2
    assert all(report["connections"] >= 1 for report in reports)
    waited = [sender for sender in senders if waiting_lines(sender)]
    assert waited, "no process had to wait for a connection"
    assert all(len(waiting_lines(sender)) == 1 for sender in waited)


def waiting_lines(sender: Sender) -> list[str]:
    """The lines in which `sender` said it waits for a connection."""
    return [line for line in sender.lines() if line.startswith("smtp_connections_wait")]


@pytest.mark.postgres
def test_a_killed_process_frees_its_connections(
    serve: Serve, postgres_url: str, senders: list[Sender], tmp_path: Path
) -> None:
    """A process killed with SIGKILL while it holds the only slot leaves it to one that waits."""
    sink, settings = serve()
    sink.gate = gate = threading.Event()  # holds the first message's DATA until the test sets it
    settings = settings.model_copy(update={"max_connections": 1, "pool_size": 2})
    results = CONTEXT.Queue()
    holder = start_sender(postgres_url, settings, ["held@example.org"], tmp_path / "a.log", results)
    senders.append(holder)
    holder.ready.wait(PATIENCE)
    holder.go.set()
    wait_for(lambda: sink.arrived.endswith(b"\r\n.\r\n"), PATIENCE, "the held message's dot")
    later = [f"later{n}@example.org" for n in range(5)]
    waiter = start_sender(postgres_url, settings, later, tmp_path / "b.log", results)
    senders.append(waiter)
    waiter.ready.wait(PATIENCE)
    waiter.go.set()
    wait_for(lambda: waiting_lines(waiter), PATIENCE, "the second process to wait for a slot")
    assert "max_connections=1" in waiting_lines(waiter)[0]
    assert holder.process.pid is not None
    os.kill(holder.process.pid, signal.SIGKILL)
    holder.process.join(PATIENCE)
    gate.set()
    assert results.get(timeout=PATIENCE) == {"sent": 5, "connections": 1}
    assert set(later) <= set(sink.addresses())


@pytest.mark.postgres
def test_bookings_follow_one_another_on_the_database_clock(postgres_url: str) -> None:
    """Booked back to back, spans of one schedule start where the one before ended."""
    engine = create_engine(postgres_url)
    try:
        first = book_span(engine, "smtp:relay:25", 10.0)
        second = book_span(engine, "smtp:relay:25", 10.0)
        other = book_span(engine, "smtp:other:25", 10.0)
    finally:
        engine.dispose()
    assert first.start >= first.now - 1e-6
    assert second.start == pytest.approx(first.start + 10.0)
    assert other.start == pytest.approx(other.now, abs=1e-6)


def test_on_sqlite_max_connections_caps_one_process_pool(
    serve: Serve, sqlite_engine: Engine
) -> None:
    """On SQLite a transport of pool_size 4 and max_connections 2 opens two connections at most."""
    sink, settings = serve()
    sink.delay = 0.02
    settings = settings.model_copy(update={"pool_size": 4, "max_connections": 2})
    transport = transport_from_settings(
        MailSettings(transport="smtp", smtp=settings), sqlite_engine
    )
    assert isinstance(transport, SmtpTransport)

    async def send_all() -> None:
        message = b"Subject: test\r\n\r\nHello\r\n"
        sends = (transport.send(SENDER, f"r{n}@example.org", message) for n in range(12))
        try:
            await asyncio.gather(*sends)
        finally:
            await transport.close()

    asyncio.run(send_all())
    assert len(sink.received) == 12
    assert sink.most_connections == 2
    assert transport.stats.connections == 2


@pytest.mark.postgres
def test_slots_are_session_locks_gone_with_the_transport(serve: Serve, postgres_url: str) -> None:
    """Once a transport closes, no advisory lock of its stays behind in PostgreSQL."""
    sink, settings = serve()
    settings = settings.model_copy(update={"max_connections": 3, "pool_size": 2})
    engine = create_engine(postgres_url)
    locks = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    try:
        transport = transport_from_settings(MailSettings(transport="smtp", smtp=settings), engine)

        async def send_and_look() -> int:
            await transport.send(SENDER, "r@example.org", b"Subject: t\r\n\r\nHello\r\n")
            with engine.connect() as connection:
                held = connection.execute(locks).scalar_one()
            await transport.close()
            return int(held)

        assert asyncio.run(send_and_look()) == 1
        with engine.connect() as connection:
            assert connection.execute(locks).scalar_one() == 0
    finally:
        engine.dispose()
    assert len(sink.received) == 1
