"""Bounce mailboxes the service polls: a real Dovecot over IMAP, and a local Maildir.

Each report is recorded (its subscriber suppressed) before it is moved or flagged; a second
poll records nothing; a report recorded before a crash, but not moved, is read again and
changes nothing; a report whose recording fails stays where it was.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from syndicate.feedback.intake import TakenReport, feedback_rules, take_report
from syndicate.service import bounce_mailboxes
from syndicate.service.bounce_mailboxes import (
    MailboxReading,
    read_bounce_mailboxes,
    read_imap,
    read_maildir,
)
from syndicate.service.imap_mailbox import ImapMailbox
from syndicate.service.jobstate import last_runs
from syndicate.service.scheduler import Scheduler
from syndicate.service.status import format_status, read_status
from syndicate.settings import Settings
from syndicate.settings.bounces import ImapSettings
from syndicate.store.schema import feedback_event
from syndicate.subscribers import registry
from syndicate.subscribers.verp import MailRef, Verp
from tests.support.dovecot import Dovecot
from tests.support.mailbox_reports import auto_reply, dsn
from tests.support.subscribers import add_subscribers
from tests.support.waiting import PATIENCE, wait_for

SECRET = "the secret the bounce tests sign with"
BOUNCES = "bounces@news.example"
EDITION = "daily-en-2026-11-29"
PEOPLE = ["ada@example.org", "bob@example.org", "cy@example.org"]


def settings_for(**bounces: object) -> Settings:
    """Settings with VERP on and [bounces] as given."""
    return Settings(
        security={"secret_key": SECRET},  # type: ignore[arg-type]
        mail={"bounce_address": BOUNCES},  # type: ignore[arg-type]
        bounces=bounces,  # type: ignore[arg-type]
    )


def reports(engine: Engine) -> list[bytes]:
    """A hard bounce for ada and bob, each to their VERP address, and an out-of-office reply."""
    add_subscribers(engine, PEOPLE)
    verp = Verp(SECRET)
    found = []
    for number, email in enumerate(PEOPLE[:2]):
        person = registry.find_by_email(engine, email)
        assert person is not None
        found.append(dsn(number, verp.sender(BOUNCES, MailRef(person.pk, EDITION)), email))
    return [*found, auto_reply(9, BOUNCES)]


def events(engine: Engine) -> int:
    """How many feedback events are stored."""
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(feedback_event)) or 0)


def suppressed(engine: Engine) -> list[str]:
    """Which of PEOPLE are suppressed."""
    return [email for email in PEOPLE if registry.is_suppressed(engine, email)]


def counts(reading: MailboxReading) -> tuple[int, int, int, int]:
    """(messages, recorded, ignored, failed)."""
    return reading.messages, reading.recorded, reading.ignored, reading.failed


def taker(engine: Engine, settings: Settings) -> Callable[[bytes, str], TakenReport]:
    """What the poller does with each message: take the report in."""
    rules = feedback_rules(engine, settings)
    return lambda raw, reference: take_report(engine, raw, rules, reference=reference)


# IMAP ---------------------------------------------------------------------------------------


class WithoutMove(ImapMailbox):
    """The mailbox reached as if the server lacked MOVE (RFC 6851): COPY, flag deleted, EXPUNGE."""

    def _connect(self) -> imaplib.IMAP4:
        client = super()._connect()
        client.capabilities = tuple(c for c in client.capabilities if c != "MOVE")
        return client


@pytest.mark.parametrize("way", ["move", "copy", "flag"])
def test_imap_reports_are_recorded_then_moved_or_flagged_and_read_once(
    sqlite_engine: Engine, dovecot: Dovecot, way: str
) -> None:
    """Each report is recorded and leaves the folder (or is flagged); a second poll does nothing."""
    for raw in reports(sqlite_engine):
        dovecot.append(raw)
    processed = "" if way == "flag" else "Processed"
    imap = dovecot.settings(processed_folder=processed)
    settings = settings_for(imap=imap.model_dump())
    kind = WithoutMove if way == "copy" else ImapMailbox
    first = read_imap(kind(imap), taker(sqlite_engine, settings), threading.Event())
    assert counts(first) == (3, 2, 1, 0)
    assert first.ok
    assert suppressed(sqlite_engine) == PEOPLE[:2]
    assert events(sqlite_engine) == 2
    if way == "flag":
        assert [seen for _, seen in dovecot.messages("INBOX")] == [True, True, True]
    else:
        assert dovecot.messages("INBOX") == []
        assert len(dovecot.messages("Processed")) == 3
    second = read_bounce_mailboxes(sqlite_engine, settings)
    assert [counts(reading) for reading in second] == [(0, 0, 0, 0)]
    assert events(sqlite_engine) == 2


def test_a_report_recorded_before_a_crash_is_read_again_and_changes_nothing(
    sqlite_engine: Engine, dovecot: Dovecot
) -> None:
    """Recorded but not moved (the process died between): the next poll moves it, no new event."""
    [ada, *_] = reports(sqlite_engine)
    dovecot.append(ada)
    imap = dovecot.settings(processed_folder="Processed")
    settings = settings_for(imap=imap.model_dump())
    take = taker(sqlite_engine, settings)
    take(ada, "before the crash")
    assert events(sqlite_engine) == 1
    [reading] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(reading) == (1, 1, 0, 0)
    assert events(sqlite_engine) == 1
    assert dovecot.messages("INBOX") == []


@pytest.mark.parametrize("processed", ["Processed", ""])
def test_an_imap_report_whose_recording_fails_stays_unread(
    sqlite_engine: Engine, dovecot: Dovecot, processed: str
) -> None:
    """One report failing leaves it in the folder, unseen; the others are taken; it comes later."""
    ada, bob, away = reports(sqlite_engine)
    for raw in (ada, bob, away):
        dovecot.append(raw)
    imap = dovecot.settings(processed_folder=processed)
    settings = settings_for(imap=imap.model_dump())
    take = taker(sqlite_engine, settings)

    def failing_on_bob(raw: bytes, reference: str) -> TakenReport:  # a fault, named so
        if raw == bob:
            raise RuntimeError("the parser broke")
        return take(raw, reference)

    reading = read_imap(ImapMailbox(imap), failing_on_bob, threading.Event())
    assert counts(reading) == (3, 1, 1, 1)
    assert not reading.ok
    assert suppressed(sqlite_engine) == PEOPLE[:1]
    left = [(raw, seen) for raw, seen in dovecot.messages("INBOX") if not seen]
    assert [raw.replace(b"\r\n", b"\n") for raw, _ in left] == [bob.replace(b"\r\n", b"\n")]
    [again] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(again) == (1, 1, 0, 0)
    assert suppressed(sqlite_engine) == PEOPLE[:2]


def test_a_store_that_fails_leaves_every_imap_report_where_it_was(
    sqlite_engine: Engine, dovecot: Dovecot
) -> None:
    """No table to record in: the reading stops at the first report, and all of them stay."""
    for raw in reports(sqlite_engine):
        dovecot.append(raw)
    imap = dovecot.settings(processed_folder="Processed")
    settings = settings_for(imap=imap.model_dump())
    take = taker(sqlite_engine, settings)
    with sqlite_engine.begin() as connection:
        connection.execute(text("DROP TABLE feedback_event"))
    reading = read_imap(ImapMailbox(imap), take, threading.Event())
    assert counts(reading) == (1, 0, 0, 1)
    assert "OperationalError" in reading.error
    assert [seen for _, seen in dovecot.messages("INBOX")] == [False, False, False]
    assert dovecot.messages("Processed") == []


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_reports_are_read_over_tls_and_starttls(
    sqlite_engine: Engine, dovecot: Dovecot, security: str
) -> None:
    """Over implicit TLS and over STARTTLS, the server's certificate checked, reports are taken."""
    [ada, *_] = reports(sqlite_engine)
    dovecot.append(ada)
    imap = dovecot.settings(security, processed_folder="Processed")
    settings = settings_for(imap=imap.model_dump())
    mailbox = ImapMailbox(imap, tls_context=dovecot.tls_context())
    reading = read_imap(mailbox, taker(sqlite_engine, settings), threading.Event())
    assert counts(reading) == (1, 1, 0, 0), reading.error
    assert len(dovecot.messages("Processed")) == 1


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_server_whose_certificate_is_not_trusted_is_refused(
    sqlite_engine: Engine, dovecot: Dovecot, security: str
) -> None:
    """The default context verifies: a self-signed certificate stops the reading, nothing moved."""
    [ada, *_] = reports(sqlite_engine)
    dovecot.append(ada)
    settings = settings_for(imap=dovecot.settings(security).model_dump())
    [reading] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(reading) == (0, 0, 0, 0)
    assert "CERTIFICATE_VERIFY_FAILED" in reading.error
    assert [seen for _, seen in dovecot.messages("INBOX")] == [False]


