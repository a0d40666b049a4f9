"""Text hygiene shared by every stage: what XML can carry, and how tags are compared."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Characters XML 1.0 forbids (C0 controls but tab, newline and return; lone surrogates;
# U+FFFE and U+FFFF). lxml refuses them outright, so one bad title would break a whole feed.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Breaking white space (spaces, tabs, line breaks). No-break spaces are part of the text: they
# keep a number with its unit or a name together, in Persian and Arabic as much as in English.
_SPACES = re.compile(r"[^\S\u00a0\u2007\u202f]+")
_NO_BREAK_SPACE = re.compile("[\u00a0\u2007\u202f]")


def xml_safe(text: str) -> str:
    """Remove the characters XML 1.0 cannot carry."""
    if text.isprintable():  # every one of them is unprintable; this asks twice as fast
        return text
    return _XML_FORBIDDEN.sub("", text)


def one_line(text: str) -> str:
    """XML-safe text, each run of breaking white space folded to one space, the ends trimmed."""
    safe = xml_safe(text)
    if _NO_BREAK_SPACE.search(safe) is None:
        return " ".join(safe.split())  # the same result, several times sooner: ingest's hot path
    return _SPACES.sub(" ", safe).strip()


def tag_name(raw: str) -> str:
    """A tag as editors wrote it, tidied: NFC, XML-safe, white space folded."""
    return one_line(unicodedata.normalize("NFC", raw))


@lru_cache(maxsize=20_000)  # ingest asks for the same few thousand tags again and again
def tag_key(name: str) -> str:
    """The identity of a tag: spellings that differ only in case, width or spacing are one tag."""
    return unicodedata.normalize("NFKC", name).casefold()
