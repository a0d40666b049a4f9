"""Translations: every string a reader sees, in the reader's language.

Catalogs are gettext `.po` files under `locale/`; they are compiled in memory on first use,
so there is no build step and no compiled file to forget. `make messages` refreshes them.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "syndicate"


@cache
def translations(language: str) -> NullTranslations:
    """The catalog for `language`; English (the source language) and unknown ones pass through."""
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_file.is_file():
        return NullTranslations()
    with po_file.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def N_(message: str) -> str:
    """Mark `message` for translation where it is defined; translate it where it is shown."""
    return message


def gettext(language: str, message: str) -> str:
    """`message` translated into `language`."""
    return translations(language).gettext(message)


@cache
def direction(language: str) -> str:
    """`rtl` for right-to-left scripts (Arabic, Persian), else `ltr`."""
    try:
        return "rtl" if Locale.parse(language).text_direction == "rtl" else "ltr"
    except (ValueError, LookupError):
        return "ltr"