def test_folder_names_in_any_script_reach_the_server_whole(
    sqlite_engine: Engine, dovecot: Dovecot
) -> None:
    """A folder named "Rapports/Traités & lus" is created and filled as named (modified UTF-7)."""
    for raw in reports(sqlite_engine):
        dovecot.append(raw, folder="Rebonds")
    imap = dovecot.settings(folder="Rebonds", processed_folder="Traités & lus")
    settings = settings_for(imap=imap.model_dump())
    [reading] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(reading) == (3, 2, 1, 0), reading.error
    client = dovecot.client()
    try:
        _, listed = client.list()
    finally:
        client.logout()
    assert any(line.endswith(b'"Trait&AOk-s &- lus"') for line in listed), listed
    assert len(dovecot.messages('"Trait&AOk-s &- lus"')) == 3


def test_a_wrong_password_is_an_error_that_touches_nothing(
    sqlite_engine: Engine, dovecot: Dovecot
) -> None:
    """The login refused: the reading says so, and the mailbox is as it was."""
    [ada, *_] = reports(sqlite_engine)
    dovecot.append(ada)
    settings = settings_for(imap=dovecot.settings(password="wrong").model_dump())
    [reading] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(reading) == (0, 0, 0, 0)
    assert "refused the login" in reading.error
    assert [seen for _, seen in dovecot.messages("INBOX")] == [False]


