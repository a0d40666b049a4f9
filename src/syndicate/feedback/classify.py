"""Hard or soft: what a failure's status code and the remote server's words say about the address.

The enhanced status code (RFC 3463) decides first, and the words can overrule it, because
servers misuse codes: a full mailbox is often refused with 5.x.x (5.2.2 is "mailbox full"
by definition, and Yahoo says 554 "over quota"), yet the mailbox exists and will empty, so
it is soft; a 4.x.x code is temporary by definition, whatever its words. Words of a missing user or domain make a failure hard whatever its class. Soft
words win over hard ones: counting a full mailbox as gone would suppress a reader for good,
while a soft bounce that repeats is suppressed after `[bounces] soft_limit` anyway. A failure
nothing classifies is soft for the same reason.
"""

from __future__ import annotations

import re

from syndicate.feedback.model import FeedbackKind

# An enhanced status code, not a part of an IP address or version number (5.1.1.1, 1.5.1.1).
ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
# A basic SMTP reply code at a line's start or after a separator ("said: 550 ...", "#550 ...").
REPLY_CODE = re.compile(r"(?:^|[\s:#'\"(])([245][0-5]\d)(?=[\s-])")

SOFT_STATUSES = frozenset({"5.2.2", "5.2.3"})  # mailbox full; message too big for this mailbox
HARD_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})

_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |its |their )?"
    r"(?:storage |mailbox )?quota|\bquota\b|insufficient (?:system )?storage|mailbox size limit"
    r"|try (?:again )?later|temporar(?:y|ily)|greylist",
    re.IGNORECASE,
)
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox|address)|user not found"
    r"|recipient not found|recip(?:ient)?notfound|address (?:couldn't|could not) be found"
    r"|does not exist|doesn't exist|not a valid (?:mailbox|recipient)|invalid (?:recipient|mailbox)"
    r"|mailbox (?:not found|unavailable|does not exist)|account (?:has been |is )?disabled"
    r"|unrouteable address|domain not found|host not found|host or domain name not found"
    r"|no mx (?:record|for)|name service error|unknown (?:domain|host)|wasn't found at",
    re.IGNORECASE,
)


def enhanced_status(text: str) -> str:
    """The first enhanced status code in `text` (`5.1.1`), or empty."""
    found = ENHANCED_STATUS.search(text)
    return ".".join(found.groups()) if found else ""


def status_from_text(text: str) -> str:
    """A status for `text`: its enhanced code, else its class from a basic reply code (`5.0.0`)."""
    status = enhanced_status(text)
    if status:
        return status
    found = REPLY_CODE.search(text)
    return f"{found[1][0]}.0.0" if found else ""


def classify(status: str, text: str) -> FeedbackKind:
    """HARD or SOFT for a failure with enhanced `status` (may be empty) and the server's `text`."""
    if status.startswith("4") or status in SOFT_STATUSES or _SOFT_WORDS.search(text):
        return FeedbackKind.SOFT
    if status in HARD_STATUSES or _HARD_WORDS.search(text):
        return FeedbackKind.HARD
    return FeedbackKind.HARD if status.startswith("5") else FeedbackKind.SOFT
