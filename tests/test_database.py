"""SQLite under load: every writer takes the write lock up front and waits for it within a bound."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, text
from sqlalchemy.exc import OperationalError

from syndicate.delivery.ledger import send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.send.plan import plan_send
from syndicate.service.jobstate import JobRun, record_run
from syndicate.settings import Settings
from syndicate.store import leases, open_database
from syndicate.store.database import is_busy, reading, with_lock_timeout
from syndicate.store.schema import subscriber, topic
from syndicate.subscribers import registry, throttle
from syndicate.subscribers.registry import Choices, Preferences
from syndicate.subscribers.tokens import secret_key
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.fixture_corpus import ingest_text
from tests.support.sqlite_lock import LockHolder
from tests.support.subscribers import confirmed

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
CHOICES = Choices(("en", "ar", "fa"), ("daily", "weekly"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    """A migrated SQLite store and its file, for another connection to lock."""
    path = tmp_path / "store.db"
    engine = open_database(f"sqlite:///{path}")
    yield engine, path
    engine.dispose()


def test_a_writer_holds_the_lock_from_its_first_read(store: tuple[Engine, Path]) -> None:
    """A transaction that reads, then writes, excludes other writers from its start, and commits.

    Begun as a reader, it would let another process commit between its read and its write,
    and then fail at once with "database is locked" instead of waiting its turn.
    """
    engine, path = store
    other = LockHolder(path)
    with engine.begin() as connection:
        connection.execute(select(func.count()).select_from(topic)).scalar_one()
        assert not other.try_to_write(), "another writer got in between the read and the write"
        connection.execute(insert(topic).values(slug="nato"))
    assert other.try_to_write()
    with engine.connect() as connection:
        assert connection.execute(select(topic.c.slug)).scalars().all() == ["nato"]


def test_a_writer_waits_for_the_lock_then_gives_up_as_busy(store: tuple[Engine, Path]) -> None:
    """While another connection writes, a writer fails after its bound with a busy error."""
    engine, path = store
    other = LockHolder(path)
    other.hold()
    try:
        with (
            pytest.raises(OperationalError) as raised,
            with_lock_timeout(engine, 0.2).begin() as connection,
        ):
            connection.execute(insert(topic).values(slug="kurds"))
        assert is_busy(raised.value)
    finally:
        other.release()
    with engine.begin() as connection:  # free again: the write goes through
        connection.execute(insert(topic).values(slug="kurds"))


def test_readers_never_wait_and_cannot_write(store: tuple[Engine, Path]) -> None:
    """A reader answers while another connection holds the write lock; a write through it fails."""
    engine, path = store
    other = LockHolder(path)
    other.hold()
    try:
        with reading(with_lock_timeout(engine, 0)).connect() as connection:
            assert connection.execute(select(func.count()).select_from(topic)).scalar_one() == 0
    finally:
        other.release()
    with reading(engine).begin() as connection, pytest.raises(OperationalError, match="readonly"):
        connection.execute(insert(topic).values(slug="nato"))
    with engine.begin() as connection:  # the pooled connection is a writer again
        connection.execute(insert(topic).values(slug="nato"))


def test_busy_errors_are_told_apart_from_other_failures(store: tuple[Engine, Path]) -> None:
    """Only "the lock stayed taken" counts as busy; a broken statement is not."""
    engine, _ = store
    with pytest.raises(OperationalError) as broken, engine.begin() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))
    assert not is_busy(broken.value)
    assert not is_busy(ValueError("database is locked"))


class Transactions:
    """Every statement each SQLite connection of this process runs, read from SQLite's trace."""

    def __init__(self) -> None:
        """Trace nothing yet."""
        self.statements: dict[int, list[str]] = {}

    def connected(self, dbapi_connection: Any, _record: Any) -> None:
        """Trace a new connection (the `connect` pool event)."""
        if isinstance(dbapi_connection, sqlite3.Connection):
            log = self.statements.setdefault(id(dbapi_connection), [])
            dbapi_connection.set_trace_callback(lambda statement: log.append(statement.strip()))

    def writes_not_begun_immediate(self) -> list[list[str]]:
        """Transactions that wrote without having taken the write lock when they began."""
        wrong = []
        for log in self.statements.values():
            current: list[str] = []
            for statement in log:
                word = statement.split(None, 1)[0].upper() if statement else ""
                if word == "BEGIN":
                    current = [statement]
                elif word in ("COMMIT", "END") or statement.upper() == "ROLLBACK":
                    current = []
                else:
                    current.append(statement)
                    if word in WRITES and current[0].upper() != "BEGIN IMMEDIATE":
                        wrong.append(current)
                        current = ["(reported)"]
        return wrong


def test_every_write_transaction_takes_the_write_lock_when_it_begins(
    tmp_path: Path, corpus_text: str, feed_config: FeedConfig
) -> None:
    """Ingest, feed builds, editions, sends, subscribers, rate limits, keys, job state, leases.

    Each transaction that writes begins with BEGIN IMMEDIATE (none in autocommit, none that
    began as a reader), read from SQLite's own trace of what ran.
    """
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    engine.dispose()  # connections made from here on are traced
    traced = Transactions()
    event.listen(engine, "connect", traced.connected)
    try:
        ingest_text(engine, corpus_text)
        build_feeds(engine, feed_config, full=True)
        build_feeds(engine, feed_config)
        ingest(engine, *digest_corpus())
        edition = build(engine)
        people = []
        for n in range(4):
            people.append(confirmed(engine, f"r{n}@example.org"))
        registry.update_preferences(
            engine, people[0].pk, Preferences("en", ("daily", "weekly")), CHOICES
        )
        registry.unsubscribe(engine, people[1].pk, detail="web page")
        registry.suppress(engine, "r2@example.org", "complained")
        registry.forget_unconfirmed(engine, datetime.now(UTC) + timedelta(days=1))
        assert throttle.allow(engine, "subscribe:127.0.0.1", 5)
        assert secret_key(engine, "")
        record_run(engine, _run())
        leases.acquire(engine, "scheduler", "worker-a", timedelta(minutes=1))
        assert leases.renew(engine, "scheduler", "worker-a", timedelta(minutes=1))
        leases.release(engine, "scheduler", "worker-a")
        transport = RecordingTransport()
        plan = plan_send(engine, Settings(), edition, transport, None)
        report = send_edition(engine, plan, holder=leases.holder_name())
        assert report.sent == len(transport.sent) == 2
        with engine.connect() as connection:  # the workload did write
            assert connection.scalar(select(func.count()).select_from(subscriber)) == 4
    finally:
        event.remove(engine, "connect", traced.connected)
        engine.dispose()
    assert sum(map(len, traced.statements.values())) > 100, "the trace saw the workload"
    assert traced.writes_not_begun_immediate() == []


def _run() -> JobRun:
    now = datetime.now(UTC)
    return JobRun("tidy", now, now, now, "ok", "0 unconfirmed subscriptions forgotten")
