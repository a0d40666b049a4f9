"""`syndicate digest run`: an operator asks the running service for a digest now.

The command and the schedulers meet in a real store (SQLite, and PostgreSQL when configured);
the schedulers are not started, so nothing fires on its own: the test decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.service.requests import DigestRequest, pending_requests, request_digest
from syndicate.service.scheduler import Scheduler, digest_triggers
from syndicate.service.send_times import previous_fire
from syndicate.settings import ScheduleSettings, Settings
from tests.support.cli import Ran, syndicate

Cli = Callable[..., Ran]
TEHRAN = ScheduleSettings(timezone="Asia/Tehran", daily_at="02:00")


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    """`syndicate …` in this process, on the test's database, times in Tehran."""
    config = tmp_path / "settings.toml"
    config.touch()
    environment = {
        "SYNDICATE_DATABASE__URL": database_url,
        "SYNDICATE_SCHEDULE__TIMEZONE": TEHRAN.timezone,
        "SYNDICATE_SCHEDULE__DAILY_AT": TEHRAN.daily_at,
        "SYNDICATE_DIGESTS__KINDS": '["daily", "weekly"]',
    }

    def run(*args: str) -> Ran:
        return syndicate("--config", str(config), *args, cwd=tmp_path, env=environment)

    return run


@pytest.fixture
def leader(engine: Engine) -> Iterator[Scheduler]:
    """A scheduler holding the lease on the test's database (not started: no job fires)."""
    scheduler = Scheduler(engine, Settings(schedule=TEHRAN))
    scheduler.keep_lease()
    assert scheduler.leading
    yield scheduler
    scheduler.shutdown()


def test_with_no_service_running_nothing_is_queued(engine: Engine, cli: Cli) -> None:
    """Asked while no process holds the scheduler lease, the command says so and exits 1."""
    result = cli("digest", "run", "daily")
    assert result.returncode == 1
    assert "nothing queued: no service is running" in result.stderr
    assert result.stdout == ""
    assert pending_requests(engine) == []


def test_the_leader_runs_a_request_for_the_local_day_once(
    engine: Engine, cli: Cli, leader: Scheduler
) -> None:
    """A --due without an offset is Tehran time; only the lease holder takes it, once."""
    standby = Scheduler(engine, Settings(schedule=TEHRAN))
    standby.keep_lease()
    assert not standby.leading
    result = cli("digest", "run", "daily", "--due", "2026-11-24T02:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "queued: digest-daily due 2026-11-24T02:00:00+03:30 (Asia/Tehran), "
        f"edition date 2026-11-24; {leader.holder} runs it within 30 s"
    )
    assert "requested due 2026-11-24 02:00:00 +0330" in cli("status").stdout
    due = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    assert standby.take_requests() == []
    [taken] = leader.take_requests()
    assert (taken.kind, taken.due) == ("daily", due)
    assert leader.take_requests() == []
    assert pending_requests(engine) == []
    queued = leader._jobs.get_job("requested-daily")
    assert queued is not None
    assert tuple(queued.args) == ("daily", due)
    standby.shutdown()


def test_without_due_it_is_the_latest_time_the_digest_was_due(
    engine: Engine, cli: Cli, leader: Scheduler
) -> None:
    """`digest run weekly` asks for the weekly digest of its latest send time."""
    trigger = digest_triggers(Settings(schedule=TEHRAN))["weekly"]
    before = previous_fire("weekly", trigger, datetime.now(UTC))
    result = cli("digest", "run", "weekly")
    after = previous_fire("weekly", trigger, datetime.now(UTC))
    assert result.returncode == 0, result.stderr
    [request] = pending_requests(engine)
    assert request.kind == "weekly"
    assert request.due in (before, after)
    assert request.due is not None
    assert request.due.astimezone(TEHRAN.zone).strftime("%a %H:%M") == "Mon 07:00"


def test_asking_again_before_it_is_taken_keeps_the_newest(engine: Engine) -> None:
    """Two asks before the scheduler looks make one run, for the time asked last."""
    asked = datetime(2026, 11, 25, 9, tzinfo=UTC)
    request_digest(engine, DigestRequest("daily", asked - timedelta(days=1), asked))
    request_digest(engine, DigestRequest("daily", asked - timedelta(hours=2), asked))
    assert pending_requests(engine) == [DigestRequest("daily", asked - timedelta(hours=2), asked)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--due", "yesterday"], "Invalid value for '--due': 'yesterday' is not a moment like"),
        (["--due", "2999-01-01T07:00"], "Invalid value for '--due': 2999-01-01T07:00 has not come"),
    ],
)
def test_a_bad_due_moment_is_named(
    engine: Engine, cli: Cli, leader: Scheduler, args: list[str], message: str
) -> None:
    """A --due that cannot be read, or has not come yet, is refused naming the option."""
    result = cli("digest", "run", "daily", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert pending_requests(engine) == []


def test_a_digest_that_is_not_sent_cannot_be_asked_for(cli: Cli, leader: Scheduler) -> None:
    """Asking for a kind left out of [digests] kinds names the setting."""
    result = cli("digest", "run", "monthly")
    assert result.returncode == 2
    assert "the monthly digest is not sent: it is not in [digests] kinds (daily, weekly)" in (
        result.stderr
    )
