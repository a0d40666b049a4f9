"""File-name-safe, readable slugs for free-form tags.

A slug keeps letters and digits of any script (so Arabic tags stay readable), folds the rest to
hyphens, and can never hold `/`, `.` or `%`; so nothing derived from a tag can leave the feeds
folder. Two tags whose slugs would collide are told apart by a suffix drawn from the tag itself.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_SLUG_CHARS = 80
FALLBACK = "tag"
_NOT_WORD = re.compile(r"[\W_]+")


def readable_slug(name: str) -> str:
    """The readable part of a tag's slug: lower case, letters and digits joined by hyphens."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    # Combining marks (Arabic harakat, accents split off by NFKC) would otherwise cut words.
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Mn")
    slug = _NOT_WORD.sub("-", folded).strip("-")
    slug = slug[:MAX_SLUG_CHARS].rstrip("-")
    return slug or FALLBACK


def disambiguated_slug(name: str, key: str, length: int = 8) -> str:
    """The readable slug with a suffix that only this tag's key produces."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:length]
    return f"{readable_slug(name)}-{digest}"
