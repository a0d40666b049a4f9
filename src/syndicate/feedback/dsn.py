"""RFC 3464 delivery status notifications: per recipient, its Action, Status and Diagnostic-Code.

`failed` is a bounce, hard or soft by its status and words (feedback.classify). `delayed` is
not a failure yet: the reporting server is still trying and will send a `failed` DSN if it
gives up, so a delay records nothing (a report of nothing but delays is ignored as
`delayed: not yet a failure`); counting delays as soft bounces would suppress readers whose
mail merely arrived late. `delivered` is recorded (a delivery resets the soft-bounce count);
`relayed` and `expanded` say nothing about the reader's mailbox and record nothing.
"""

from __future__ import annotations

from email.message import Message

from syndicate.feedback.classify import classify, status_from_text
from syndicate.feedback.mime import address, headers_from_text, one_line, part_text
from syndicate.feedback.model import FeedbackKind
from syndicate.feedback.reading import Finding, Reading

DELAYED = "delayed: not yet a failure"


def read_dsn(status_part: Message) -> Reading:
    """The findings of a message/delivery-status part, one per failed or delivered recipient."""
    findings: list[Finding] = []
    delayed = False
    for block in _recipient_blocks(status_part):
        action = one_line(str(block.get("Action", ""))).lower()
        if action == "delayed":
            delayed = True
            continue
        email = _recipient(block)
        if not email or action not in ("failed", "delivered"):
            continue
        diagnostic = _diagnostic(block)
        status = _status(block) or status_from_text(diagnostic)
        if action == "delivered":
            findings.append(Finding(FeedbackKind.DELIVERED, email, status, diagnostic))
        else:
            findings.append(Finding(classify(status, diagnostic), email, status, diagnostic))
    if findings:
        return Reading(tuple(findings))
    return Reading(ignored=DELAYED if delayed else "no failed recipient")


def _recipient_blocks(part: Message) -> list[Message]:
    """The per-recipient field blocks (the first block is about the message as a whole)."""
    try:
        blocks = part.get_payload()
    except (ValueError, TypeError, AttributeError):
        return []
    if isinstance(blocks, list):
        return [block for block in blocks[1:] if isinstance(block, Message)]
    # A part the parser left as text (a transfer encoding on it, say): read its blocks here.
    text = part_text(part).replace("\r\n", "\n")
    return [headers_from_text(block) for block in text.split("\n\n")[1:] if block.strip()]


def _recipient(block: Message) -> str:
    for name in ("Final-Recipient", "Original-Recipient", "X-Actual-Recipient"):
        found = address(one_line(str(block.get(name, ""))))
        if found:
            return found
    return ""


def _status(block: Message) -> str:
    """The Status field's code (`5.1.1`), or empty when it is not one."""
    field = one_line(str(block.get("Status", ""))).split(" ")[0]
    pieces = field.split(".")
    if len(pieces) == 3 and pieces[0] in ("2", "4", "5") and all(p.isdigit() for p in pieces):
        return field[:16]
    return ""


def _diagnostic(block: Message) -> str:
    """The remote server's words: Diagnostic-Code without its type (`smtp;`), or Exim's own."""
    for name in ("Diagnostic-Code", "X-Exim-Diagnostic", "X-Postfix-Diagnostic"):
        value = one_line(str(block.get(name, "")))
        if value:
            kind, separator, words = value.partition(";")
            return one_line(words) if separator and " " not in kind.strip() else value
    return ""
