"""A real Postfix bounces a digest to its VERP address, and that report suppresses the right reader.

Syndicate sends an edition through its own SMTP transport to a private Postfix, which relays to
an aiosmtpd next hop that refuses one reader (550 5.1.1). Postfix itself then writes the
delivery status notification and sends it to the message's envelope sender, the VERP address;
the next hop takes it. Delivered into the bounce Maildir and read by the service's poller, it
is attributed to the refused reader and the edition, and the address is suppressed.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select

from syndicate.delivery.ledger import send_edition
from syndicate.delivery.smtp import SmtpTransport
from syndicate.send.plan import plan_send
from syndicate.service.bounce_mailboxes import read_bounce_mailboxes
from syndicate.settings import MailSettings, Settings, SmtpSettings
from syndicate.store.leases import holder_name
from syndicate.store.schema import feedback_event
from syndicate.subscribers import registry
from syndicate.subscribers.verp import MailRef, Verp
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.postfix import Postfix
from tests.support.smtp_server import Received, Serve
from tests.support.subscribers import add_subscribers
from tests.support.waiting import PATIENCE, wait_for

SECRET = "the secret the postfix test signs with"
BOUNCES = "bounces@news.example"
REFUSAL = "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"


def report_to_verp(received: list[Received]) -> Received | None:
    """The message the next hop took for a VERP address, if one came yet."""
    for message in received:
        if any(rcpt.startswith("bounces+") for rcpt in message.recipients):
            return message
    return None


def test_postfix_bounces_to_the_verp_address_and_the_report_suppresses_the_reader(
    sqlite_engine: Engine,
    serve: Serve,
    postfix_relay: Callable[[int], Postfix],
    tmp_path: Path,
) -> None:
    """Postfix's own DSN comes back to bounces+TOKEN@…, naming reader and edition; it suppresses."""
    next_hop, hop = serve()
    next_hop.refuse = {"gone@example.org": REFUSAL}
    postfix = postfix_relay(hop.port)
    settings = Settings(
        security={"secret_key": SECRET},  # type: ignore[arg-type]
        mail=MailSettings(
            transport="smtp",
            bounce_address=BOUNCES,
            smtp=SmtpSettings(host="127.0.0.1", port=postfix.port, retries=0, timeout=30),
        ),
        bounces={"maildir": str(tmp_path / "bounces")},  # type: ignore[arg-type]
    )
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    add_subscribers(sqlite_engine, ["kept@example.org", "gone@example.org"])
    plan = plan_send(sqlite_engine, settings, edition, SmtpTransport(settings.mail.smtp), None)
    report = send_edition(sqlite_engine, plan, holder=holder_name())
    assert (report.sent, report.failed) == (2, 0), "Postfix takes both; it bounces one later"

    found = wait_for(
        lambda: report_to_verp(next_hop.received), PATIENCE, "Postfix's DSN to the VERP address"
    )
    assert isinstance(found, Received), postfix.log()
    gone = registry.find_by_email(sqlite_engine, "gone@example.org")
    kept = registry.find_by_email(sqlite_engine, "kept@example.org")
    assert gone is not None
    assert kept is not None
    verp = Verp(SECRET)
    [verp_address] = found.recipients
    assert verp.read_address(BOUNCES, verp_address) == MailRef(gone.pk, edition.id)
    assert found.sender == "<>", "a DSN goes out with the null sender"
    assert b"report-type=delivery-status" in found.content
    token = verp_address.partition("+")[2].partition("@")[0]
    assert f"\nX-Syndicate-Mail: {token}\r\n".encode() in found.content, "quoted back whole"
    [digest] = [
        message for message in next_hop.received if "kept@example.org" in message.recipients
    ]
    assert verp.read_address(BOUNCES, digest.sender) == MailRef(kept.pk, edition.id)

    # Delivered into the bounce Maildir as a local delivery agent writes it, and polled.
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(f"Return-Path: <>\nDelivered-To: {verp_address}\n".encode() + found.content)
    [reading] = read_bounce_mailboxes(sqlite_engine, settings)
    assert (reading.messages, reading.recorded, reading.failed) == (1, 1, 0), reading.error
    assert registry.suppression_reason(sqlite_engine, "gone@example.org") == "bounced"
    assert not registry.is_suppressed(sqlite_engine, "kept@example.org")
    with sqlite_engine.connect() as connection:
        [event] = connection.execute(
            select(
                feedback_event.c.kind, feedback_event.c.email, feedback_event.c.subscriber_pk,
                feedback_event.c.edition_id, feedback_event.c.status,
                feedback_event.c.diagnostic,
            )
        ).all()  # fmt: skip
    assert event[:5] == ("hard", "gone@example.org", gone.pk, edition.id, "5.1.1")
    assert "User unknown" in event.diagnostic
