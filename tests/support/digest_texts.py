"""Hard texts in three scripts, an edition of them, and an edition as email and as web copy."""

from __future__ import annotations

from sqlalchemy import Engine

from syndicate.digests.editions import DigestConfig
from syndicate.digests.model import Edition
from syndicate.digests.render import compile_edition, render_web_copy
from tests.support.digest_corpus import article, build, ingest, picked, topic

WEB_URL = "https://syndicate.example/"
LIMIT = 1_000_000  # nothing trimmed: every text must be there to be read back

EXAMPLES = {
    # Persian: a zero-width non-joiner inside words, a kasra, Persian digits, a no-break space,
    # a right-to-left mark, guillemets, an isolated Latin name and an emoji ZWJ sequence.
    "fa": (
        "اخبارِ آزمایشی\u200cها",
        "می\u200cخواهند\u00a0۱۴۰۳ «گزارش» \u2068NATO\u2069 \u200f\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "عکس\u200cهای کنفرانسِ خبری & < نشست >",
    ),
    # Arabic: full harakat with shadda and tanwin, tatweel, an Arabic letter mark, a narrow
    # no-break space, Arabic-Indic digits and quotes.
    "ar": (
        "أَخْبَارٌ تَجْرِيبِيَّةٌ",
        "العِرَاقُ وَالوِلَايَاتُ \u061c«المُتَّحِدَة»\u202f٢٠٢٦ \u201cجَدوَل\u201d \U0001f1ee\U0001f1f6",
        'مُحَادَثَاتٌ فِي بَغْدَادَ "اليَوْمَ" \u200e&\u200e',
    ),
    # English: quotes, ampersands, angle brackets, a backslash, no-break spaces and emoji.
    "en": (
        "Demo\u00a0News \u2764\ufe0f",
        'US & Iraq agree on a < 2 year "timetable" \\ it\'s\u00a0done \U0001f600',
        'Talks\u202fin Baghdad \U0001f44d\U0001f3fd: 1 < 2 > 0 & "quoted"',
    ),
}


def ingested(engine: Engine, language: str) -> Edition:
    """Today's edition in `language` of the example texts, through ingest and the store."""
    site_title, title, caption = EXAMPLES[language]
    ingest(
        engine,
        topic("kurds", title, language),
        article(1, title, 3, language=language, caption=caption, summary=title),
        article(2, title, 4, language=language),  # no caption: the title describes the picture
        article(3, title, 5, language=language, topics=("kurds",), image=False),
        picked(1, 1, 2),
        picked(2, 2, 2),
    )
    return build(engine, language=language, config=DigestConfig(site_titles={language: site_title}))


def email_and_web_copy(built: Edition, site_title: str) -> dict[str, str]:
    """The personalised email of `built` (following every topic) and its web copy."""
    email = compile_edition(
        built,
        [section.slug for section in built.topics],
        site_title=site_title,
        web_url=WEB_URL,
        max_html_bytes=LIMIT,
    )
    html, _ = email.personalise("Sara", f"{WEB_URL}u", f"{WEB_URL}p")
    web = render_web_copy(built, site_title=site_title, web_url=WEB_URL, max_html_bytes=LIMIT)
    return {"email": html, "web copy": web}
