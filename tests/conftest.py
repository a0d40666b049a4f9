"""Shared fixtures: real databases (SQLite always, PostgreSQL when configured) and a corpus."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from syndicate.feeds.build import FeedConfig
from syndicate.ingest import IngestReport, ingest_lines
from syndicate.store import open_database
from tests.browser import browser  # noqa: F401  # headless Chromium, for the browser tests
from tests.servicerun import (  # `syndicate run` fixtures, and polling for a condition
    demo_corpus,  # noqa: F401
    services,  # noqa: F401
    wait_for,
)
from tests.smtpserver import serve  # noqa: F401  # the SMTP server fixture, for every test module

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden"
LANGUAGES = ("en", "ar", "fa")
# The moment the fixture corpus is built at: after every article but the scheduled one.
NOW = datetime(2025, 8, 22, 12, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("SYNDICATE_TEST_POSTGRES_URL")
LINGER = 10.0  # seconds a closed PostgreSQL connection's server process may take to end

# Property tests must not depend on the machine's speed: no per-example deadline, no health
# check that fails a slow (loaded) machine, and in CI the same examples on every run.
settings.register_profile(
    "syndicate",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=bool(os.environ.get("CI")),
    print_blob=True,
)
settings.load_profile("syndicate")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Sum up skipped tests in one line a reason, so that failures are not lost among them."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("skipped, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.line(f"{count:5d}  {reason}")


def _postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    assert POSTGRES_URL is not None
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"syndicate_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            _expect_no_connections(admin, name)
        finally:
            _drop_database(admin, name)
            admin.dispose()


def _expect_no_connections(admin: Engine, name: str) -> None:
    """Fail unless every connection to the test database has been closed by the test's end.

    One left open (an engine never disposed, a connection never returned to its pool) would
    be closed by the garbage collector whenever it next runs, warning at some later test; this
    names the test that left it. A closed connection's server process takes a moment to end.
    """
    count = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = :name AND backend_type = 'client backend'"
    )

    def closed() -> bool:
        with admin.connect() as connection:
            return connection.execute(count, {"name": name}).scalar_one() == 0

    wait_for(closed, LINGER, f"the connections to {name} to be closed (an engine not disposed?)")


def _drop_database(admin: Engine, name: str) -> None:
    """Drop a test database, whatever still holds a connection to it."""
    with admin.connect() as connection:
        try:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except ProgrammingError:
            # FORCE must be allowed to end every backend on the database, and PostgreSQL 15
            # refuses to end an autovacuum worker for a role without pg_signal_backend (after
            # a test that wrote a lot). A plain DROP cancels autovacuum by itself.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: SQLite, and PostgreSQL when SYNDICATE_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("SYNDICATE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    yield from _postgres_database()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty store."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated, empty SQLite store (for tests that need only one backend)."""
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


def ingest_text(engine: Engine, content: str) -> tuple[IngestReport, list[str]]:
    """Ingest JSON Lines text; return the report and the `line N: reason` messages."""
    messages: list[str] = []
    report = ingest_lines(
        engine,
        [line.encode() + b"\n" for line in content.splitlines()],
        LANGUAGES,
        on_reject=lambda number, reason: messages.append(f"line {number}: {reason}"),
    )
    return report, messages


@pytest.fixture
def corpus_text() -> str:
    """The fixture corpus: three languages, hostile HTML, nasty tags, a draft, a future article."""
    return (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8")


@pytest.fixture
def feed_config(tmp_path: Path) -> FeedConfig:
    """Feed settings writing to a temporary folder, five items a feed."""
    return FeedConfig(
        site_url="https://site.example/",
        site_titles={"en": "Demo News", "ar": "أخبار تجريبية", "fa": "اخبار آزمایشی"},
        languages=LANGUAGES,
        feeds_dir=str(tmp_path / "feeds"),
        feeds_url="https://feeds.example/feeds/",
        items=5,
    )
