"""The schedule: send-time settings, digest times across daylight saving, catch-up, the lease."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine

from syndicate.domain.periods import parse_send_time
from syndicate.service.digests import edition_day
from syndicate.service.jobstate import JobRun, first_run, last_runs, record_run
from syndicate.service.scheduler import LEASE_TTL, Scheduler, digest_triggers, missed_digests
from syndicate.service.send_times import digest_trigger, previous_fire
from syndicate.settings import (
    DigestSettings,
    ScheduleSettings,
    Settings,
    SettingsError,
    load_settings,
)
from syndicate.subscribers import registry
from syndicate.subscribers.registry import Choices, Preferences

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("kind", "text", "fields"),
    [
        ("daily", "07:00", {"hour": 7, "minute": 0, "second": 0}),
        ("daily", "7:05:30", {"hour": 7, "minute": 5, "second": 30}),
        ("weekly", "Sun 18:15", {"hour": 18, "minute": 15, "second": 0, "day_of_week": "sun"}),
        ("monthly", "last 06:00", {"hour": 6, "minute": 0, "second": 0, "day": "last"}),
        ("monthly", "28 23:59", {"hour": 23, "minute": 59, "second": 0, "day": "28"}),
    ],
)
def test_send_times_are_read_as_cron_fields(
    kind: str, text: str, fields: dict[str, object]
) -> None:
    """Each digest's time setting becomes the cron fields the scheduler uses."""
    assert parse_send_time(kind, text).cron_fields() == fields


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("daily_at", "25:00"),
        ("daily_at", "7am"),
        ("weekly_at", "07:00"),
        ("monthly_at", "31 07:00"),
    ],
)
def test_a_bad_send_time_names_the_setting(
    key: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send time that cannot be read stops start-up with one line naming the key."""
    monkeypatch.setenv(f"SYNDICATE_SCHEDULE__{key.upper()}", value)
    monkeypatch.chdir("/")
    with pytest.raises(SettingsError, match=rf"setting schedule\.{key}: '{value}' is not a"):
        load_settings()


def test_the_daily_digest_keeps_its_local_hour_across_daylight_saving() -> None:
    """07:00 in London is 07:00 UTC in winter and 06:00 UTC in summer, each day exactly once."""
    trigger = digest_trigger("daily", parse_send_time("daily", "07:00"), LONDON)
    moment = datetime(2026, 3, 27, 12, tzinfo=UTC)
    fires = []
    for _ in range(4):
        moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
        fires.append(moment.astimezone(UTC))
    assert [f.strftime("%m-%d %H:%M") for f in fires] == [
        "03-28 07:00", "03-29 06:00", "03-30 06:00", "03-31 06:00",
    ]  # fmt: skip
    autumn = datetime(2026, 10, 24, 12, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, autumn)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert [f.astimezone(UTC).strftime("%m-%d %H:%M") for f in (first, second)] == [
        "10-25 07:00", "10-26 07:00",
    ]  # fmt: skip
    assert {f.astimezone(LONDON).hour for f in (*fires, first, second)} == {7}


def test_the_latest_due_time_of_each_kind() -> None:
    """The previous fire time looks back over one period: weekly on Mondays, monthly on the last."""
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)  # a Wednesday
    weekly = digest_trigger("weekly", parse_send_time("weekly", "mon 07:00"), LONDON)
    monthly = digest_trigger("monthly", parse_send_time("monthly", "last 07:00"), LONDON)
    daily = digest_trigger("daily", parse_send_time("daily", "11:00"), LONDON)
    assert previous_fire("weekly", weekly, now) == datetime(2026, 11, 23, 7, tzinfo=LONDON)
    assert previous_fire("monthly", monthly, now) == datetime(2026, 10, 31, 7, tzinfo=LONDON)
    assert previous_fire("daily", daily, now) == datetime(2026, 11, 24, 11, tzinfo=LONDON)


def _run(job: str, due: datetime, result: str = "ok") -> JobRun:
    return JobRun(job, due, due, due + timedelta(seconds=3), result, "")


def test_missed_digests_are_the_latest_unfinished_ones() -> None:
    """Catch-up picks each kind's latest time after the first run without a finished run."""
    settings = Settings(
        schedule=ScheduleSettings(daily_at="07:00", weekly_at="mon 07:00", monthly_at="1 07:00")
    )
    triggers = digest_triggers(settings)
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    daily = datetime(2026, 11, 25, 7, tzinfo=UTC)
    weekly = datetime(2026, 11, 23, 7, tzinfo=UTC)
    monthly = datetime(2026, 11, 1, 7, tzinfo=UTC)
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    assert missed_digests(triggers, {}, now, first_run=now) == []
    assert missed_digests(triggers, {}, now, first_run=long_ago) == [
        ("daily", daily), ("weekly", weekly), ("monthly", monthly),
    ]  # fmt: skip
    runs = {
        "poll": _run("poll", now),
        "digest-daily": _run("digest-daily", daily - timedelta(days=1)),  # yesterday's
        "digest-weekly": _run("digest-weekly", weekly, result="stopped"),  # SIGTERM mid-send
        "digest-monthly": _run("digest-monthly", monthly),
    }
    assert missed_digests(triggers, runs, now, long_ago) == [("daily", daily), ("weekly", weekly)]
    # Started after this morning's daily and after the stopped weekly: the weekly run began,
    # so it goes on; the daily time came before the service did.
    started = datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert missed_digests(triggers, runs, now, started) == [("weekly", weekly)]


def test_a_stopped_run_for_an_older_time_is_superseded_by_a_newer_one() -> None:
    """Only the latest time of a kind is owed: a stopped run of an older one is not resumed."""
    triggers = digest_triggers(Settings(digests=DigestSettings(kinds=("daily",))))
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    stopped = _run("digest-daily", datetime(2026, 11, 24, 7, tzinfo=UTC), result="stopped")
    since = datetime(2026, 11, 1, tzinfo=UTC)
    today = datetime(2026, 11, 25, 7, tzinfo=UTC)
    assert missed_digests(triggers, {"digest-daily": stopped}, now, since) == [("daily", today)]


def test_a_restart_never_mails_the_past(engine: Engine) -> None:
    """A first start remembers itself; a restart days later catches up only what came since."""
    first_start = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # a Wednesday, after 07:00
    scheduler = Scheduler(engine, Settings())  # daily 07:00, weekly mon 07:00, monthly 1 07:00
    assert scheduler.catch_up(first_start) == []
    record_run(engine, _run("poll", first_start))
    # SIGTERM, and a start ten minutes later: every due time lies before the first start.
    assert scheduler.catch_up(first_start + timedelta(minutes=10)) == []
    # Down from Thursday to the next Tuesday: the latest daily and the Monday weekly, once.
    tuesday = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert scheduler.catch_up(tuesday) == [
        ("daily", datetime(2026, 12, 1, 7, tzinfo=UTC)),
        ("weekly", datetime(2026, 11, 30, 7, tzinfo=UTC)),
        ("monthly", datetime(2026, 12, 1, 7, tzinfo=UTC)),
    ]
    assert first_run(engine, tuesday) == first_start


def test_the_first_run_of_a_database_with_history_is_its_earliest_job(engine: Engine) -> None:
    """A store from before the first run was kept takes its earliest recorded job start."""
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    record_run(engine, _run("poll", now - timedelta(minutes=1)))
    record_run(engine, _run("digest-monthly", datetime(2026, 11, 1, 7, tzinfo=UTC)))
    assert first_run(engine, now) == datetime(2026, 11, 1, 7, tzinfo=UTC)
    assert first_run(engine, now + timedelta(days=3)) == datetime(2026, 11, 1, 7, tzinfo=UTC)
    # The monthly of November 1 ran; the daily of this morning came after: it is owed.
    triggers = digest_triggers(Settings(digests=DigestSettings(kinds=("daily", "monthly"))))
    since = first_run(engine, now)
    assert missed_digests(triggers, last_runs(engine), now, since) == [
        ("daily", datetime(2026, 11, 25, 7, tzinfo=UTC))
    ]


def test_job_runs_are_kept_in_the_database(engine: Engine) -> None:
    """A job's last run is stored and read back whole, the newest replacing the older."""
    due = datetime(2026, 11, 25, 7, tzinfo=UTC)
    record_run(engine, _run("digest-daily", due - timedelta(days=1)))
    record_run(engine, JobRun("digest-daily", due, due, due, "failed", "daily-en-…: 2 failed"))
    [(name, run)] = last_runs(engine).items()
    assert name == "digest-daily"
    assert run == JobRun("digest-daily", due, due, due, "failed", "daily-en-…: 2 failed")
    assert not run.ok


def test_only_one_scheduler_leads_per_database(engine: Engine) -> None:
    """Of two schedulers on one database, one leads; the other leads once the first stops."""
    first, second = Scheduler(engine, Settings()), Scheduler(engine, Settings())
    first.keep_lease()
    second.keep_lease()
    assert (first.leading, second.leading) == (True, False)
    first.shutdown()
    second.keep_lease()
    assert second.leading
    second.shutdown()


def test_tidy_forgets_expired_unconfirmed_subscriptions_only(engine: Engine) -> None:
    """The tidy job deletes pending subscriptions past their link's life; nothing else."""
    long_ago = datetime.now(UTC) - timedelta(days=10)
    daily = Preferences("en", ("daily",))
    choices = Choices(("en",), ("daily",))
    stale = registry.subscribe(engine, "stale@example.org", daily, choices, now=long_ago)
    fresh = registry.subscribe(engine, "fresh@example.org", daily, choices)
    kept = registry.subscribe(engine, "kept@example.org", daily, choices, now=long_ago)
    back = registry.subscribe(engine, "back@example.org", daily, choices, now=long_ago)
    assert stale is not None
    assert fresh is not None
    assert kept is not None
    assert back is not None
    registry.confirm(engine, kept.pk, now=long_ago)
    registry.confirm(engine, back.pk, now=long_ago)
    registry.unsubscribe(engine, back.pk)
    registry.subscribe(engine, "back@example.org", daily, choices, now=long_ago)  # asks again
    scheduler = Scheduler(engine, Settings())
    scheduler.keep_lease()
    scheduler.tidy()
    scheduler.shutdown()
    left = {subscriber.email for subscriber, _ in registry.all_subscribers(engine)}
    assert left == {"fresh@example.org", "kept@example.org", "back@example.org"}
    assert last_runs(engine)["tidy"].detail == "1 unconfirmed subscriptions forgotten"


def test_a_leader_that_cannot_reach_the_database_stands_down(sqlite_engine: Engine) -> None:
    """When renewals fail past half the lease, the scheduler stops acting rather than risk two."""
    scheduler = Scheduler(sqlite_engine, Settings())
    scheduler.keep_lease()
    assert scheduler.leading
    scheduler.engine = create_engine("sqlite:////nonexistent/folder/store.db")
    scheduler.keep_lease()  # a failed renewal soon after the last one: still leading
    assert scheduler.leading
    scheduler._renewed -= LEASE_TTL.total_seconds()
    scheduler.keep_lease()
    assert not scheduler.leading


@pytest.mark.parametrize(
    ("zone", "daily_at", "now", "due", "day"),
    [
        # Tehran (+03:30, no daylight saving since 2022): 02:00 is 22:30 UTC the day before.
        ("Asia/Tehran", "02:00", "2026-11-25T12:00", "2026-11-24T22:30", "2026-11-25"),
        ("Asia/Tehran", "02:00", "2026-11-24T22:29", "2026-11-23T22:30", "2026-11-24"),
        # New York springs forward on 2026-03-08: 21:00 is 02:00 UTC, then 01:00 UTC.
        ("America/New_York", "21:00", "2026-03-08T03:00", "2026-03-08T02:00", "2026-03-07"),
        ("America/New_York", "21:00", "2026-03-09T01:30", "2026-03-09T01:00", "2026-03-08"),
        ("America/New_York", "21:00", "2026-03-09T00:59", "2026-03-08T02:00", "2026-03-07"),
    ],
)
def test_the_digest_job_is_due_at_the_local_time_for_the_local_day(
    zone: str, daily_at: str, now: str, due: str, day: str
) -> None:
    """The scheduler's daily rule gives the due moment, and its editions the zone's date."""
    settings = Settings(schedule=ScheduleSettings(timezone=zone, daily_at=daily_at))
    trigger = Scheduler(create_engine("sqlite://"), settings).triggers["daily"]
    moment = previous_fire("daily", trigger, datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert moment is not None
    assert moment.astimezone(UTC) == datetime.fromisoformat(due).replace(tzinfo=UTC)
    assert edition_day(moment, settings.schedule.zone).isoformat() == day
    assert moment.astimezone(ZoneInfo(zone)).strftime("%H:%M") == daily_at
    # The rule fires next a local day later, however long that day is in UTC.
    following = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    assert edition_day(following, settings.schedule.zone) == date.fromisoformat(day) + timedelta(1)
