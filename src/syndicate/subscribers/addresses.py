"""Email addresses as one person typed them, folded to the one form the store keeps."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 320  # the width of subscriber.email and suppression.email
MAX_NAME_LENGTH = 200
# Cc: control characters (CR, LF, TAB, NUL, ...); Zl, Zp: Unicode line and paragraph breaks.
# Any of them in an address or a name could split a mail header, so they are errors, never
# silently removed.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


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
    address = f"{checked.local_part.lower()}@{checked.ascii_domain.lower()}"
    if len(address) > MAX_LENGTH:
        raise ValueError(f"the address is longer than {MAX_LENGTH} characters")
    return address


def clean_name(raw: str) -> str:
    """A display name safe to put in a mail header: NFC, inner spaces folded; ValueError if not."""
    _reject_controls(raw, "the name")
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return name
