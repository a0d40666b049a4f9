"""Reports as they arrive in a bounce mailbox: bounces (DSNs), complaints (ARF), auto-replies."""

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
    original: bytes = b"",
) -> bytes:
    """An RFC 3464 report, sent to `to` (a VERP address), that mail to `failed` failed.

    `original` is the header block of the message that failed, returned as a relay returns
    it (text/rfc822-headers); by default a few headers that name nothing of ours.
    """
    reason = diagnostic.format(failed=failed)
    returned = original.rstrip(b"\r\n") or (
        f"From: Syndicate Demo News <news@site.example>\r\nTo: {failed}\r\nSubject: Daily digest"
    ).encode("ascii")
    report = (
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
    ).encode("ascii")
    return report + returned + f"\r\n\r\n--b{number}--\r\n".encode("ascii")


def arf(number: int, to: str, original: bytes, *, original_mail_from: str) -> bytes:
    """An RFC 5965 feedback report, sent to `to`: a reader marked the message `original` as spam.

    As many feedback loops do, it names the message's envelope sender (Original-Mail-From,
    the VERP address) and returns the whole message, but not the reader's address.
    """
    report = (
        f"From: Mail Feedback Loop <fbl@feedback.example.net>\r\n"
        f"To: {to}\r\n"
        f"Subject: Email Feedback Report for IP 127.0.0.1\r\n"
        f"Date: {format_datetime(WHEN)}\r\n"
        f"Message-ID: <arf-{number}@feedback.example.net>\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="f{number}"\r\n'
        f"\r\n"
        f"--f{number}\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f"This is an email abuse report for a message received from IP 127.0.0.1.\r\n"
        f"\r\n"
        f"--f{number}\r\n"
        f"Content-Type: message/feedback-report\r\n"
        f"\r\n"
        f"Feedback-Type: abuse\r\n"
        f"User-Agent: TestFBL/1.0\r\n"
        f"Version: 1\r\n"
        f"Original-Mail-From: <{original_mail_from}>\r\n"
        f"Arrival-Date: {format_datetime(WHEN)}\r\n"
        f"Source-IP: 127.0.0.1\r\n"
        f"Reported-Domain: news.example\r\n"
        f"\r\n"
        f"--f{number}\r\n"
        f"Content-Type: message/rfc822\r\n"
        f"Content-Disposition: inline\r\n"
        f"\r\n"
    ).encode("ascii")
    return report + original.rstrip(b"\r\n") + f"\r\n\r\n--f{number}--\r\n".encode("ascii")


def delivered(recipient: str, report: bytes) -> bytes:
    """`report` as a local delivery agent stores it for `recipient` (a pipe's flags D and R too)."""
    return f"Return-Path: <>\r\nDelivered-To: {recipient}\r\n".encode("ascii") + report


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
