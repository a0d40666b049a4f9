"""Real databases for tests: SQLite always, PostgreSQL when SYNDICATE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, ProgrammingError

from syndicate.store import open_database
from tests.support.waiting import wait_for

POSTGRES_URL = os.environ.get("SYNDICATE_TEST_POSTGRES_URL")
LINGER = 10.0  # seconds a closed PostgreSQL connection's server process may take to end


def check_postgres_url() -> None:
    """Stop the run at once, naming the value, when SYNDICATE_TEST_POSTGRES_URL is not a URL."""
    if not POSTGRES_URL:
        return
    try:
        make_url(POSTGRES_URL)
    except ArgumentError:
        # Otherwise every PostgreSQL test fails on its own with SQLAlchemy's parse error.
        raise pytest.UsageError(
            f"SYNDICATE_TEST_POSTGRES_URL is not a database URL: {POSTGRES_URL!r}"
        ) from None


def postgres_database() -> Iterator[str]:
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
    yield from postgres_database()


@pytest.fixture
def store_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (skipped without one to test on)."""
    if not POSTGRES_URL:
        pytest.skip("SYNDICATE_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    yield from postgres_database()


@pytest.fixture
def postgres_store(store_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty PostgreSQL store (skipped without one to test on)."""
    engine = open_database(store_url)
    yield engine
    engine.dispose()


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
