"""The one module that talks to the MJML compiler (mjml-python, a binding of MRML).

Every quirk of it is handled here, so the templates can be written as MJML is documented,
bar one: the templates do not use `<mj-preview>`, which hides the preheader with text the
colour of the background (SpamAssassin's HTML_FONT_LOW_CONTRAST); they write their own.
"""

from __future__ import annotations

import re

import mjml


def compile_mjml(source: str, *, rtl: bool) -> str:
    """Compile MJML to HTML, right-to-left throughout when `rtl`.

    mjml-python (MRML) quirks handled here: without `fonts={}` it links Google Fonts for its
    default Ubuntu face; `disable_comments` drops our template comments but keeps Outlook's
    conditional ones; `<mjml lang dir>` becomes `<html lang dir>` and the wrapper's `dir`;
    columns and groups get `text-align:left` whatever their direction, which right-to-left
    editions turn to the right; and attribute values are written Rust-escaped, which
    `_attributes_as_references` forestalls.
    """
    html = mjml.mjml2html(_attributes_as_references(source), disable_comments=True, fonts={})
    return _RTL_STYLE.sub(_align_right, html) if rtl else html


_RTL_STYLE = re.compile(r'style="[^"]*direction:rtl[^"]*"')
# The MJML that Jinja writes: its autoescaping leaves no raw `<`, `>` or `"` in any value, so a
# tag runs from `<` to the next `>` and a value from `"` to the next `"`.
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_VALUE = re.compile(r'"[^"]*"')
_TITLE = re.compile(r"(?<=<mj-title>)[^<]*(?=</mj-title>)")
# What Rust's string escaping leaves alone: printable ASCII, but for the backslash.
_UNSAFE = re.compile(r"[^\x20-\x5b\x5d-\x7e]")


def _attributes_as_references(source: str) -> str:
    r"""`source` with every character MRML would mangle in an attribute written as `&#x…;`.

    MRML writes each attribute value with Rust's `{:?}` formatting: a backslash doubles, and
    every character Rust counts as unprintable or combining (zero-width joiners and
    non-joiners, harakat, direction marks and isolates, no-break spaces, parts of emoji
    sequences) comes out as a literal `\u{200c}`, which a screen reader reads aloud. Text
    between tags it copies as it is, except `<mj-title>`, which it also copies into the
    body's `aria-label`. A numeric character reference is printable ASCII that Rust leaves
    alone and every HTML parser reads back as the character, so every non-ASCII character
    and backslash of an attribute value or the title becomes one (text keeps its UTF-8).
    """

    def tag(match: re.Match[str]) -> str:
        return _VALUE.sub(_references, match[0])

    return _TITLE.sub(_references, _TAG.sub(tag, source))


def _references(text: re.Match[str]) -> str:
    """The matched text with each character Rust would escape as a character reference."""
    return _UNSAFE.sub(lambda char: f"&#x{ord(char[0]):X};", text[0])


def _align_right(style: re.Match[str]) -> str:
    """A right-to-left element's style with its text aligned to the right."""
    return style[0].replace("text-align:left", "text-align:right")
