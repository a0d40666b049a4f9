"""The digest job stopped part-way: recorded as stopped, never as done, and caught up.

A real store (SQLite, and PostgreSQL when configured), real editions in three languages and
the Maildir outbox; the stop request is the test's own, set at the moment a SIGTERM would be.
On PostgreSQL the sends are batches that a real `syndicate worker` process sends.
"""

from __future__ import annotations

import logging
import mailbox
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from syndicate.service.digests import run_digest
from syndicate.service.jobstate import last_runs
from syndicate.service.scheduler import Scheduler
from syndicate.service.status import format_status, read_status
from syndicate.settings import DigestSettings, MailSettings, Settings
from syndicate.subscribers.registry import Choices, Preferences
from tests.support.articles import article_record, pick_record
from tests.support.cli import operator_env
from tests.support.fixture_corpus import LANGUAGES, ingest_text
from tests.support.queue_workers import StartWorker
from tests.support.subscribers import confirmed

# A daily send time (07:00 UTC) some days back, so its editions cover a whole past day.
DUE = (datetime.now(UTC) - timedelta(days=3)).replace(hour=7, minute=0, second=0, microsecond=0)
READERS = {"en": 3, "ar": 2, "fa": 2}


class StopWhen(threading.Event):
    """A stop request that arrives the first time `condition` holds (a SIGTERM, then)."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        """Not set until `condition` says so."""
        super().__init__()
        self.condition = condition

    def is_set(self) -> bool:
        """Whether the stop has come: it has once `condition` held."""
        if not super().is_set() and self.condition():
            self.set()
        return super().is_set()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Daily digests only, mailed into a Maildir outbox under the test's folder."""
    return Settings(
        mail=MailSettings(outbox_dir=tmp_path / "outbox"),
        digests=DigestSettings(kinds=("daily",)),
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The `settings` below as an operator's environment, for a worker's process."""
    return operator_env(
        {
            "SYNDICATE_DATABASE__URL": database_url,
            "SYNDICATE_MAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
            "SYNDICATE_DIGESTS__KINDS": '["daily"]',
        }
    )


@pytest.fixture
def newsroom(engine: Engine) -> Engine:
    """An Editor's Choice article in each language on DUE's day, and confirmed readers of each."""
    hour_before = DUE - timedelta(hours=1)
    lines = "".join(
        article_record(f"{language}-1", f"News in {language}", hour_before, language=language)
        + pick_record(f"{language}-1", position, hour_before)
        for position, language in enumerate(LANGUAGES, start=1)
    )
    _, messages = ingest_text(engine, lines)
    assert not messages
    choices = Choices(LANGUAGES, ("daily",))
    for language, count in READERS.items():
        for number in range(count):
            address = f"{language}{number}@example.org"
            confirmed(engine, address, Preferences(language, ("daily",)), choices)
    return engine


@pytest.fixture
def worker(engine: Engine, start_worker: StartWorker) -> None:
    """On PostgreSQL, a worker to send the batches the digest job queues (SQLite needs none)."""
    if engine.dialect.name == "postgresql":
        start_worker("w1")


def outbox(settings: Settings) -> Counter[str]:
    """How many messages each address has in the outbox."""
    box = mailbox.Maildir(settings.mail.outbox_dir, create=True)
    return Counter(str(message["To"]).split("<")[-1].rstrip(">") for message in box)


def leader(engine: Engine, settings: Settings, stop: threading.Event) -> Scheduler:
    """A scheduler holding the lease (not started: the test runs its jobs)."""
    scheduler = Scheduler(engine, settings)
    scheduler.keep_lease()
    assert scheduler.leading
    scheduler.stop = stop  # from here on: the looks the job itself takes
    return scheduler


def everyone() -> Counter[str]:
    """Each reader once."""
    return Counter(
        f"{lang}{n}@example.org" for lang, count in READERS.items() for n in range(count)
    )


def test_a_stop_before_any_language_is_no_digest_sent(newsroom: Engine, settings: Settings) -> None:
    """Stopped before the first language, the run owes them all and says so."""
    stop = threading.Event()
    stop.set()
    run = run_digest(newsroom, settings, "daily", DUE, stop=stop)
    assert run.result == "stopped"
    assert run.unreached == ["en", "ar", "fa"]
    assert run.summary() == "not reached (stopped): en, ar, fa"
    assert outbox(settings) == Counter()


@pytest.mark.parametrize(
    ("stop_when", "sent_first", "unreached"),
    [
        # SIGTERM before the job began (it was queued, or its time came as the stop did).
        (lambda settings: lambda: True, Counter(), "en, ar, fa"),
        # SIGTERM once the English edition is out, before the Arabic one.
        (
            lambda settings: lambda: sum(outbox(settings).values()) >= READERS["en"],
            Counter({f"en{n}@example.org": 1 for n in range(READERS["en"])}),
            "ar, fa",
        ),
    ],
    ids=["before-the-job", "between-english-and-arabic"],
)
def test_a_stopped_digest_is_recorded_as_stopped_and_caught_up(
    newsroom: Engine,
    worker: None,
    settings: Settings,
    stop_when: Callable[[Settings], Callable[[], bool]],
    sent_first: Counter[str],
    unreached: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The job records `stopped` naming the languages not reached; the next start sends them."""
    caplog.set_level(logging.INFO, logger="syndicate.service.scheduler")
    first = leader(newsroom, settings, StopWhen(stop_when(settings)))
    first.digest("daily", DUE)
    first.shutdown()
    run = last_runs(newsroom)["digest-daily"]
    assert (run.result, run.scheduled) == ("stopped", DUE)
    assert run.detail.endswith(f"not reached (stopped): {unreached}")
    assert outbox(settings) == sent_first
    [logged] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("digest fin")]
    assert f"result=stopped not_reached={unreached.replace(', ', ',')} detail=" in logged
    status = format_status(read_status(newsroom, settings), settings)
    assert "stopped  (" in status
    assert f"not reached (stopped): {unreached}" in status

    again = leader(newsroom, settings, threading.Event())
    assert again.catch_up(DUE + timedelta(hours=1)) == [("daily", DUE)]
    again.digest("daily", DUE)
    again.shutdown()
    run = last_runs(newsroom)["digest-daily"]
    assert run.result == "ok", run.detail
    assert "not reached" not in run.detail
    assert outbox(settings) == everyone()
    assert again.catch_up(DUE + timedelta(hours=1)) == []


def batch_jobs(engine: Engine) -> list[str]:
    """The statuses of the send batch jobs, in the order they were queued."""
    query = text("SELECT status FROM procrastinate_jobs WHERE task_name = 'send.batch' ORDER BY id")
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no batches
def test_on_postgresql_a_stop_leaves_the_batches_queued_and_the_next_run_waits_for_them(
    newsroom: Engine, settings: Settings, start_worker: StartWorker
) -> None:
    """Stopped while its batches wait, the run is stopped; the next joins them and waits: ok."""
    stopped = run_digest(
        newsroom, settings, "daily", DUE, stop=StopWhen(lambda: bool(batch_jobs(newsroom)))
    )
    assert stopped.result == "stopped"
    assert stopped.unreached == ["ar", "fa"]
    assert batch_jobs(newsroom) == ["todo"]  # the English batch waits for a worker
    assert outbox(settings) == Counter()
    start_worker("w1")
    again = run_digest(newsroom, settings, "daily", DUE, stop=threading.Event())
    assert again.result == "ok", again.summary()
    assert batch_jobs(newsroom) == ["succeeded"] * 3  # the English one joined, not queued again
    assert outbox(settings) == everyone()
