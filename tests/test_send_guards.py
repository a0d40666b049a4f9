"""What a running send keeps checking: suppressions made meanwhile, and its hard-bounce rate."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.delivery.ledger import SendReport, send_edition
from syndicate.delivery.smtp import SmtpTransport
from syndicate.digests.model import Edition
from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.feedback.record import FeedbackRules, record_feedback
from syndicate.send.plan import plan_send
from syndicate.settings import BounceSettings, MailSettings, Settings, SmtpSettings
from syndicate.store import open_database
from syndicate.store.leases import holder_name
from syndicate.subscribers import registry
from tests.support.cli import start_process
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.ledger import ledger
from tests.support.newsroom import Newsroom, addresses
from tests.support.smtp_server import Recorder, Serve
from tests.support.subscribers import add_subscribers
from tests.support.waiting import PATIENCE, wait_for

REFUSAL = "550 5.1.1 no such user"
HOLDER = holder_name()  # send_edition leaves its lease to its caller: one holder for all


def _reader(number: int) -> str:
    return f"r{number:03d}@example.org"


def _newsletter(engine: Engine, count: int) -> Edition:
    """A built daily edition and `count` confirmed readers, in the order a send reaches them."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    add_subscribers(engine, [_reader(number) for number in range(count)])
    return edition


def _settings(smtp: SmtpSettings, **bounces: float) -> Settings:
    """Mail through the test server on one connection, no retries, with `[bounces]` as given."""
    mail = MailSettings(
        transport="smtp", smtp=smtp.model_copy(update={"retries": 0, "pool_size": 1})
    )
    return Settings().model_copy(update={"mail": mail, "bounces": BounceSettings(**bounces)})


def _send(engine: Engine, settings: Settings, edition: Edition, **plan: float) -> SendReport:
    sending = plan_send(engine, settings, edition, SmtpTransport(settings.mail.smtp), None)
    return send_edition(engine, replace(sending, **plan), holder=HOLDER)


# A suppression made while the send runs -----------------------------------------------------


def test_an_address_suppressed_mid_send_is_not_mailed_and_is_recorded_suppressed(
    engine: Engine, serve: Serve
) -> None:
    """A complaint recorded while message 3 goes out keeps reader 4, on the same page, unmailed."""
    server, smtp = serve()
    edition = _newsletter(engine, 8)
    complaint = Feedback(
        Provider.SES, FeedbackKind.COMPLAINT, _reader(4), "ses-event-1", datetime.now(UTC),
        clues=Clues(),
    )  # fmt: skip
    # As message 3 ends (the sender waiting for the reply), the complaint comes in by webhook.
    server.at_message[3] = lambda: record_feedback(engine, complaint, FeedbackRules())
    # The page of 8 was read before the complaint; the check runs before each message here.
    report = _send(engine, _settings(smtp), edition, recheck_seconds=0)
    assert _reader(4) not in server.addresses()
    assert Counter(server.addresses()) == Counter(_reader(n) for n in range(8) if n != 4)
    assert (report.sent, report.suppressed, report.failed) == (7, 1, 0)
    assert ledger(engine, edition.id)[_reader(4)] == ("suppressed", "suppressed: complained: ses")
    again = _send(engine, _settings(smtp), edition)
    assert (again.sent, again.skipped, again.suppressed) == (0, 7, 1)  # left out from the start


def test_without_the_recheck_the_page_read_before_the_complaint_would_be_mailed(
    engine: Engine, serve: Serve
) -> None:
    """The same send with the recheck off mails reader 4: the test above tests the recheck."""
    server, smtp = serve()
    edition = _newsletter(engine, 8)
    complaint = Feedback(
        Provider.SES, FeedbackKind.COMPLAINT, _reader(4), "ses-event-1", datetime.now(UTC)
    )
    server.at_message[3] = lambda: record_feedback(engine, complaint, FeedbackRules())
    _send(engine, _settings(smtp), edition, recheck_seconds=3600)
    assert _reader(4) in server.addresses()
    assert registry.is_suppressed(engine, _reader(4))


# A send that pauses itself -------------------------------------------------------------------