# Maildir ------------------------------------------------------------------------------------


def maildir_with(folder: Path, messages: list[bytes]) -> mailbox.Maildir:
    """A Maildir holding `messages` in new/, as a delivery agent leaves them."""
    box = mailbox.Maildir(folder, create=True)
    for raw in messages:
        box.add(raw)
    return box


def files(folder: Path, sub: str) -> list[str]:
    """The file names in the Maildir's `sub` folder."""
    return sorted(path.name for path in (folder / sub).iterdir())


def test_maildir_reports_move_to_cur_flagged_seen_once_recorded(
    sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Recorded reports go from new/ to cur/ with S; a second poll reads nothing."""
    folder = tmp_path / "bounces"
    maildir_with(folder, reports(sqlite_engine))
    settings = settings_for(maildir=str(folder))
    with caplog.at_level(logging.INFO, logger="syndicate.service.bounce_mailboxes"):
        [first] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(first) == (3, 2, 1, 0)
    assert "bounces read source=maildir messages=3 recorded=2 ignored=1 failed=0" in caplog.text
    assert f'outcome="bounced hard ada@example.org {EDITION}"' in caplog.text
    assert suppressed(sqlite_engine) == PEOPLE[:2]
    assert files(folder, "new") == []
    assert all(name.endswith(":2,S") for name in files(folder, "cur"))
    assert len(files(folder, "cur")) == 3
    [second] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(second) == (0, 0, 0, 0)
    assert events(sqlite_engine) == 2


def test_a_maildir_report_a_client_saw_but_did_not_read_is_taken_keeping_its_flags(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """A message in cur/ without S (a client listed it) is read; its other flags are kept."""
    folder = tmp_path / "bounces"
    [ada, *_] = reports(sqlite_engine)
    box = maildir_with(folder, [])
    message = mailbox.MaildirMessage(ada)
    message.set_subdir("cur")
    message.set_flags("F")
    box.add(message)
    reading = read_maildir(folder, taker(sqlite_engine, settings_for()), threading.Event())
    assert counts(reading) == (1, 1, 0, 0)
    [name] = files(folder, "cur")
    assert name.endswith(":2,FS")


def test_a_maildir_report_whose_recording_fails_stays_in_new(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """The failing report stays in new/; it is taken on the poll after the fault is mended."""
    folder = tmp_path / "bounces"
    ada, bob, away = reports(sqlite_engine)
    maildir_with(folder, [ada, bob, away])
    settings = settings_for(maildir=str(folder))
    take = taker(sqlite_engine, settings)

    def failing_on_bob(raw: bytes, reference: str) -> TakenReport:  # a fault, named so
        if raw == bob:
            raise RuntimeError("the parser broke")
        return take(raw, reference)

    reading = read_maildir(folder, failing_on_bob, threading.Event())
    assert counts(reading) == (3, 1, 1, 1)
    [left] = files(folder, "new")
    assert (folder / "new" / left).read_bytes() == bob
    [again] = read_bounce_mailboxes(sqlite_engine, settings)
    assert counts(again) == (1, 1, 0, 0)
    assert suppressed(sqlite_engine) == PEOPLE[:2]


def test_stopping_leaves_the_rest_for_the_next_poll(sqlite_engine: Engine, tmp_path: Path) -> None:
    """With the stop flag set (SIGTERM), nothing more is read; everything waits, unmoved."""
    folder = tmp_path / "bounces"
    maildir_with(folder, reports(sqlite_engine))
    stop = threading.Event()
    stop.set()
    reading = read_maildir(folder, taker(sqlite_engine, settings_for()), stop)
    assert counts(reading) == (0, 0, 0, 0)
    assert len(files(folder, "new")) == 3


# The job ------------------------------------------------------------------------------------


def test_the_leader_runs_the_bounces_job_and_status_shows_it(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """The lease holder reads the mailboxes and records the run; a standby reads nothing."""
    folder = tmp_path / "bounces"
    maildir_with(folder, reports(sqlite_engine))
    settings = settings_for(maildir=str(folder), poll_seconds=30)
    leader, standby = Scheduler(sqlite_engine, settings), Scheduler(sqlite_engine, settings)
    leader.keep_lease()
    standby.keep_lease()
    try:
        standby.bounces()
        assert "bounces" not in last_runs(sqlite_engine)
        assert len(files(folder, "new")) == 3
        leader.bounces()
    finally:
        leader.shutdown()
        standby.shutdown()
    run = last_runs(sqlite_engine)["bounces"]
    assert run.ok
    assert run.detail == "source=maildir messages=3 recorded=2 ignored=1 failed=0"
    shown = format_status(read_status(sqlite_engine, settings), settings)
    assert "bounces  (every 30 s)" in shown
    assert "source=maildir messages=3 recorded=2 ignored=1 failed=0" in shown


def test_a_started_scheduler_reads_the_mailbox_at_once(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`syndicate run`'s scheduler, once leading, takes the waiting reports without being asked."""
    monkeypatch.chdir(tmp_path)  # its other jobs write the default var/ and feeds/ here
    folder = tmp_path / "bounces"
    maildir_with(folder, reports(sqlite_engine))
    scheduler = Scheduler(sqlite_engine, settings_for(maildir=str(folder)))
    scheduler.start()
    try:
        wait_for(lambda: "bounces" in last_runs(sqlite_engine), PATIENCE, "the bounces job")
    finally:
        scheduler.shutdown()
    assert suppressed(sqlite_engine) == PEOPLE[:2]
    assert files(folder, "new") == []


def test_without_a_mailbox_there_is_no_bounces_job(sqlite_engine: Engine) -> None:
    """No [bounces] maildir and no IMAP host: nothing to poll, nothing shown."""
    assert not bounce_mailboxes.configured(Settings())
    assert bounce_mailboxes.configured(settings_for(imap=ImapSettings(host="x").model_dump()))
    shown = format_status(read_status(sqlite_engine, Settings()), Settings()).splitlines()
    assert not [line for line in shown if line.startswith("bounces")]  # no job's heading
