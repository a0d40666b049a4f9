"""Translations: every string a reader sees, in the reader's language.

Catalogs are gettext `.po` files under `locale/`; they are compiled in memory on first use,
so there is no build step and no compiled file to forget. `make messages` refreshes them.
"""

from __future__ import annotations

import io
from datetime import date
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

# syndicate/locale, beside this package: babel.cfg and `make messages` write there.
LOCALE_DIR = Path(__file__).parents[1] / "locale"
DOMAIN = "syndicate"
# Digits of the CLDR numbering systems Babel names but does not apply to dates.
DIGITS = {
    "arab": "".join(chr(0x0660 + value) for value in range(10)),
    "arabext": "".join(chr(0x06F0 + value) for value in range(10)),
}


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


@cache
def language_name(code: str) -> str:
    """A language's own name for itself: English, العربية, فارسی (the code if Babel has none)."""
    try:
        name = Locale.parse(code).get_display_name(code)
    except (ValueError, LookupError):
        return code
    return name or code


def local_digits(text: str, language: str) -> str:
    """`text` with its digits in the script readers of `language` use (Persian: ۰۱۲…)."""
    digits = DIGITS.get(Locale.parse(language).default_numbering_system)
    return text.translate(str.maketrans("0123456789", digits)) if digits else text


def local_date(day: date, language: str) -> str:
    """A date as readers of `language` write it, on pages and in mail alike.

    "November 23, 2026", "۲۳ نوامبر ۲۰۲۶": the long form in the reader's digits. A language
    Babel does not know gets the ISO date.
    """
    try:
        return local_digits(format_date(day, format="long", locale=language), language)
    except (ValueError, LookupError):
        return day.isoformat()
