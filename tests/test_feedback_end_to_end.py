"""End to end: a send, a bounce and a complaint back by each way reports come, the next send.

A newsroom with `[mail] bounce_address` set sends its daily edition through its own SMTP
transport to a test SMTP server (tests/support/feedback_loop.py). Then, built from what that
server took (the VERP envelope sender, the Message-ID and X-Syndicate-Mail header of each
message), a hard bounce for one reader and a complaint about another come back by one way:
`syndicate bounces read FILE`, the same command as a mail server's pipe runs it, the Maildir
the service polls, an IMAP folder on a real Dovecot, or a provider's signed webhook on the
site served by uvicorn. Each report is attributed to its reader and the edition, both
addresses are suppressed, the same reports again change nothing, and the next day's
edition reaches everyone else and neither of them.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.service.bounce_mailboxes import read_bounce_mailboxes
from tests.support.cli import run_process
from tests.support.dovecot import Dovecot
from tests.support.feedback_loop import BOUNCES, FeedbackLoop
from tests.support.mailbox_reports import arf, delivered, dsn
from tests.support.provider_events import PROVIDER_POSTS, WEBHOOK_SECRETS, serve_webhooks
from tests.support.queue_workers import Worker
from tests.support.smtp_server import Serve

READERS = 5
BOUNCED, COMPLAINED = "reader00001@example.org", "reader00003@example.org"
ALREADY = " (already recorded)"  # what a report read a second time says

# Delivers the loop's bounce and complaint by one way, checking what that way answers;
# called again with `again=True`, it delivers the very same reports a second time.
Deliver = Callable[[bool], None]
Opener = Callable[[FeedbackLoop, pytest.FixtureRequest], AbstractContextManager[Deliver]]


@dataclass(frozen=True)
class Way:
    """A way reports come back: how to open it, and what it attributes by."""

    name: str
    open: Opener
    provider: str = "mail"
    fixtures: tuple[str, ...] = ()  # requested before the send, so that a skip costs nothing


# The reports as mail ------------------------------------------------------------------------


def mail_reports(loop: FeedbackLoop) -> list[tuple[str, bytes]]:
    """The two reports as (envelope recipient, message), built from what the server took.

    A DSN to the bounced message's VERP address, quoting its headers; and an ARF complaint
    from a feedback loop to the bounce address, returning the whole message and naming its
    envelope sender, not the reader.
    """
    bounced, complained = loop.sent(BOUNCED), loop.sent(COMPLAINED)
    bounce = dsn(1, bounced.envelope_sender, BOUNCED, original=bounced.header_block)
    complaint = arf(2, BOUNCES, complained.content, original_mail_from=complained.envelope_sender)
    return [(bounced.envelope_sender, bounce), (BOUNCES, complaint)]


def said(loop: FeedbackLoop, again: bool) -> list[str]:
    """The lines `syndicate bounces read` prints for the two reports."""
    ending = ALREADY if again else ""
    return [
        f"bounced hard {BOUNCED} {loop.edition}{ending}",
        f"complained {COMPLAINED} {loop.edition}{ending}",
    ]


@contextmanager
def read_files(loop: FeedbackLoop, request: pytest.FixtureRequest) -> Iterator[Deliver]:
    """`syndicate bounces read FILE FILE`: each report saved from the mailbox as a file."""
    files = []
    for number, (recipient, report) in enumerate(mail_reports(loop)):
        files.append(loop.room.folder / f"report-{number}.eml")
        files[-1].write_bytes(delivered(recipient, report))

    def deliver(again: bool) -> None:
        ran = loop.room.cli("bounces", "read", *map(str, files))
        assert ran.returncode == 0, ran.stderr
        lines = [f"{file}: {line}" for file, line in zip(files, said(loop, again), strict=True)]
        assert ran.stdout.splitlines() == lines

    yield deliver


@contextmanager
def read_pipe(loop: FeedbackLoop, request: pytest.FixtureRequest) -> Iterator[Deliver]:
    """`syndicate bounces read --recipient ${recipient} -`, one process a message, as a pipe runs it."""
    reports = mail_reports(loop)

    def deliver(again: bool) -> None:
        for (recipient, report), line in zip(reports, said(loop, again), strict=True):
            ran = run_process(
                "bounces", "read", "--recipient", recipient, "-", cwd=loop.room.folder,
                env=loop.room.env, stdin=delivered(recipient, report).decode("utf-8"),
            )  # fmt: skip
            assert (ran.returncode, ran.stdout) == (0, f"{line}\n"), ran.stderr

    yield deliver


@contextmanager
def poll_maildir(loop: FeedbackLoop, request: pytest.FixtureRequest) -> Iterator[Deliver]:
    """The service's poll of `[bounces] maildir`, the reports delivered into its new/."""
    folder = loop.room.folder / "bounces"
    settings = loop.settings(bounces={"maildir": str(folder)})
    box = mailbox.Maildir(folder, create=True)

    def deliver(again: bool) -> None:
        for recipient, report in mail_reports(loop):
            box.add(delivered(recipient, report))
        [reading] = read_bounce_mailboxes(loop.engine, settings)
        assert reading.summary() == "source=maildir messages=2 recorded=2 ignored=0 failed=0"
        assert not list((folder / "new").iterdir()), "each report leaves new/ once recorded"

    yield deliver


