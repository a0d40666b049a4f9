"""Article HTML made safe to republish: allow-listed markup, absolute URLs, XML-safe text.

Article bodies come from the CMS and are untrusted. Ammonia (through nh3) parses them as a
browser would and keeps only what is listed here, so no script, event handler, `javascript:`
URL, style or form survives, and the output is always well-formed.
"""

from __future__ import annotations

import re
from html import unescape

import nh3

from syndicate.text import one_line, xml_safe

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "iframe", "img",
    "ins", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul", "audio", "video",
    "source",
}  # fmt: skip
ATTRIBUTES = {
    "*": {"lang", "dir", "title"},
    "a": {"href", "hreflang"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "img": {"src", "alt", "width", "height"},
    "iframe": {"src", "width", "height", "allowfullscreen", "title"},
    "audio": {"src", "controls"},
    "video": {"src", "controls", "poster", "width", "height"},
    "source": {"src", "type"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "time": {"datetime"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Only players that are safe to frame; any other iframe loses its source and is dropped.
EMBED_PREFIXES = (
    "https://www.youtube.com/embed/",
    "https://www.youtube-nocookie.com/embed/",
    "https://player.vimeo.com/video/",
    "https://w.soundcloud.com/player/",
)
_IFRAME_WITHOUT_SOURCE = re.compile(r"<iframe(?![^>]*\ssrc=)[^>]*></iframe>")
_IFRAME = re.compile(r'<iframe[^>]*\ssrc="(?P<src>[^"]*)"[^>]*></iframe>')
_BLOCK_END = re.compile(r"(</(?:p|div|li|h[1-6]|blockquote|tr|td|th|figcaption)>|<br\s*/?>)", re.I)


_REPLACEMENT = "\ufffd"


def _keep_allowed_embeds(tag: str, attribute: str, value: str) -> str | None:
    if tag == "iframe" and attribute == "src" and not value.startswith(EMBED_PREFIXES):
        return None
    return value


def sanitize_html(html: str, base_url: str, *, frames: bool = True) -> str:
    """Clean untrusted article HTML, resolving relative links and images against `base_url`.

    Allow-listed players stay iframes when `frames` is true; otherwise each becomes a link to
    its player, for places that refuse frames.
    """
    # The embed filter is a Python callback run for every attribute; only frames need it.
    embeds = _keep_allowed_embeds if "<iframe" in html.lower() else None
    cleaned = nh3.clean(
        xml_safe(html),
        tags=TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "object", "embed"},
        attributes=ATTRIBUTES,
        attribute_filter=embeds,
        url_schemes=URL_SCHEMES,
        url_relative=("rewrite_with_base", base_url),
        link_rel="noopener",
    )
    # An iframe whose source was refused would render as an empty box; drop it.
    cleaned = _IFRAME_WITHOUT_SOURCE.sub("", cleaned)
    if not frames:
        # The source is already an escaped attribute value, so it can stand as text too.
        cleaned = _IFRAME.sub(r'<a href="\g<src>">\g<src></a>', cleaned)
    # A NUL or lone-surrogate reference comes out as U+FFFD: a casualty, never content.
    return cleaned.replace(_REPLACEMENT, "").strip()


def plain_text(html: str, limit: int = 300) -> str:
    """A short plain-text lead drawn from HTML, for items whose summary is empty."""
    spaced = _BLOCK_END.sub(r"\1 ", xml_safe(html))  # keep words of adjacent blocks apart
    text = unescape(nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"}))
    text = one_line(text.replace(_REPLACEMENT, ""))
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"
