"""Email addresses and names as one person typed them, checked and folded to what the store keeps.

Whatever a form or a file holds is checked as a mail reader would read it: a name is checked
after decoding any RFC 2047 encoded words in it ("=?utf-8?q?Eve=0D=0ABcc:...?="), since readers
decode those even where the standard says they must not, and a line break hidden in one is
as dangerous as a typed one.
"""

from __future__ import annotations

import binascii
import codecs
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 320  # the width of subscriber.email and suppression.email
MAX_NAME_LENGTH = 200
# Cc: control characters (CR, LF, TAB, NUL, NEL, ...); Zl, Zp: Unicode line and paragraph
# breaks; Cs: halves of surrogate pairs, which no text can be stored or mailed with. Any of
# them in an address or a name could split a mail header, so they are errors, never silently
# removed.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# An encoded word as lenient readers find one (Python's email package among them): any
# charset (with an RFC 2231 language), B or Q, and any text up to "?=", spaces included.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([bBqQ])\?(.*?)\?=", re.DOTALL)
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_ASCII_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
NESTING_LIMIT = 3  # encoded words within decoded encoded words: deeper is refused outright


def _reject_controls(text: str, what: str) -> None:
    for character in text:
        if unicodedata.category(character) in FORBIDDEN_CATEGORIES:
            raise ValueError(f"{what} contains a control character (U+{ord(character):04X})")


def _trim(text: str) -> str:
    # Only spaces are trimmed (Unicode category Zs, such as a no-break space pasted from a page);
    # a trailing line break is a control character and therefore an error.
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]) == "Zs":
        start += 1
    while end > start and unicodedata.category(text[end - 1]) == "Zs":
        end -= 1
    return text[start:end]


def normalise_address(raw: str) -> str:
    """`raw` as the store keeps it: trimmed, NFC, IDNA domain, lower-case; ValueError if invalid."""
    _reject_controls(raw, "the address")
    text = unicodedata.normalize("NFC", _trim(raw))
    if not text:
        raise ValueError("the address is empty")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"{text!r} is not a valid email address: {error}") from None
    if "=?" in checked.local_part:
        # Valid characters, but a reader decodes what looks like an encoded word in an address
        # (Python's email package does): nobody's mailbox is named so, and it could hide anything.
        raise ValueError(f"{text!r} is not an address we can send to: it holds '=?'")
    address = f"{checked.local_part.lower()}@{checked.ascii_domain.lower()}"
    if len(address) > MAX_LENGTH:
        raise ValueError(f"the address is longer than {MAX_LENGTH} characters")
    return address


def needs_smtputf8(address: str) -> bool:
    """Whether a normalised address has a non-ASCII local part, which only SMTPUTF8 can carry.

    Its domain is kept in A-labels (IDNA), so an internationalised domain alone needs nothing.
    """
    return not address.isascii()


def clean_name(raw: str) -> str:
    """A display name safe to put in a mail header: NFC, inner spaces folded; ValueError if not."""
    _reject_controls(raw, "the name")
    _reject_hidden_controls(raw)
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return name


def _reject_hidden_controls(text: str, depth: int = 0) -> None:
    """Refuse `text` if an encoded word in it decodes (at any depth) to a control character."""
    for match in _ENCODED_WORD.finditer(text):
        if depth >= NESTING_LIMIT:
            raise ValueError("the name holds encoded words within encoded words")
        charset, encoding, payload = match.groups()
        data = _word_bytes(encoding, payload)
        if _ASCII_CONTROL.search(data):
            raise ValueError("the name contains a control character in an encoded word")
        decoded = _word_text(charset, data)
        for character in decoded:
            if unicodedata.category(character) in FORBIDDEN_CATEGORIES:
                raise ValueError(
                    f"the name contains a control character (U+{ord(character):04X}) "
                    "in an encoded word"
                )
        _reject_hidden_controls(decoded, depth + 1)


def _word_bytes(encoding: str, payload: str) -> bytes:
    """The bytes an encoded word's payload stands for, decoded as leniently as readers do."""
    raw = payload.encode("utf-8", "surrogatepass")
    if encoding in "qQ":
        return _Q_ESCAPE.sub(lambda hex_pair: bytes.fromhex(hex_pair[1].decode()), raw).replace(
            b"_", b" "
        )
    # Readers skip what is not base64 and mend missing padding; a lone last character
    # carries no whole byte.
    usable = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    if len(usable) % 4 == 1:
        usable = usable[:-1]
    try:
        return binascii.a2b_base64(usable + b"=" * (-len(usable) % 4))
    except binascii.Error:  # pragma: no cover - what is left is always valid base64
        return raw


def _word_text(charset: str, data: bytes) -> str:
    """`data` decoded by the encoded word's charset, or byte for byte when it is unknown.

    Byte for byte (Latin-1), the bytes 0x80-0x9F are C1 controls, such as NEL, a line break
    to some readers: refused, as a reader guessing a charset might show them.
    """
    name = charset.partition("*")[0]  # RFC 2231: "utf-8*en"
    try:
        codecs.lookup(name)
        return data.decode(name, "replace")
    except (LookupError, ValueError, TypeError):  # unknown, or not text (such as "hex")
        return data.decode("latin-1")
