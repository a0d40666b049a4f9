"""Reading the parts of a report safely: header text, body text, addresses, the original's headers.

Reports are untrusted bytes from anywhere. Everything here reads with the lenient compat32
parser and decodes by hand, so a malformed header or an unknown charset yields less text,
never an exception; and every value leaves as one line of plain data (control characters
and line breaks folded away, length bounded), so nothing read can become a header or a
second output line.
"""

from __future__ import annotations

import contextlib
import re
from email import message_from_bytes, message_from_string, policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message

MAX_VALUE = 1_000  # characters of any one value kept (a diagnostic, a subject)
MAX_ADDRESS = 254  # an address longer than SMTP allows is no address
MAX_PARTS = 1_000  # parts of a report looked at; a report has a handful
MAX_TEXT = 200_000  # characters of a body read for clues; a report's words come first
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_QUOTED_ID = re.compile(r"^\s*message-id:\s*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)


def one_line(value: str, limit: int = MAX_VALUE) -> str:
    """`value` as one line of data: control characters and runs of white space become a space."""
    return " ".join(_CONTROLS.sub(" ", value).split())[:limit]


def read_message(raw: bytes) -> Message:
    """The message in `raw`, read leniently (compat32 never refuses what it cannot parse)."""
    return message_from_bytes(raw, policy=policy.compat32)


def header(message: Message, name: str) -> str:
    """The header `name` decoded (RFC 2047 words too) as one line; empty when absent or unreadable."""
    try:
        value = message.get(name)
        if value is None:
            return ""
        text = str(value)
        # A broken encoded word keeps its raw text: still worth reading.
        with contextlib.suppress(ValueError, LookupError, UnicodeError, MessageError):
            text = str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError, TypeError, AttributeError, IndexError):
        return ""
    return one_line(text)


def content_type(part: Message) -> str:
    """The part's content type, lower case; text/plain when it cannot be read."""
    try:
        return part.get_content_type()
    except (ValueError, TypeError, AttributeError, IndexError):
        return "text/plain"


def parts(message: Message) -> list[Message]:
    """Every part of `message`, itself first, depth first; a broken structure stops the walk."""
    found: list[Message] = []
    try:
        for part in message.walk():
            found.append(part)
    except (ValueError, TypeError, AttributeError, IndexError, RecursionError):
        pass
    return found


def report_parts(message: Message) -> list[Message]:
    """The parts of the report itself: every part but those inside a returned message."""
    found: list[Message] = []
    waiting = [message]
    while waiting and len(found) < MAX_PARTS:
        part = waiting.pop()
        found.append(part)
        if content_type(part) == "message/rfc822" or not part.is_multipart():
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            waiting.extend(reversed([inner for inner in payload if isinstance(inner, Message)]))
    return found


def part_of_type(message: Message, kind: str) -> Message | None:
    """The report's first part of content type `kind` (not one inside a returned message)."""
    return next((part for part in report_parts(message) if content_type(part) == kind), None)


def part_text(part: Message) -> str:
    """A non-multipart part's content as text, decoded by its charset (replacement on error)."""
    try:
        payload = part.get_payload(decode=True)
        if payload is None:
            inner = part.get_payload()
            return inner[:MAX_TEXT] if isinstance(inner, str) else ""
        charset = part.get_content_charset() or "utf-8"
        try:
            return bytes(payload)[:MAX_TEXT].decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return bytes(payload)[:MAX_TEXT].decode("utf-8", errors="replace")
    except (ValueError, TypeError, AttributeError, AssertionError, UnicodeError):
        return ""


def body_text(message: Message) -> str:
    """The text of the message's text/plain parts (else text/html, tags dropped), joined."""
    texts = [part_text(p) for p in parts(message) if content_type(p) == "text/plain"]
    if not any(text.strip() for text in texts):
        html = [part_text(p) for p in parts(message) if content_type(p) == "text/html"]
        texts = [re.sub(r"<[^>]{0,2000}>", " ", text) for text in html]
    return "\n".join(texts)[:MAX_TEXT]


def headers_from_text(text: str) -> Message:
    """Headers written out as text (a text/rfc822-headers part, a feedback report's fields)."""
    try:
        return message_from_string(text, policy=policy.compat32)
    except (ValueError, TypeError, AttributeError, IndexError):
        return Message()


def original_headers(message: Message) -> Message:
    """The headers of the message a report is about, from a message/rfc822 or headers part."""
    for part in parts(message)[1:]:
        kind = content_type(part)
        if kind == "message/rfc822":
            try:
                inner = part.get_payload()
            except (ValueError, TypeError, AttributeError):
                continue
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind == "text/rfc822-headers":
            return headers_from_text(part_text(part))
    return Message()


def quoted_header(text: str, name: str) -> str:
    """A header's value quoted back as text inside a body (`Name: value` at a line's start)."""
    if name.lower() == "message-id":
        found = _QUOTED_ID.search(text)
        return found[1] if found else ""
    pattern = rf"^\s*{re.escape(name)}:[ \t]*([^\s]{{1,200}})[ \t]*$"
    found = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
    return found[1] if found else ""


def address(value: str) -> str:
    """The one address in `value` (`rfc822; a@b`, `<a@b>`, `Name <a@b>`), or empty."""
    found = ADDRESS.search(value)
    if found is None or len(found[0]) > MAX_ADDRESS:
        return ""
    return found[0].strip(".")
