"""Reading one report received as mail into the feedback it carries, or the reason it carries none.

Each format has its reader: feedback.arf (complaints), feedback.dsn (RFC 3464 delivery status
notifications), feedback.nonstandard (plain bounce notices) and feedback.autoreply
(out-of-office notices, ignored). This module tells which one a message is, in that order,
and adds what every format shares: the report's key (one event per report and recipient),
its date, and the clues that name the original message (the envelope recipient, our
X-Syndicate-Mail header and the Message-ID, from the returned message's part or quoted text).
Nothing here touches the store, and no bytes make it raise.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from syndicate.feedback.arf import read_arf
from syndicate.feedback.autoreply import AUTO_REPLY, is_auto_reply
from syndicate.feedback.dsn import read_dsn
from syndicate.feedback.mime import (
    address,
    header,
    one_line,
    original_headers,
    part_of_type,
    read_message,
)
from syndicate.feedback.model import Clues, Feedback, Provider
from syndicate.feedback.nonstandard import read_nonstandard
from syndicate.feedback.reading import Reading
from syndicate.subscribers.verp import MAIL_REF_HEADER

log = logging.getLogger(__name__)

NOT_A_REPORT = "not a report"
UNREADABLE = "unreadable"  # the reader itself failed on this message: a fault to look at


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """What one message said: feedback per recipient, or why it is none (`ignored`)."""

    feedback: tuple[Feedback, ...] = ()
    ignored: str = ""  # "auto-reply", "not a report", "delayed: not yet a failure", ...


def parse_report(raw: bytes, *, reference: str = "", envelope_recipient: str = "") -> ParsedReport:
    """The feedback in the report `raw`; `envelope_recipient` is the address it was delivered to.

    Without `envelope_recipient`, the report's Delivered-To, X-Original-To, Envelope-To or To
    header stands for it (a bounce is addressed to the original message's envelope sender:
    the VERP address).
    """
    try:
        return _parse(raw, reference, one_line(envelope_recipient, 320))
    except Exception as error:  # the last guard: one odd message stops nothing
        log.warning("report_unreadable reference=%s error=%s", reference, type(error).__name__)
        return ParsedReport(ignored=f"{UNREADABLE}: {type(error).__name__}")


def _parse(raw: bytes, reference: str, envelope_recipient: str) -> ParsedReport:
    message = read_message(raw)
    recipient = envelope_recipient or _delivered_to(message)
    original = original_headers(message)
    reading = _read(message, original, recipient)
    if reading.ignored:
        return ParsedReport(ignored=reading.ignored)
    clues = Clues(
        verp_recipient=reading.envelope_sender or recipient,
        mail_token=reading.mail_token or one_line(header(original, MAIL_REF_HEADER), 200),
        message_id=reading.message_id or _message_id(header(original, "Message-ID")),
    )
    has_clue = bool(clues.verp_recipient or clues.mail_token or clues.message_id)
    findings = [finding for finding in reading.findings if finding.email or has_clue]
    if not findings:
        return ParsedReport(ignored="names no recipient")
    key = _report_key(message, raw)
    occurred = _date(message)
    return ParsedReport(
        tuple(
            Feedback(
                Provider.MAIL, finding.kind, finding.email, f"mail:{key}:{finding.email}",
                occurred, status=finding.status, diagnostic=finding.diagnostic,
                reference=reference or key, clues=clues,
            )
            for finding in findings
        )
    )  # fmt: skip


def _read(message: Message, original: Message, recipient: str) -> Reading:
    """The reading of the one format `message` is in."""
    feedback_report = part_of_type(message, "message/feedback-report")
    if feedback_report is not None:
        return read_arf(feedback_report, original)
    status_part = part_of_type(message, "message/delivery-status")
    if status_part is not None:
        return read_dsn(status_part)
    bounce = read_nonstandard(message, recipient)
    if bounce is not None:
        return bounce
    if is_auto_reply(message):
        return Reading(ignored=AUTO_REPLY)
    return Reading(ignored=NOT_A_REPORT)


def _delivered_to(message: Message) -> str:
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        found = address(header(message, name))
        if found:
            return found
    return ""


def _message_id(value: str) -> str:
    """A Message-ID as the ledger keeps it, `<id@domain>`; empty when `value` is none."""
    found = value.split()
    return found[0][:250] if found and found[0].startswith("<") and found[0].endswith(">") else ""


def _report_key(message: Message, raw: bytes) -> str:
    """The report's Message-ID, or a digest of its bytes when it has none."""
    return _message_id(header(message, "Message-ID")) or "sha256:" + hashlib.sha256(raw).hexdigest()


def _date(message: Message) -> datetime:
    try:
        moment = parsedate_to_datetime(header(message, "Date"))
    except (TypeError, ValueError, OverflowError, IndexError):
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
