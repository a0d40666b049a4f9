"""Bounces that are not RFC 3464 DSNs, read by their words: one reader for every mailer's.

Plain-text notices from Exim, Postfix, qmail and Yahoo, Exchange/Outlook NDRs and Gmail's
older notices. A bounce is told by its sender (MAILER-DAEMON, postmaster, "Mail Delivery System"), Exim's
X-Failed-Recipients header, or its subject ("Undelivered Mail Returned to Sender",
"Undeliverable:", "Mail delivery failed", "failure notice", ...). Its text is cut where the
returned message begins (each mailer's own marker line); the failed recipients are
X-Failed-Recipients, else the addresses named before the cut (never the report's own
sender and addressees, nor a postmaster's); each recipient's status and words come from the
text between its first mention and the next recipient's, classified as feedback.classify
says. The original's Message-ID and X-Syndicate-Mail are read from the headers quoted after
the cut. A "still trying" warning (Exim's "has not yet been delivered", Postfix's "THIS IS
A WARNING ONLY") is a delay, not a failure (see feedback.dsn).

flufl.bounce 6.0 (GNU Mailman's detectors) was tried on the same samples (tests/data/bounces)
and not taken. Of the 16 bounces it found the failed address of 14 (not the Exchange 2007
NDR, not Postfix's plain "Host or domain name not found"); it called all three full
mailboxes (5.2.2, Yahoo's 554 "over quota" and 552 "mailbox full") permanent failures,
which would suppress readers for good; it gives no status code or diagnostic to store, and
reads neither ARF complaints nor auto-replies; and a detector's exception is raised to the
caller. The reader here gets every sample's address, status and kind right
(tests/test_feedback_reports.py) and costs no dependency.
"""

from __future__ import annotations

import re
from email.message import Message

from syndicate.feedback.classify import classify, enhanced_status, status_from_text
from syndicate.feedback.dsn import DELAYED
from syndicate.feedback.mime import (
    ADDRESS,
    MAX_ADDRESS,
    address,
    content_type,
    header,
    one_line,
    part_text,
    quoted_header,
)
from syndicate.feedback.reading import Finding, Reading
from syndicate.subscribers.verp import MAIL_REF_HEADER

MAX_RECIPIENTS = 50  # one message goes to one reader; a report naming more is read no further
_DAEMONS = re.compile(r"mailer-daemon|postmaster|mail delivery|mail administrator", re.I)
_SUBJECTS = re.compile(
    r"undeliver|returned to sender|returned mail|delivery (?:status notification|failure|has "
    r"failed)|mail delivery failed|failure notice|delivery failed|could not be delivered"
    r"|non[- ]?delivery|mail system error|فشل التسليم|تعذر التسليم|تحویل ناموفق|عدم تحویل",
    re.I,
)
_DELAYED = re.compile(
    r"has not yet been delivered|this is a warning only|will be retried|delivery attempts will "
    r"continue|delivery status notification \(delay\)|\bdelayed\b.*\bhours?\b|still being retried",
    re.I,
)
_GIVEN_UP = re.compile(r"permanent|given\s+up|giving\s+up|retry\s+time(?:out)?\s+exceeded", re.I)
_ORIGINAL = re.compile(
    r"^[ \t]*(?:-{2,}[^\n]*(?:copy of (?:the|your) message|original message|returned message|"
    r"undelivered message|below this line)[^\n]*|original message headers:?|-+ ?original "
    r"message ?-+)[ \t]*$",
    re.I | re.M,
)
# Words every failure notice has one of; a daemon's message without them (a "delivered"
# notice, a moderation hold) is no bounce.
_FAILURE = re.compile(
    r"could\s+not\s+be\s+delivered|couldn't\s+be\s+delivered|wasn't\s+delivered|not\s+delivered"
    r"|undeliver|delivery\s+(?:has\s+)?failed|failed\s+permanently|permanent\s+(?:error|failure)"
    r"|unable\s+to\s+deliver|(?:address|recipient)(?:\(es\))?\s+failed|returned\s+to\s+sender"
    r"|rejected|(?<!\d)[45]\d\d[\s-]",
    re.I,
)
_NOT_RECIPIENTS = re.compile(r"^(?:postmaster|mailer-daemon|abuse|hostmaster)@", re.I)
_HEADER_LINE = re.compile(r"^(?:from|sender|reply-to|return-path|to|cc|received):", re.I)


