"""Mail beyond digests and the pages `syndicate serve` mounts: confirmations, archive, RTL sends."""

from __future__ import annotations

import mailbox
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert, select

from syndicate.delivery.ledger import pending_count, send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.delivery.transports import PermanentFailure
from syndicate.dispatch import confirmation_sender, plan_send
from syndicate.settings import MailSettings, Settings
from syndicate.store.leases import holder_name
from syndicate.store.schema import delivery
from syndicate.subscribers import registry
from syndicate.subscribers.links import ConfirmationRequest
from syndicate.subscribers.registry import Choices, Preferences
from tests.smtpserver import Serve
from tests.test_editions import build, digest_corpus, ingest
from tests.test_send import DAY, Newsroom, syndicate


def outbox_settings(folder: Path) -> Settings:
    """Default settings with the outbox in `folder`."""
    return Settings().model_copy(update={"mail": MailSettings(outbox_dir=folder)})


def only_message(folder: Path) -> EmailMessage:
    """The single message in the Maildir `folder`."""
    [raw] = list(mailbox.Maildir(folder, create=False))
    parsed = message_from_bytes(raw.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("language", "subject", "direction"),
    [("en", "Confirm your subscription to", 'dir="ltr"'), ("ar", "أكّد اشتراكك في", 'dir="rtl"')],
)
def test_confirmation_mail_carries_the_link_in_the_readers_language(
    tmp_path: Path, language: str, subject: str, direction: str
) -> None:
    """The confirmation mail is in the reader's language, with the link in text and HTML."""
    send = confirmation_sender(outbox_settings(tmp_path / "outbox"))
    url = "https://news.example/subscribe/confirm?token=abc&lang=" + language
    send(ConfirmationRequest("reader@example.org", 'Ada "Ace" <Lovelace>', language, url))
    message = only_message(tmp_path / "outbox")
    assert message["Subject"].startswith(subject)
    assert message["To"].addresses[0].addr_spec == "reader@example.org"
    assert message["To"].addresses[0].display_name == 'Ada "Ace" <Lovelace>'
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert url in text
    assert url.replace("&", "&amp;") in html
    assert direction in html
    assert "&lt;Lovelace&gt;" in html


