"""Messages as RFC 5322 bytes: multipart/alternative, plain text first, then HTML.

Messages are assembled as bytes rather than through `email.message` and its policy-driven
generator, which costs about 5 ms for a digest-sized message: the headers an edition's letters
share (From, Subject, List-Id) are encoded once and cached. A body is encoded by `binascii`,
quoted-printable or base64; a `BodyTemplate` encodes what an edition's recipients share once,
and each recipient's message costs only the encoding of their own few words (greeting, links)
spliced in between soft line breaks. The tests parse what this builds with the email package
and compare it, header by header and part by part, with the same letter built by
`email.message`.

Nothing a caller passes can add a header or a MIME part: every field is made by
`syndicate.delivery.headers`, which encodes text for people and refuses addresses, URLs and
ids of the wrong shape (`MessageError`). The email package's own folding is never used for
a header: it has turned a display name that decoded to a line break into a header of its own.
Bodies are quoted-printable or base64, so a boundary starting with "=_" can never occur
inside them; but a notice's text (a confirmation link) goes as it reads, 7bit or 8bit, so that
its link is whole in the raw message, and the SMTP transport re-encodes it for a server without
8BITMIME (`encodings.seven_bit`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from syndicate.delivery import headers
from syndicate.delivery.encodings import (
    CRLF,
    encode_body,
    encode_line,
    encode_readable,
    lf_only,
    quoted_printable_is_shorter,
)
from syndicate.delivery.headers import MessageError as MessageError
from syndicate.delivery.headers import checked_address as checked_address
from syndicate.delivery.headers import make_message_id as make_message_id

SOFT_BREAK = b"=\r\n"  # quoted-printable: a line break that is not in the text

ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
AUTO_SUBMITTED = b"Auto-Submitted: auto-generated\r\n"  # RFC 3834: no auto-replies, please
MIME_VERSION = b"MIME-Version: 1.0\r\n"


class MessageBytes(bytes):
    """A message as `build_message` makes it, which signers and transports may rely on.

    Every line ends with CRLF, no line starts with ".", and the body is already in DKIM's
    relaxed canonical form (no tabs, no two spaces together, no space before a line end), so
    the DKIM signer hashes it as it is and the SMTP transport sends it without dot-stuffing.
    Its header is ASCII but for the To field of an internationalised address (RFC 6532); its
    body is ASCII but for a notice's text part, which may be 8bit (UTF-8, lines of at most
    998 octets, RFC 6152). Like markupsafe's Markup, the type is the promise: wrap only bytes
    that keep it.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A body part `BodyTemplate.fill` has transfer-encoded: its encoding's name and its bytes.

    Like MessageBytes, the type is the promise (CRLF line ends, lines within 76 characters, no
    line starting with ".", quoted-printable or base64 only): only this module makes them.
    """

    encoding: bytes  # b"quoted-printable" or b"base64"
    data: bytes  # ending with CRLF


@dataclass(frozen=True, slots=True)
class Letter:
    """Everything one recipient's message is built from."""

    from_address: str  # "Name <address>" or a bare address, as [mail] from_address holds it
    to_email: str
    subject: str
    text: str
    html: str
    list_id: str  # the list's id (RFC 2919), such as "daily.en.site.example"
    unsubscribe_url: str  # an https URL that unsubscribes on a POST (RFC 8058)
    to_name: str = ""
    unsubscribe_mailto: str = ""  # an address; empty for unsubscribe@ the From address's domain
    list_name: str = ""  # the list's name, shown beside its id
    message_id: str = ""  # "<id@domain>"; empty for a new unique one
    message_id_domain: str = ""  # empty for the From address's domain
    date: datetime | None = None  # timezone-aware; empty for now
    feedback_id: str = ""  # Gmail's Feedback-ID ("a:b:c:SenderId"); empty for none
    mail_token: str = ""  # the VERP token naming recipient and edition (X-Syndicate-Mail)
    postmark_metadata: bool = False  # the token also as Postmark's metadata, for its webhooks


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to one person that belongs to no list, such as a confirmation link."""

    from_address: str
    to_email: str
    subject: str
    text: str
    html: str
    to_name: str = ""
    message_id: str = ""  # "<id@domain>"; empty for a new unique one
    date: datetime | None = None  # timezone-aware; empty for now
    feedback_id: str = ""
    # A URL that, posted to, stops what the notice is about (RFC 8058); empty for none. With
    # it goes a List-Id: List-Unsubscribe without one reads to spam filters as a forged list.
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""  # an address; empty for unsubscribe@ the From address's domain
    list_id: str = ""  # such as "confirmation.en.site.example"
    list_name: str = ""
    mail_token: str = ""  # the VERP token naming recipient and mail (X-Syndicate-Mail)
    postmark_metadata: bool = False  # the token also as Postmark's metadata, for its webhooks


def build_message(
    letter: Letter, *, bodies: tuple[EncodedBody, EncodedBody] | None = None
) -> MessageBytes:
    """The letter as RFC 5322 bytes with CRLF line ends, ready to sign and send.

    `bodies` are the text and HTML parts as `BodyTemplate.fill` encoded them, for a letter
    whose `text` and `html` are left empty.
    """
    sender, sender_domain = headers.sender(letter.from_address)
    if letter.message_id:
        message_id = headers.checked_message_id(letter.message_id)
    else:
        message_id = make_message_id(letter.message_id_domain or sender_domain)
    mailto = checked_address(letter.unsubscribe_mailto or f"unsubscribe@{sender_domain}")
    if bodies is None:
        parts = (encode_body(letter.text), encode_body(letter.html))
    elif letter.text or letter.html:
        raise MessageError("a letter has text and html, or encoded bodies, not both")
    else:
        parts = ((bodies[0].encoding, bodies[0].data), (bodies[1].encoding, bodies[1].data))
    return MessageBytes(
        b"".join(
            (
                *_addressing(sender, letter.to_name, letter.to_email, letter.subject),
                *_dated(letter.date, message_id),
                headers.list_id(letter.list_id, letter.list_name),
                headers.list_unsubscribe(letter.unsubscribe_url, mailto),
                ONE_CLICK,
                headers.feedback_id(letter.feedback_id),
                headers.mail_ref(letter.mail_token, postmark=letter.postmark_metadata),
                *_alternative(message_id, *parts),
            )
        )
    )


def build_notice(notice: Notice) -> MessageBytes:
    """The notice as RFC 5322 bytes with CRLF line ends, Auto-Submitted.

    With an `unsubscribe_url` it carries List-Id, List-Unsubscribe and one-click
    List-Unsubscribe-Post, as a digest does. Its text part goes as it reads (`encode_readable`).
    """
    sender, sender_domain = headers.sender(notice.from_address)
    if notice.message_id:
        message_id = headers.checked_message_id(notice.message_id)
    else:
        message_id = make_message_id(sender_domain)
    unsubscribe: tuple[bytes, ...] = ()
    if notice.unsubscribe_url:
        mailto = checked_address(notice.unsubscribe_mailto or f"unsubscribe@{sender_domain}")
        unsubscribe = (
            headers.list_id(notice.list_id, notice.list_name),
            headers.list_unsubscribe(notice.unsubscribe_url, mailto),
            ONE_CLICK,
        )
    return MessageBytes(
        b"".join(
            (
                *_addressing(sender, notice.to_name, notice.to_email, notice.subject),
                *_dated(notice.date, message_id),
                AUTO_SUBMITTED,
                *unsubscribe,
                headers.feedback_id(notice.feedback_id),
                headers.mail_ref(notice.mail_token, postmark=notice.postmark_metadata),
                *_alternative(
                    message_id,
                    encode_readable(notice.text, _boundary(message_id)),
                    encode_body(notice.html),
                ),
            )
        )
    )


def _addressing(sender: bytes, to_name: str, to_email: str, subject: str) -> tuple[bytes, ...]:
    """From (already built), To and Subject: the headers every message opens with."""
    return (sender, headers.to_header(to_name, to_email), headers.subject(subject))


def _dated(date: datetime | None, message_id: str) -> tuple[bytes, ...]:
    """The Date and Message-ID headers."""
    return (
        b"Date: ",
        headers.date(date),
        CRLF,
        b"Message-ID: ",
        message_id.encode("ascii"),
        CRLF,
    )


def _alternative(
    message_id: str, text: tuple[bytes, bytes], html: tuple[bytes, bytes]
) -> tuple[bytes, ...]:
    """MIME-Version and a multipart/alternative of the encoded text and HTML parts."""
    boundary = _boundary(message_id)
    (text_encoding, text_data), (html_encoding, html_data) = text, html
    return (
        MIME_VERSION,
        b'Content-Type: multipart/alternative;\r\n boundary="',
        boundary,
        b'"\r\n\r\n--',
        boundary,
        b'\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ',
        text_encoding,
        b"\r\n\r\n",
        text_data,
        b"\r\n--",
        boundary,
        b'\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ',
        html_encoding,
        b"\r\n\r\n",
        html_data,
        b"\r\n--",
        boundary,
        b"--\r\n",
    )


def _boundary(message_id: str) -> bytes:
    """The multipart boundary of the message `message_id`: "=_" and 30 hex digits."""
    return b"=_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:30].encode("ascii")


# Bodies ----------------------------------------------------------------------------------


class BodyTemplate:
    """A text body with slots for each recipient's own words, encoded once for all of them.

    What recipients share is quoted-printable encoded when the template is made. `fill` encodes
    only the slots' values and splices them in, each starting a line of its own and joined to
    the text around it by soft line breaks (a "=" ending a line), so the body decodes to exactly
    the text with the values in place of the slots. When base64 is the shorter encoding (mostly
    Arabic or Persian text), or a value holds a line break, the filled text is encoded whole,
    as `build_message` encodes any text.
    """

    def __init__(self, text: str, slots: Sequence[str]) -> None:
        """A template of `text` in which every occurrence of each of `slots` is to be filled."""
        if not slots or not all(slots):
            raise ValueError("a body template needs slots, and no slot can be empty")
        self.slots = tuple(slots)
        number = {slot: index for index, slot in enumerate(self.slots)}
        cut = re.compile("(" + "|".join(map(re.escape, self.slots)) + ")").split
        parts: list[str | int] = []  # the text, a slot's number standing for the slot
        pieces: list[bytes | int] = []  # its encoding, cut at the same places
        shared: list[bytes] = []  # encoded text since the last slot
        text = lf_only(text)
        # The text is given the final line break email.message gives a body. Filled, a text
        # ending in a slot would have one only if the value is not empty: `fill` checks.
        self._unended = not text.endswith("\n")
        self._last = next((number[slot] for slot in self.slots if text.endswith(slot)), None)
        for index, line in enumerate((text + "\n" if self._unended else text).split("\n")):
            if index:
                parts.append("\n")
                shared.append(CRLF)
            # A slot's value starts a line of its own, joined to its neighbours on the same
            # line by soft line breaks; those neighbours are encoded once, here.
            items = [
                number[part] if position % 2 else part
                for position, part in enumerate(cut(line)) if position % 2 or part
            ]  # fmt: skip
            for position, item in enumerate(items):
                if position:
                    shared.append(SOFT_BREAK)
                if isinstance(item, int):
                    pieces.extend((b"".join(shared), item))
                    shared = []
                else:
                    continued = position < len(items) - 1
                    shared.append(encode_line(item.encode("utf-8", "replace"), continued))
                parts.append(item)
        pieces.append(b"".join(shared))
        self._parts = tuple(parts)
        self._pieces = tuple(pieces)
        shared_text = [part for part in parts if isinstance(part, str)]
        self._chars = sum(map(len, shared_text))
        self._size = sum(len(part.encode("utf-8", "replace")) for part in shared_text)
        self._counts = [parts.count(index) for index in range(len(self.slots))]

    def fill(self, values: Sequence[str]) -> EncodedBody:
        """The body with `values` in the slots, in the order of `slots`, encoded for sending."""
        data = [value.encode("utf-8", "replace") for value in values]
        size, chars = self._size, self._chars
        spliceable = self._last is None or bool(values[self._last])
        for count, value, encoded in zip(self._counts, values, data, strict=True):
            size += count * len(encoded)
            chars += count * len(value)
            spliceable = spliceable and "\n" not in value and "\r" not in value
        if spliceable and quoted_printable_is_shorter(size, chars):
            own = [encode_line(encoded, continued=True) for encoded in data]
            spliced = [own[piece] if isinstance(piece, int) else piece for piece in self._pieces]
            return EncodedBody(b"quoted-printable", b"".join(spliced))
        text = "".join(values[part] if isinstance(part, int) else part for part in self._parts)
        return EncodedBody(*encode_body(text[:-1] if self._unended else text))
