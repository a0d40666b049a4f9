"""Reports as they arrive in a bounce mailbox: delivery status notifications and auto-replies."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

WHEN = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def dsn(
    number: int,
    to: str,
    failed: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "550 5.1.1 <{failed}>: Recipient address rejected: User unknown",
) -> bytes:
    """An RFC 3464 report, sent to `to` (a VERP address), that mail to `failed` failed."""
    reason = diagnostic.format(failed=failed)
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(WHEN)}\r\n"
        f"Message-ID: <dsn-{number}@mx.example.org>\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b{number}"\r\n'
        f"\r\n"
        f"--b{number}\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f"Your message could not be delivered to {failed}.\r\n"
        f"\r\n"
        f"--b{number}\r\n"
        f"Content-Type: message/delivery-status\r\n"
        f"\r\n"
        f"Reporting-MTA: dns; mx.example.org\r\n"
        f"\r\n"
        f"Final-Recipient: rfc822; {failed}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {reason}\r\n"
        f"\r\n"
        f"--b{number}\r\n"
        f"Content-Type: text/rfc822-headers\r\n"
        f"\r\n"
        f"From: Syndicate Demo News <news@site.example>\r\n"
        f"To: {failed}\r\n"
        f"Subject: Daily digest\r\n"
        f"\r\n"
        f"--b{number}--\r\n"
    ).encode("ascii")


def auto_reply(number: int, to: str) -> bytes:
    """An out-of-office answer: no report, nothing to record."""
    return (
        f"From: Ada <ada@example.org>\r\n"
        f"To: {to}\r\n"
        f"Subject: Out of office\r\n"
        f"Date: {format_datetime(WHEN)}\r\n"
        f"Message-ID: <away-{number}@example.org>\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"\r\n"
        f"I am away until Monday.\r\n"
    ).encode("ascii")