def test_arabic_edition_goes_out_right_to_left(tmp_path: Path, serve: Serve) -> None:
    """An Arabic subscriber gets the Arabic edition: RTL HTML and an encoded Arabic subject."""
    server, settings = serve()
    room = Newsroom(tmp_path, settings.port, 0)
    (tmp_path / "ar.csv").write_text(
        "email,name,language,digests,topics\nali@example.org,علي,ar,daily,\n"
    )
    syndicate(
        room.env, "subscribers", "import", str(tmp_path / "ar.csv"), "--confirmed", cwd=tmp_path
    )
    built = syndicate(
        room.env, "digest", "build", "daily", "--date", DAY, "--lang", "ar", cwd=tmp_path
    )
    edition = built.stdout.split()[-1]
    sent = syndicate(room.env, "digest", "send", edition, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    [received] = server.received
    assert b"Subject: =?utf-8?" in received.content
    message = message_from_bytes(received.content, policy=policy.default)
    assert any("\u0600" <= char <= "\u06ff" for char in message["Subject"])
    html = message.get_body(("html",)).get_content()
    assert 'dir="rtl"' in html
    assert "علي" in html


@pytest.fixture
def served(tmp_path: Path, serve: Serve) -> Iterator[tuple[str, Newsroom]]:
    """`syndicate serve` on a free loopback port over a store with a built edition."""
    _, settings = serve()
    room = Newsroom(tmp_path, settings.port, 1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**room.env, "SYNDICATE_WEB__PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "serve"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base, room
    server.terminate()
    server.wait(timeout=30)


def test_serve_mounts_the_subscription_pages_and_the_archive(served: tuple[str, Newsroom]) -> None:
    """The server answers the subscribe form, an edition's web copy, and 404 for no edition."""
    base, room = served
    form = httpx.get(f"{base}/subscribe/", timeout=10)
    assert form.status_code == 200
    assert "<form" in form.text
    copy = httpx.get(f"{base}/digests/{room.edition}", timeout=10)
    assert copy.status_code == 200
    assert copy.headers["content-type"].startswith("text/html")
    assert "unsubscribe?token=" not in copy.text  # nobody's personal links
    missing = httpx.get(f"{base}/digests/daily-en-1999-01-01", timeout=10)
    assert missing.status_code == 404
    assert 'lang="en"' in missing.text
    missing_ar = httpx.get(f"{base}/digests/daily-ar-1999-01-01", timeout=10)
    assert missing_ar.status_code == 404
    assert 'dir="rtl"' in missing_ar.text


def test_the_archive_lists_editions_by_language(served: tuple[str, Newsroom]) -> None:
    """/digests/ lists the stored editions of a language, newest first, linking each web copy."""
    base, room = served
    listing = httpx.get(f"{base}/digests/", timeout=10)
    assert listing.status_code == 200
    assert f'href="/digests/{room.edition}"' in listing.text
    assert "Daily digest" in listing.text
    arabic = httpx.get(f"{base}/digests/?lang=ar", timeout=10)
    assert 'dir="rtl"' in arabic.text
    assert "أرشيف النشرات البريدية" in arabic.text
    assert room.edition not in arabic.text  # an English edition is not in the Arabic list
    assert httpx.get(f"{base}/digests/?lang=xx", timeout=10).status_code == 404


def test_the_pending_count_matches_what_a_send_pages_through(engine: Engine) -> None:
    """Counting in one query agrees with paging: the ledger's done, deferred and the suppressed."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    choices = Choices(("en", "ar"), ("daily", "weekly"))
    people = []
    for n in range(12):
        language, kinds = (
            ("ar", ("daily",)) if n == 0 else ("en", ("daily",) if n != 1 else ("weekly",))
        )
        pending = registry.subscribe(
            engine, f"r{n}@example.org", Preferences(language, kinds), choices
        )
        assert pending is not None
        registry.confirm(engine, pending.pk)
        people.append(pending.pk)
    registry.subscribe(engine, "waiting@example.org", Preferences("en", ("daily",)), choices)
    with engine.begin() as connection:
        registry.suppress(connection, "r2@example.org", "bounced", "550")
        moment = datetime.now(UTC)
        for pk, status in zip(people[3:6], ("sent", "bounced", "deferred"), strict=True):
            connection.execute(
                insert(delivery).values(
                    edition_id=edition.id, subscriber_pk=pk, status=status, message_id="<m@x>",
                    detail="", at=moment,
                )
            )  # fmt: skip
    plan = plan_send(engine, Settings(), edition, RecordingTransport(), None)
    assert pending_count(engine, plan) == (7, 2)  # 9 receive it; 2 are done, 1 is deferred
    assert pending_count(engine, replace(plan, count=None)) == (7, 2)


def test_a_send_records_every_outcome_in_the_ledger(engine: Engine) -> None:
    """On each database: sent and bounced rows with their times, the bounce suppressed, no repeat."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    choices = Choices(("en",), ("daily",))
    for n in range(5):
        pending = registry.subscribe(
            engine, f"r{n}@example.org", Preferences("en", ("daily",)), choices
        )
        assert pending is not None
        registry.confirm(engine, pending.pk)
    transport = RecordingTransport({"r3@example.org": PermanentFailure(550, "no such user")})
    plan = plan_send(engine, Settings(), edition, transport, None)
    started = datetime.now(UTC)
    holder = holder_name()
    report = send_edition(engine, plan, holder=holder)
    assert (report.sent, report.failed) == (4, 1)
    with engine.connect() as connection:
        rows = connection.execute(
            select(delivery.c.subscriber_pk, delivery.c.status, delivery.c.at).where(
                delivery.c.edition_id == edition.id
            )
        ).all()
    assert sorted(status for _, status, _ in rows) == ["bounced", "sent", "sent", "sent", "sent"]
    assert all(started - timedelta(seconds=1) <= at <= datetime.now(UTC) for _, _, at in rows)
    assert registry.is_suppressed(engine, "r3@example.org")
    again = send_edition(
        engine, plan_send(engine, Settings(), edition, transport, None), holder=holder
    )
    assert (again.sent, again.skipped, again.suppressed) == (0, 4, 1)  # the bounce is left out
    assert len(transport.sent) == 4