def test_a_send_pauses_itself_past_the_hard_bounce_rate_and_a_resumed_one_stops_at_once(
    engine: Engine, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """Half the first 20 refused (rate 50 % > 10 % over a sample of 20): paused like SIGTERM."""
    server, smtp = serve()
    edition = _newsletter(engine, 60)
    for number in range(0, 20, 2):
        server.refuse[_reader(number)] = REFUSAL

    def paused_logged() -> bool:
        return any("send paused" in record.getMessage() for record in caplog.records)

    # The 30th message taken (reader 39's) is held until the pause is decided: the send stops
    # mid-way however fast or slow the machine (the rate is over from the 20th message on).
    server.at_message[30] = lambda: wait_for(paused_logged, PATIENCE, "the send to pause")
    paused_settings = _settings(smtp, pause_rate=0.1, pause_sample=20)
    with caplog.at_level(logging.INFO):
        report = _send(engine, paused_settings, edition)
    assert report.stopped
    assert re.fullmatch(
        r"hard-bounce rate \d+\.\d\d% of \d+ sent is over \[bounces\] pause_rate 10\.00%",
        report.paused,
    ), report.paused
    assert "; paused: hard-bounce rate" in report.summary()
    [line] = [
        record.getMessage() for record in caplog.records if "send paused" in record.getMessage()
    ]
    assert re.fullmatch(
        rf"send paused edition={edition.id} hard_bounce_rate=0\.\d{{4}} sample=(\d+) pause_rate=0\.1",
        line,
    ), line
    recorded = ledger(engine, edition.id)
    assert 20 <= len(recorded) <= 40 < 60
    # A clean stop: every message the server took is recorded as sent, nothing else is.
    assert sorted(server.addresses()) == sorted(a for a, (s, _) in recorded.items() if s == "sent")
    taken = len(server.received)

    resumed = _send(engine, paused_settings, edition)
    assert (resumed.sent, resumed.failed, resumed.stopped) == (0, 0, True)
    assert resumed.paused.startswith("hard-bounce rate ")
    assert len(server.received) == taken, "a resumed send over the limit sends nothing"

    relaxed = _send(engine, _settings(smtp, pause_rate=0.5, pause_sample=20), edition)
    assert not relaxed.stopped
    assert relaxed.paused == ""
    assert Counter(server.addresses()) == Counter(_reader(n) for n in range(60) if n >= 20 or n % 2)


def test_a_send_under_the_rate_or_the_sample_is_never_paused(engine: Engine, serve: Serve) -> None:
    """Refusals under pause_rate, or a rate over it on fewer than pause_sample messages, go on."""
    server, smtp = serve()
    edition = _newsletter(engine, 30)
    for number in (3, 27):
        server.refuse[_reader(number)] = REFUSAL  # never over 10 % once 10 were sent
    report = _send(engine, _settings(smtp, pause_rate=0.1, pause_sample=10), edition)
    assert (report.sent, report.failed, report.stopped) == (28, 2, False)
    small = _newsletter_more(engine, edition, server)
    report = _send(engine, _settings(smtp, pause_rate=0.1, pause_sample=1000), edition)
    assert (report.sent, report.failed, report.stopped) == (0, small, False)


def _newsletter_more(engine: Engine, edition: Edition, server: Recorder) -> int:
    """Ten more readers, all refused: a rate far over the limit, on a sample under 1000."""
    more = [f"more{number}@example.org" for number in range(10)]
    add_subscribers(engine, more)
    for address in more:
        server.refuse[address] = REFUSAL
    return len(more)


# The command line ------------------------------------------------------------------------


@pytest.mark.parametrize("processes", ["1", "2"])
def test_digest_send_says_it_paused_and_resumes_only_under_the_limit(
    tmp_path: Path, serve: Serve, processes: str
) -> None:
    """A send stopped mid-way over the limit: `digest send` again stops at once, saying why."""
    server, smtp = serve()
    room = Newsroom(tmp_path, smtp.port, 200)
    for address in addresses(200)[:60:2]:
        server.refuse[address] = REFUSAL
    # First, from one process: no pause (a rate is never over 100 %), killed once 30 messages
    # were taken, half of the 60 or so handed over refused.
    room.env["SYNDICATE_BOUNCES__PAUSE_RATE"] = "1"
    server.gate, server.hold_from = threading.Event(), 30
    room.env["SYNDICATE_MAIL__SMTP__TIMEOUT"] = "600"  # a held message never times out
    sending = start_process("digest", "send", room.edition, cwd=tmp_path, env=room.env)
    wait_for(lambda: len(server.received) == 30, PATIENCE, "30 messages to arrive")
    # Killed only once the ledger has what the server took or refused: nothing is sent twice,
    # and the rate is at most 50 % (no more than the 30 refused, at least the 30 taken).
    store = open_database(room.env["SYNDICATE_DATABASE__URL"], migrate=False)
    wait_for(lambda: _recorded(store, room.edition, server), PATIENCE, "the ledger to catch up")
    store.dispose()
    sending.send_signal(signal.SIGKILL)
    sending.communicate()
    wait_for(lambda: server.connections == 0, PATIENCE, "the killed send's connections to close")
    server.gate.set()
    taken = len(server.received)

    # Then over the limit, from one process or two: each stops before its first message.
    room.env["SYNDICATE_MAIL__PROCESSES"] = processes
    room.env["SYNDICATE_BOUNCES__PAUSE_RATE"] = "0.1"
    room.env["SYNDICATE_BOUNCES__PAUSE_SAMPLE"] = "20"
    paused = room.send()
    assert paused.returncode == 1
    assert " 0 sent, 0 failed" in paused.stdout
    assert "; paused: hard-bounce rate " in paused.stdout
    assert "is over [bounces] pause_rate 10.00%" in paused.stdout
    assert re.search(
        rf"send paused edition={room.edition} hard_bounce_rate=0\.\d+ sample=\d+ pause_rate=0\.1",
        paused.stderr,
    ), paused.stderr
    assert "paused" in paused.stderr.splitlines()[-1]
    assert len(server.received) == taken

    room.env["SYNDICATE_BOUNCES__PAUSE_RATE"] = "0.5"  # not over it, whatever is sent next
    finished = room.send()
    assert "paused" not in finished.stdout
    assert Counter(server.addresses()) == Counter(
        address for address in addresses(200) if address not in server.refuse
    )


def _recorded(engine: Engine, edition_id: str, server: Recorder) -> bool:
    """Whether the ledger has every message the server took as sent, every refusal as bounced."""
    statuses = {address: status for address, (status, _) in ledger(engine, edition_id).items()}
    return all(statuses.get(address) == "sent" for address in server.addresses()) and all(
        statuses.get(address) == "bounced" for address in server.refused
    )