@contextmanager
def poll_imap(loop: FeedbackLoop, request: pytest.FixtureRequest) -> Iterator[Deliver]:
    """The service's poll of `[bounces.imap]` on a real Dovecot, read reports moved aside."""
    dovecot: Dovecot = request.getfixturevalue("dovecot")
    imap = dovecot.settings(processed_folder="Processed")
    settings = loop.settings(bounces={"imap": imap.model_dump()})

    def deliver(again: bool) -> None:
        for recipient, report in mail_reports(loop):
            dovecot.append(delivered(recipient, report))
        [reading] = read_bounce_mailboxes(loop.engine, settings)
        assert reading.summary() == "source=imap messages=2 recorded=2 ignored=0 failed=0"
        assert dovecot.messages() == []
        assert len(dovecot.messages("Processed")) == (4 if again else 2)

    yield deliver


# The reports as webhooks --------------------------------------------------------------------


def post_webhooks(provider: str) -> Opener:
    """Opens the way of `provider`'s webhook: the site served, the provider's requests posted."""

    @contextmanager
    def open_site(loop: FeedbackLoop, request: pytest.FixtureRequest) -> Iterator[Deliver]:
        settings = loop.settings(bounces={"webhooks": WEBHOOK_SECRETS})
        with serve_webhooks(loop.engine, settings) as site:
            posts = PROVIDER_POSTS[provider](site.amazon, loop.sent(BOUNCED), loop.sent(COMPLAINED))

            def deliver(again: bool) -> None:
                for post in posts:
                    answer = site.post(provider, post)
                    assert answer.status_code == 200, answer.text
                    counted = {"recorded": 0, "already_recorded": 0, "ignored": 0}
                    counted["already_recorded" if again else "recorded"] = post.events
                    assert answer.json() == counted

            yield deliver

    return open_site


WAYS = [
    Way("bounces-read-file", read_files),
    Way("bounces-read-pipe", read_pipe),
    Way("maildir-poll", poll_maildir),
    Way("imap-dovecot", poll_imap, fixtures=("dovecot",)),
    Way("webhook-ses", post_webhooks("ses"), provider="ses"),
    # Postmark's records name the address and Postmark's own message id, never ours.
    Way("webhook-postmark", post_webhooks("postmark"), provider="postmark"),
    Way("webhook-mailgun", post_webhooks("mailgun"), provider="mailgun"),
    Way("webhook-sendgrid", post_webhooks("sendgrid"), provider="sendgrid"),
]


# The loop -----------------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS, ids=[way.name for way in WAYS])
def test_a_bounce_and_a_complaint_come_back_and_the_next_send_skips_both(
    way: Way,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    serve: Serve,
    engine: Engine,
    database_url: str,
    workers: list[Worker],
) -> None:
    """Both attributed to reader and edition, suppressed once; the next edition goes to the rest."""
    for name in way.fixtures:
        request.getfixturevalue(name)  # Dovecot missing: skipped before anything is sent
    server, smtp = serve()
    loop = FeedbackLoop(tmp_path, server, smtp.port, engine, database_url, READERS, workers)
    for email, sent in loop.first.items():
        assert sent.envelope_sender.startswith("bounces+"), "VERP: the token in the local part"
        assert sent.mail_token in sent.envelope_sender, f"{email}: the same token in the header"
        assert sent.postmark_metadata == sent.mail_token, f"{email}: and for Postmark"

    with way.open(loop, request) as deliver:
        deliver(False)
        edition = loop.edition
        assert loop.events() == sorted([
            (way.provider, "complaint", COMPLAINED, loop.pk(COMPLAINED), edition),
            (way.provider, "hard", BOUNCED, loop.pk(BOUNCED), edition),
        ])  # fmt: skip
        assert loop.suppressed() == {BOUNCED: "bounced", COMPLAINED: "complained"}
        recorded = loop.store()
        deliver(True)
        assert loop.store() == recorded, "the same reports again change nothing"

    next_edition, sending, reached = loop.send_next()
    assert sending.returncode == 0, sending.stderr
    assert sending.stdout.startswith(
        f"{next_edition}: 3 sent, 0 failed, 2 suppressed, 0 skipped"
    ), sending.stdout
    others = sorted(set(loop.readers) - {BOUNCED, COMPLAINED})
    assert sorted(reached) == others
    assert loop.ledger(next_edition) == dict.fromkeys(others, "sent")
    assert loop.ledger(loop.edition) == dict.fromkeys(loop.readers, "sent")
