"""Reading one report received as mail into the feedback it carries, or the reason it carries none.

This module reads RFC 3464 delivery status notifications; other report formats (ARF complaints,
the common non-standard bounces) and auto-replies are told apart here too as they are added.
Every message read yields a `ParsedReport`: its feedback, one per recipient it reports on, or
why it was ignored. Nothing here touches the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.subscribers.verp import MAIL_REF_HEADER


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """What one message said: feedback per recipient, or why it is none (`ignored`)."""

    feedback: tuple[Feedback, ...] = ()
    ignored: str = ""  # "auto-reply", "not a report", ...


def parse_report(raw: bytes, *, reference: str = "", envelope_recipient: str = "") -> ParsedReport:
    """The feedback in the report `raw`; `envelope_recipient` is the address it was delivered to.

    Without `envelope_recipient`, the report's Delivered-To, X-Original-To or To header stands
    for it (a bounce is addressed to the original message's envelope sender: the VERP address).
    """
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    recipient = envelope_recipient or _delivered_to(message)
    key = _report_key(message, raw)
    occurred = _date(message)
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        return ParsedReport(ignored="not a report")
    original = _original_headers(message)
    clues = Clues(
        verp_recipient=recipient,
        mail_token=str(original.get(MAIL_REF_HEADER, "") or "").strip(),
        message_id=str(original.get("Message-ID", "") or "").strip(),
    )
    found = tuple(
        Feedback(
            Provider.MAIL,
            kind,
            email,
            f"mail:{key}:{email}",
            occurred,
            status=status,
            diagnostic=diagnostic,
            reference=reference or key,
            clues=clues,
        )
        for kind, email, status, diagnostic in _dsn_recipients(status_part)
    )
    return ParsedReport(found) if found else ParsedReport(ignored="no failed recipient")


def _delivered_to(message: Message) -> str:
    for name in ("Delivered-To", "X-Original-To", "To"):
        value = str(message.get(name, "") or "").strip()
        if value:
            return value.split(",")[0].strip()
    return ""


def _report_key(message: Message, raw: bytes) -> str:
    """The report's Message-ID, or a digest of its bytes when it has none."""
    message_id = str(message.get("Message-ID", "") or "").strip()
    return message_id or "sha256:" + hashlib.sha256(raw).hexdigest()


def _date(message: Message) -> datetime:
    try:
        moment = parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _original_headers(message: Message) -> Message:
    """The headers of the message the report is about (a message/rfc822 or headers part)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            return message_from_bytes(bytes(text), policy=policy.default)
    return Message()


def _dsn_recipients(part: Message) -> Iterator[tuple[FeedbackKind, str, str, str]]:
    """Each reported recipient's (kind, address, status, diagnostic) from a delivery-status part."""
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return
    for block in blocks[1:]:  # the first block is about the message, the rest one per recipient
        if not isinstance(block, Message):
            continue
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip().split(" ")[0]
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        email = recipient.partition(";")[2].strip() or recipient.strip()
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).partition(";")[2].split())
        if not email:
            continue
        if action == "failed":
            kind = FeedbackKind.SOFT if status.startswith("4") else FeedbackKind.HARD
        elif action == "delivered":
            kind = FeedbackKind.DELIVERED
        else:  # delayed, relayed, expanded: nothing has failed yet
            continue
        yield kind, email, status, diagnostic
