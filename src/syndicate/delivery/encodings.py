"""Content transfer encodings of text bodies: quoted-printable, base64, and text as it reads.

Quoted-printable and base64 are made by `binascii`, with what DKIM's relaxed canonical form and
SMTP's dot-stuffing would change written as escapes, so a body leaves exactly as encoded. A
text a person is meant to read in the raw message (a notice's link) goes 7bit or 8bit
instead, and `seven_bit` re-encodes it for a server that takes no 8-bit data.
"""

from __future__ import annotations

import binascii
import re
import struct
from itertools import chain

from syndicate.delivery.headers import MessageError

CRLF = b"\r\n"
MAX_LINE_OCTETS = 998  # RFC 5322 2.1.1, without the CRLF
_BASE64_BLOCK = struct.Struct("76s" * 64)  # 64 lines of base64
# What a body sent as it is may not hold (see `encode_readable`).
_NOT_AS_IS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]|  | \n|^\.", re.MULTILINE)
# A part sent 8bit, up to the CRLF before its boundary delimiter ("=_" and 30 hex digits).
_EIGHT_BIT_PART = re.compile(
    rb"(Content-Transfer-Encoding: )8bit\r\n\r\n(.*?)(?=\r\n--=_[0-9a-f]{30}[-\r])", re.DOTALL
)


def lf_only(text: str) -> str:
    """`text` with every line break (CRLF, CR) an LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def encode_body(text: str) -> tuple[bytes, bytes]:
    """The transfer encoding and encoded bytes (ending in CRLF) of a text body.

    Quoted-printable when that is shorter (mostly ASCII text), base64 otherwise, as
    email.message chooses; the text always ends with a line break, as email.message makes it.
    """
    text = lf_only(text)
    text += "" if text.endswith("\n") else "\n"
    data = text.encode("utf-8", "replace")
    if quoted_printable_is_shorter(len(data), len(text)):
        return b"quoted-printable", CRLF.join([encode_line(line) for line in data.split(b"\n")])
    return b"base64", base64_lines(data.replace(b"\n", CRLF))


def quoted_printable_is_shorter(size: int, chars: int) -> bool:
    """Whether `size` bytes of UTF-8 holding `chars` characters are shorter quoted-printable."""
    # UTF-8 adds one byte for most non-ASCII letters (two for some), each written as =XX twice.
    escaped = 2 * (size - chars)
    return size + 2 * escaped + size // 25 <= size * 4 // 3 + size // 38


def base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ending with CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    # Cutting 3,000 lines one slice at a time costs twice what struct's unpacking of 64 at a
    # time costs (both in C); the last, partial block is sliced.
    whole = len(encoded) - len(encoded) % _BASE64_BLOCK.size
    lines = list(chain.from_iterable(_BASE64_BLOCK.iter_unpack(memoryview(encoded)[:whole])))
    lines.extend(encoded[start : start + 76] for start in range(whole, len(encoded), 76))
    lines.append(b"")
    return CRLF.join(lines)


def encode_line(line: bytes, continued: bool = False) -> bytes:
    """One line of text as quoted-printable lines of at most 76 characters, CRLF between them.

    binascii encodes; then what relaxed DKIM canonicalisation would rewrite for every message
    signed (tabs, runs of spaces) and what SMTP would dot-stuff (a "." starting a line) are
    written as escapes here, and the line is wrapped again. A `continued` line is followed by
    a soft line break, so its last line leaves room for the "=".
    """
    logical = binascii.b2a_qp(line, istext=True).replace(b"=\n", b"")  # unwrapped
    logical = logical.replace(b"\t", b"=09").replace(b"  ", b" =20")  # no two spaces touch
    wrapped = []
    start, end = 0, len(logical)
    while True:
        dot = start < end and logical[start] == 0x2E  # "." becomes "=2E", two longer
        room = 74 if dot else 76
        if end - start <= room - continued:
            break
        cut = start + room - 1  # and the soft line break "=" after it
        if logical[cut - 1] == 0x3D:  # "=": an escape would be cut
            cut -= 1
        elif logical[cut - 2] == 0x3D:
            cut -= 2
        piece = logical[start:cut]
        wrapped.append((b"=2E" + piece[1:] if dot else piece) + b"=")
        start = cut
    last = logical[start:]
    wrapped.append(b"=2E" + last[1:] if dot else last)
    return CRLF.join(wrapped)


# Text as it reads ----------------------------------------------------------------------


def encode_readable(text: str, boundary: bytes) -> tuple[bytes, bytes]:
    """A text body as it reads, 7bit or 8bit, so a person reading the raw message reads it whole.

    Quoted-printable writes "=" as "=3D" and cuts lines at 76 characters: a link copied out of
    a Maildir file with `cat` is then broken. A text that cannot go exactly as it is, and keep
    MessageBytes' promise, is quoted-printable or base64 after all: one holding a control
    character, a tab, two spaces together, a space ending a line, a line starting with "." or
    longer than 998 octets, or the message's boundary.
    """
    text = lf_only(text)
    text += "" if text.endswith("\n") else "\n"
    data = text.encode("utf-8", "replace")
    too_long = any(len(line) > MAX_LINE_OCTETS for line in data.split(b"\n"))
    if too_long or _NOT_AS_IS.search(text) or b"--" + boundary in data:
        return encode_body(text)
    return (b"7bit" if data.isascii() else b"8bit"), data.replace(b"\n", CRLF)


def seven_bit(message: bytes) -> bytes:
    """`message` with its 8bit parts quoted-printable or base64, for a server without 8BITMIME.

    RFC 6152 lets only a server that offers 8BITMIME take 8-bit data. The parts are found as
    `build_notice` writes them. MessageError for a signed message, which cannot be re-encoded
    (its body hash would no longer match), and for 8-bit data anywhere else.
    """
    head, _, body = message.partition(CRLF + CRLF)
    if _EIGHT_BIT_PART.search(body) and re.search(rb"(?:^|\r\n)DKIM-Signature:", head, re.I):
        raise MessageError("a DKIM-signed message with an 8bit part cannot be re-encoded")

    def reencoded(part: re.Match[bytes]) -> bytes:
        encoding, data = encode_body(part.group(2).decode("utf-8", "replace"))
        return part.group(1) + encoding + CRLF + CRLF + data

    encoded = head + CRLF + CRLF + _EIGHT_BIT_PART.sub(reencoded, body)
    if not encoded.isascii():
        raise MessageError("the message holds 8-bit data outside a part sent 8bit")
    return encoded
