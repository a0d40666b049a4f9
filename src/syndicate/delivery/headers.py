"""Header fields as bytes that no caller's text can break out of, and the addresses they carry.

Text meant for people (a subject, a display name, a list's name) loses its control characters
and travels as itself: atoms or one quoted string when it is plain ASCII, else RFC 2047 encoded
words of its literal text. A name that merely looks like an encoded word ("=?utf-8?q?...?=") is
encoded too, so no reader can decode it into something else: readers decode encoded words even
inside quoted strings (Python's email package does). Addresses, URLs and ids must have the
exact shape their header needs, or `MessageError` is raised.

An address is plain ASCII, or internationalised (RFC 6531): a UTF-8 local part, which only a
server offering SMTPUTF8 takes and only an RFC 6532 header (raw UTF-8) can carry. A domain is
always written in A-labels (IDNA), which every server takes, so an IDN domain alone never needs
SMTPUTF8.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from functools import lru_cache

import idna

LINE = 78  # header lines are folded to this length wherever a space allows (RFC 5322 2.1.1)
NAME_LIMIT = 256  # characters of a display name kept; more only makes a longer header
LOCAL_LIMIT = 64  # octets of a local part (RFC 5321 4.5.3.1.1)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_BLANKS = re.compile(" {2,}")
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL = rf"[.{_ATEXT}]{{1,64}}"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"(?=[A-Za-z0-9.-]{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*"
# A dot-atom local part of at most 64 characters (RFC 5321 4.1.2, 4.5.3.1.1) at a domain of
# LDH labels: what every server takes and every reader parses back as the same address.
_ADDRESS = re.compile(rf"(?=[^@]{{1,64}}@)[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@{_DOMAIN}")
_DOMAIN_ONLY = re.compile(_DOMAIN)
_HOST_ONLY = re.compile(_HOST)
_ATOM = re.compile(rf"[{_ATEXT}]+")
_MESSAGE_ID = re.compile(rf"<{_LOCAL}@{_HOST}>")
_LIST_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]{1,900}")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")  # a phrase that needs no quotes
# Gmail's Feedback Loop: "a:b:c:SenderId", up to four identifiers, the last naming the sender.
_FEEDBACK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}(?::[A-Za-z0-9._-]{1,64}){0,3}")
# A VERP token as subscribers.verp mints it: lower-case base32, no padding.
_MAIL_TOKEN = re.compile(r"[a-z2-7]{1,80}")
# The name subscribers.verp.MAIL_REF_HEADER gives it; the two rooms may not import each other,
# so tests/test_verp_mail.py holds the names equal.
MAIL_REF_NAME = "X-Syndicate-Mail"
# The same token for Postmark, which removes X-PM-* headers before delivery and hands this one
# back in its webhooks' Metadata ("syndicate-mail"): its events carry no headers of the message.
POSTMARK_METADATA_NAME = "X-PM-Metadata-syndicate-mail"
# Unicode categories a non-ASCII character of a local part may not have: controls, formats,
# surrogates, private use, unassigned (C*), and separators (Z*), which no address holds.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
# An encoded word of 42 bytes is 68 characters, so "Subject: " and one word fit in LINE.
_WORD_BYTES = 42


class MessageError(ValueError):
    """An address, URL, id or date that cannot be put in a header as it is."""


# Addresses -------------------------------------------------------------------------------


def checked_address(address: str) -> str:
    """`address` if it is a plain ASCII address (local@domain) that is safe in any header."""
    if not _ADDRESS.fullmatch(address) or "=?" in address:
        raise MessageError(f"not a usable email address: {address!r}")
    return address


def mail_address(address: str) -> str:
    """`address` as envelopes and headers carry it: its domain in A-labels; MessageError if unusable.

    Plain ASCII addresses pass as they are. An internationalised one keeps its UTF-8 local
    part (see `needs_smtputf8`); a domain in U-labels, which only an address that bypassed the
    subscriber checks can have, is converted to A-labels.
    """
    if _ADDRESS.fullmatch(address) and "=?" not in address:
        return address
    local, at, domain = address.rpartition("@")
    if not at or not _local_part(local):
        raise MessageError(f"not a usable email address: {address!r}")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise MessageError(f"not a usable email domain: {address!r}") from None
    if not _DOMAIN_ONLY.fullmatch(domain):
        raise MessageError(f"not a usable email domain: {address!r}")
    return f"{local}@{domain}"


def needs_smtputf8(address: str) -> bool:
    """Whether a (checked) address has a UTF-8 local part, which needs SMTPUTF8 (RFC 6531)."""
    return not address.isascii()


def _local_part(local: str) -> bool:
    """Whether `local` is a dot-atom of ASCII atext and safe non-ASCII characters (RFC 6531)."""
    if not local or len(local.encode("utf-8", "surrogatepass")) > LOCAL_LIMIT or "=?" in local:
        return False
    for atom in local.split("."):
        if not atom:
            return False
        for char in atom:
            if char.isascii():
                if not _ATOM.fullmatch(char):
                    return False
            elif unicodedata.category(char) in _UNSAFE:
                return False
    return True


def make_message_id(domain: str) -> str:
    """A new, unique Message-ID at `domain`: 128 random bits, so no two sends ever collide."""
    if not _HOST_ONLY.fullmatch(domain):
        raise MessageError(f"not a domain for a Message-ID: {domain!r}")
    return f"<{secrets.token_hex(16)}@{domain}>"


def checked_message_id(message_id: str) -> str:
    """`message_id` if it has the shape "<local@domain>"."""
    if not _MESSAGE_ID.fullmatch(message_id):
        raise MessageError(f"not a Message-ID: {message_id!r}")
    return message_id


# Fields ----------------------------------------------------------------------------------


def header(name: str, tokens: Iterable[str], *, utf8: bool = False) -> bytes:
    """`Name: tokens`, folded at the spaces between tokens to keep lines within LINE.

    Only a field carrying an internationalised address is `utf8` (RFC 6532); any other field
    holding a non-ASCII character is a bug, and encoding it fails loudly.
    """
    lines: list[str] = []
    line = name + ":"
    first = True
    for token in tokens:
        if not first and len(line) + 1 + len(token) > LINE:
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
        first = False
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8" if utf8 else "ascii")


def clean(text: str) -> str:
    """Text for people, on one line: control characters become spaces, runs of spaces one."""
    return _BLANKS.sub(" ", _CONTROL.sub(" ", text)).strip(" ")


def person(name: str) -> str:
    """A display name as a header shows it: at most NAME_LIMIT characters, on one line."""
    return clean(name[:NAME_LIMIT])


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 B-encoded UTF-8 words, each whole characters and within LINE."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        length = len(char.encode("utf-8"))
        if size + length > _WORD_BYTES:
            words.append(_encoded_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    if chunk:
        words.append(_encoded_word("".join(chunk)))
    return words


def _encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def unstructured(text: str) -> list[str]:
    """Tokens of an unstructured value (Subject): plain words when ASCII allows, else encoded."""
    if text.isascii() and "=?" not in text:
        words = text.split(" ")
        if all(len(word) <= LINE - 2 for word in words):
            return words
    return _encoded_words(text)


def phrase(name: str) -> list[str]:
    """Tokens of a display name: atoms or one quoted string when ASCII, else encoded words.

    An ASCII name stays readable whatever its length (NAME_LIMIT keeps the line under 998).
    A name holding "=?" is encoded whatever it holds: as atoms or in quotes, a reader would
    decode what looks like an encoded word into text the name never had.
    """
    if not name:
        return []
    if name.isascii() and "=?" not in name:
        if _ATOMS.fullmatch(name):
            return name.split(" ")
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encoded_words(name)


def mailbox(name: str, address: str) -> list[str]:
    """Tokens of `name <address>`, or of the bare address when there is no name."""
    return [*phrase(name), f"<{address}>"] if name else [address]


def to_header(name: str, address: str) -> bytes:
    """The To field of one recipient: RFC 6532 UTF-8 only when the address needs it."""
    address = mail_address(address)
    return header("To", mailbox(person(name), address), utf8=needs_smtputf8(address))


@lru_cache(maxsize=64)
def sender(from_address: str) -> tuple[bytes, str]:
    """The From header and the sender's domain, for a "Name <address>" or a bare address."""
    text = _CONTROL.sub(" ", from_address).strip()
    name, address = parseaddr(text)
    if not (text == checked_address(address) or text.endswith(f"<{address}>")):
        raise MessageError(f"not a From address (Name <address>): {from_address!r}")
    return header("From", mailbox(person(name), address)), address.rpartition("@")[2]


