"""Untrusted article HTML is republished safe: no active content, absolute URLs, XML-clean."""

from __future__ import annotations

import pytest
from lxml import etree

from syndicate.text.sanitize import plain_lead, sanitize_html

BASE = "https://site.example/en/news/1"


@pytest.mark.parametrize(
    ("hostile", "forbidden"),
    [
        ("<script>alert(1)</script><p>ok</p>", "alert"),
        ('<p onclick="steal()">x</p>', "onclick"),
        ('<img src="x.png" onerror="steal()">', "onerror"),
        ('<a href="javascript:alert(1)">x</a>', "javascript:"),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert"),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "data:"),
        ('<form action="https://evil.example/"><input name="card"></form>', "<form"),
        ('<iframe src="https://evil.example/"></iframe>', "evil.example"),
        ('<object data="x.swf"></object><embed src="x.swf">', "swf"),
        ('<p style="background:url(javascript:alert(1))">x</p>', "style"),
        ("<svg><script>alert(1)</script></svg>", "alert"),
        ('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', "javascript"),
        ("<p>a<!-- secret comment -->b</p>", "secret"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example/">', "refresh"),
        ('<base href="https://evil.example/">', "<base"),
    ],
)
def test_active_content_is_removed(hostile: str, forbidden: str) -> None:
    """Scripts, handlers, script URLs, forms, foreign frames and styles never survive."""
    assert forbidden not in sanitize_html(hostile, BASE)


def test_relative_urls_become_absolute() -> None:
    """Links and images resolve against the article's URL."""
    cleaned = sanitize_html('<a href="/en/tag/iraq">t</a><img src="pic.jpg" alt="p">', BASE)
    assert 'href="https://site.example/en/tag/iraq"' in cleaned
    assert 'src="https://site.example/en/news/pic.jpg"' in cleaned


def test_ordinary_markup_and_allowed_embeds_survive() -> None:
    """Paragraphs, headings, quotes, lists, tables and allow-listed players are kept."""
    html = (
        "<h2>H</h2><p><strong>b</strong> <em>i</em></p><blockquote>q</blockquote>"
        "<ul><li>1</li></ul><table><tr><td>c</td></tr></table>"
        '<iframe src="https://www.youtube.com/embed/xyz" allowfullscreen></iframe>'
        '<p dir="rtl" lang="ar">نص</p>'
    )
    cleaned = sanitize_html(html, BASE)
    for kept in ("<h2>H</h2>", "<strong>b</strong>", "<blockquote>", "<li>1</li>", "<td>c</td>",
                 'src="https://www.youtube.com/embed/xyz"', 'dir="rtl"'):  # fmt: skip
        assert kept in cleaned


def test_output_is_xml_safe() -> None:
    """Characters XML forbids are removed, so the result can go into any feed."""
    cleaned = sanitize_html("<p>a\x00b\x0bc\ufffed\x1fe</p>", BASE)
    assert cleaned == "<p>abcde</p>"
    etree.fromstring(f"<x>{cleaned}</x>".encode())  # parses as XML text content


def test_unclosed_markup_is_balanced() -> None:
    """Broken HTML comes out well-formed."""
    assert (
        sanitize_html("<p><b>bold <i>both</p>tail", BASE)
        == "<p><b>bold <i>both</i></b></p><b><i>tail</i></b>"
    )


def test_plain_text_lead() -> None:
    """A plain-text lead keeps words apart across blocks, unescapes entities and is cut short."""
    assert plain_lead("<h2>A</h2><p>b &amp; c</p><script>x()</script>") == "A b & c"
    long = plain_lead("<p>" + "word " * 200 + "</p>", limit=50)
    assert long.endswith("…")
    assert len(long) <= 51