def read_nonstandard(message: Message, envelope_recipient: str) -> Reading | None:
    """The findings of a plain bounce notice, or None when `message` is not one."""
    failed_header = header(message, "X-Failed-Recipients")
    subject = header(message, "Subject")
    if not (failed_header or _DAEMONS.search(header(message, "From")) or _SUBJECTS.search(subject)):
        return None
    text = _report_text(message)
    found = _ORIGINAL.search(text)
    report, quoted = (text[: found.start()], text[found.end() :]) if found else (text, text)
    token = one_line(quoted_header(quoted, MAIL_REF_HEADER), 200)
    message_id = one_line(quoted_header(quoted, "Message-ID"), 250)
    delayed = _DELAYED.search(subject) or _DELAYED.search(report)
    if delayed and not _GIVEN_UP.search(report):
        return Reading(ignored=DELAYED)
    if not (failed_header or _FAILURE.search(report)):
        return None
    own = {address(header(message, name)).lower() for name in ("From", "To", "Delivered-To")}
    own.add(address(envelope_recipient).lower())
    recipients = _recipients(failed_header, report, own)
    findings = tuple(_finding(email, report, recipients) for email in recipients)
    if not findings:
        findings = (_finding("", report, []),)  # the clues may still name the reader
    return Reading(findings, mail_token=token, message_id=message_id)


def _report_text(message: Message, depth: int = 0) -> str:
    """The text of the notice itself: its text parts, never those of a returned message part."""
    kind = content_type(message)
    if kind == "message/rfc822" or depth > 20:
        return ""
    if message.is_multipart():
        payload = message.get_payload()
        inner = payload if isinstance(payload, list) else []
        return "\n".join(_report_text(p, depth + 1) for p in inner if isinstance(p, Message))
    if kind == "text/html":
        return re.sub(r"<[^>]{0,2000}>", " ", part_text(message))
    if kind.startswith("text/") or kind == "message/delivery-status":
        return part_text(message).replace("\r\n", "\n")
    return ""


def _recipients(failed_header: str, report: str, own: set[str]) -> list[str]:
    """The failed addresses: X-Failed-Recipients, else those the notice names, in order."""
    found: list[str] = []
    if failed_header:
        candidates = [address(piece) for piece in failed_header.split(",")]
    else:
        lines = (line for line in report.splitlines() if not _HEADER_LINE.match(line.strip()))
        candidates = [match.strip(".") for line in lines for match in ADDRESS.findall(line)]
    for candidate in candidates:
        if not candidate or len(candidate) > MAX_ADDRESS or _NOT_RECIPIENTS.match(candidate):
            continue
        if candidate.lower() in own or candidate.lower() in (seen.lower() for seen in found):
            continue
        found.append(candidate)
        if len(found) == MAX_RECIPIENTS:
            break
    return found


def _finding(email: str, report: str, recipients: list[str]) -> Finding:
    """`email`'s status and words, from the text about it."""
    segment = _segment(report, email, recipients)
    status = status_from_text(segment)
    diagnostic = _diagnostic(segment, enhanced_status(segment), email)
    return Finding(classify(status, segment), email, status, diagnostic)


def _segment(report: str, email: str, recipients: list[str]) -> str:
    """The text from `email`'s first mention to the next recipient's (the whole notice for one)."""
    lowered = report.lower()
    start = lowered.find(email.lower()) if email else -1
    if start < 0 or len(recipients) < 2:
        return report
    ends = [lowered.find(other.lower(), start + 1) for other in recipients if other != email]
    later = [end for end in ends if end > start]
    return report[start : min(later)] if later else report[start:]


def _diagnostic(segment: str, status: str, email: str) -> str:
    """The paragraph carrying the server's reply: its code, else the one naming `email`."""
    paragraphs = [one_line(p) for p in re.split(r"\n[ \t]*\n", segment) if p.strip()]
    for paragraph in paragraphs:
        if (status and status in paragraph) or re.search(r"(?<!\d)[45]\d\d[\s-]", paragraph):
            return paragraph
    for paragraph in paragraphs:
        if email and email.lower() in paragraph.lower() and paragraph.strip("<>:").lower() != email:
            return paragraph
    return paragraphs[0] if paragraphs else ""