@lru_cache(maxsize=64)
def subject(text: str) -> bytes:
    """The Subject field."""
    return header("Subject", unstructured(clean(text)))


@lru_cache(maxsize=64)
def list_id(identifier: str, name: str) -> bytes:
    """The List-Id field (RFC 2919): the list's name and its id."""
    if not _LIST_ID.fullmatch(identifier):
        raise MessageError(f"not a List-Id (label.domain): {identifier!r}")
    return header("List-Id", [*phrase(person(name)), f"<{identifier}>"])


def list_unsubscribe(url: str, mailto: str) -> bytes:
    """The List-Unsubscribe field: the https URL, then the mailto address."""
    if not _URL.fullmatch(url):
        raise MessageError(f"not an http(s) URL fit for List-Unsubscribe: {url!r}")
    return header("List-Unsubscribe", [f"<{url}>,", f"<mailto:{mailto}?subject=unsubscribe>"])


@lru_cache(maxsize=64)
def feedback_id(value: str) -> bytes:
    """The Feedback-ID field of Gmail's Feedback Loop, or nothing for an empty value."""
    if not value:
        return b""
    if not _FEEDBACK_ID.fullmatch(value):
        raise MessageError(f"not a Feedback-ID (a:b:c:SenderId): {value!r}")
    return header("Feedback-ID", [value])


def mail_ref(token: str, *, postmark: bool = False) -> bytes:
    """The X-Syndicate-Mail field naming the message by its VERP token, or nothing for none.

    With `postmark`, also Postmark's metadata field carrying the same token.
    """
    if not token:
        return b""
    if not _MAIL_TOKEN.fullmatch(token):
        raise MessageError(f"not a mail token: {token!r}")
    fields = header(MAIL_REF_NAME, [token])
    return fields + header(POSTMARK_METADATA_NAME, [token]) if postmark else fields


def date(moment: datetime | None) -> bytes:
    """The Date field's value: `moment`, which must know its zone, or now."""
    if moment is None:
        return _date_of_second(int(time.time()))
    if moment.utcoffset() is None:
        raise MessageError(f"a message date needs a time zone: {moment.isoformat()}")
    return format_datetime(moment).encode("ascii")


@lru_cache(maxsize=2)
def _date_of_second(second: int) -> bytes:
    """The Date of messages made now: a Date names whole seconds, so it is written once a second."""
    return format_datetime(datetime.fromtimestamp(second, UTC)).encode("ascii")
