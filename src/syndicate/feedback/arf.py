"""RFC 5965 feedback reports (ARF): a reader marked a message as spam, through a feedback loop.

Feedback-Type `abuse` (and `fraud`, `virus`, `other`: the reader did not want it) is a
complaint. `auth-failure` is a DMARC/DKIM failure report about mail claiming to be ours, and
`not-spam` the opposite of a complaint: neither says anything against the reader, so both are
ignored. The complaining address is Original-Rcpt-To, else the original message's To; many
loops redact both, and then only the clues name the reader: Original-Mail-From (the VERP
envelope sender the message left with) and our X-Syndicate-Mail header in the original.
"""

from __future__ import annotations

from email.message import Message

from syndicate.feedback.mime import address, header, headers_from_text, one_line, part_text
from syndicate.feedback.model import FeedbackKind
from syndicate.feedback.reading import Finding, Reading

COMPLAINTS = frozenset({"abuse", "fraud", "virus", "other"})


def read_arf(report_part: Message, original: Message) -> Reading:
    """The complaint in a message/feedback-report part; `original` is the reported message's headers."""
    fields = _fields(report_part)
    kind = one_line(str(fields.get("Feedback-Type", "")), 40).lower() or "abuse"
    if kind not in COMPLAINTS:
        return Reading(ignored=f"not a complaint: {kind}")
    email = address(one_line(str(fields.get("Original-Rcpt-To", ""))))
    email = email or address(header(original, "To"))
    agent = one_line(str(fields.get("User-Agent", "")), 100)
    diagnostic = f"feedback report: {kind}" + (f" ({agent})" if agent else "")
    sender = address(one_line(str(fields.get("Original-Mail-From", ""))))
    finding = Finding(FeedbackKind.COMPLAINT, email, "", diagnostic)
    return Reading((finding,), envelope_sender=sender)


def _fields(part: Message) -> Message:
    """The report's fields: the parser keeps a message/feedback-report part as text."""
    try:
        payload = part.get_payload()
    except (ValueError, TypeError, AttributeError):
        return Message()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return headers_from_text(part_text(part))
