"""Reading messages back as mail readers do: for tests of what the builders and transports make."""

from __future__ import annotations

import re
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.message import EmailMessage


def crlf(raw: bytes) -> bytes:
    """`raw` with CRLF line ends (a Maildir file has LF ones)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def read_back(raw: bytes) -> EmailMessage:
    """The message parsed by the email package; an RFC 6532 (UTF-8) header is read as text.

    (Its bytes parser reads every header as ASCII, turning UTF-8 into undecodable bytes.) The
    body stays bytes to the parser (escaped), so an 8bit part decodes by its own charset.
    """
    head, blank, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    if head.isascii():
        message = message_from_bytes(raw, policy=policy.default)
    else:
        text = head.decode("utf-8") + (blank + body).decode("ascii", "surrogateescape")
        message = message_from_string(text, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def shown_name(raw: bytes, field: str) -> str:
    """The display name of the mailbox in `field` as an RFC 2047 reader shows it.

    The email package's modern parser puts a space between adjacent encoded words of a
    display name, which RFC 2047 6.2 says to drop, so encoded names are decoded by the legacy
    decoder, which follows the RFC; plain and quoted names by the modern parser.
    """
    found = re.search(
        rb"^" + field.encode() + rb": (.*?)\r\n(?! )", crlf(raw), re.MULTILINE | re.DOTALL
    )
    assert found is not None, f"no {field} field"
    unfolded = found.group(1).decode("utf-8").replace("\r\n ", " ")
    phrase = unfolded.rpartition(" <")[0] if unfolded.endswith(">") else ""
    if phrase.startswith("=?"):
        return str(make_header(decode_header(phrase)))
    return str(read_back(raw)[field].addresses[0].display_name)
