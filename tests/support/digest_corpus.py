"""A digest corpus: three languages of articles, picks, views and topics around one moment.

Records are built as ingest would read them, so an edition of them goes the whole way: ingest,
the store, the edition. `build` makes an edition that must be stored, and loads it back.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from syndicate.digests.editions import DigestConfig, build_edition, load_edition
from syndicate.digests.model import Edition
from syndicate.domain.periods import Kind
from tests.support.fixture_corpus import ingest_text
from tests.support.sites import SITE_TITLES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)
CONFIG = DigestConfig(site_titles=SITE_TITLES)
EMPTY_IMAGE = {"type": "image/jpeg", "length": 1000}


def at(hours_before_now: float) -> str:
    """An RFC 3339 timestamp `hours_before_now` hours before NOW."""
    return (NOW - timedelta(hours=hours_before_now)).isoformat()


def article(
    number: int,
    title: str,
    hours_ago: float,
    *,
    language: str = "en",
    section: str = "news",
    topics: tuple[str, ...] = (),
    summary: str = "",
    body_html: str = "",
    caption: str | None = None,
    image: bool = True,
    status: str = "published",
) -> dict[str, Any]:
    """An article record published `hours_ago` hours before NOW."""
    record: dict[str, Any] = {
        "type": "article",
        "id": f"cms-{number}",
        "url": f"https://site.example/{language}/{section}/{number}",
        "title": title,
        "summary": summary,
        "body_html": body_html,
        "published_at": at(hours_ago),
        "status": status,
        "language": language,
        "section": section,
        "topics": list(topics),
    }
    if image:
        record["image"] = {
            **EMPTY_IMAGE,
            "url": f"https://site.example/img/{number}.jpg",
            **({"caption": caption} if caption is not None else {}),
        }
    return record


def picked(
    number: int, position: int, hours_ago: float, until: float | None = None
) -> dict[str, Any]:
    """A pick record: picked `hours_ago` hours before NOW, unpicked `until` hours before NOW."""
    return {
        "type": "pick",
        "article_id": f"cms-{number}",
        "position": position,
        "picked_at": at(hours_ago),
        "unpicked_at": None if until is None else at(until),
    }


def viewed(number: int, hours_ago: int, count: int) -> dict[str, Any]:
    """A views record for the hour starting `hours_ago` hours before NOW."""
    return {"type": "views", "article_id": f"cms-{number}", "hour": at(hours_ago), "count": count}


def topic(slug: str, name: str, language: str) -> dict[str, Any]:
    """A topic record."""
    return {"type": "topic", "slug": slug, "name": name, "language": language, "description": ""}


def ingest(engine: Engine, *records: dict[str, Any]) -> None:
    """Ingest records as JSON Lines, all of which must be accepted."""
    report, messages = ingest_text(engine, "\n".join(json.dumps(record) for record in records))
    assert messages == []
    assert report.rejected == 0


def digest_corpus() -> list[dict[str, Any]]:
    """Three languages of picks, views and topic articles around NOW (2026-11-23 12:00 UTC)."""
    lead = (
        "<p>The Popular Mobilization Forces grew after 2014.</p><p>They now sit in parliament.</p>"
    )
    return [
        topic("resistance", "Resistance", "en"),
        topic("resistance", "المقاومة", "ar"),
        topic("kurds", "Kurds", "en"),
        article(1, "US & Iraq agree on a <withdrawal> timetable", 6, topics=("resistance",),
                summary="Washington and Baghdad set dates.", caption="Talks in Baghdad"),
        article(2, "What the PMF wants", 16, section="analysis", body_html=lead, image=False),
        article(3, "Oil & gas: the pipeline deal", 60, section="report", summary="Energy."),
        article(4, "Ten years after the siege", 20, section="report", summary="A city rebuilds.",
                topics=("kurds",)),
        article(5, "Interview: the minister on elections", 22, section="interview",
                summary="On the vote.", caption=""),
        article(6, "Last week's most read", 80, summary="Older but popular."),
        article(7, "Draft that must never appear", 5, status="draft"),
        article(8, "Kurdish parties weigh a coalition", 2, topics=("kurds",), summary="Talks."),
        article(9, "Scheduled for tonight", -6, topics=("kurds",)),
        article(10, "Resistance groups respond", 3, topics=("resistance",), image=False),
        article(21, "العراق والولايات المتحدة: جدول الانسحاب", 5, language="ar",
                topics=("resistance",), summary="اتفاق على مواعيد.", caption="محادثات في بغداد"),
        article(22, "تحليل: ماذا يريد الحشد", 7, language="ar", section="analysis",
                summary="قراءة في المواقف."),
        article(23, "الأكراد والانتخابات", 9, language="ar", topics=("kurds",), image=False),
        article(31, "گزارش: کردها و انتخابات", 4, language="fa", section="report",
                topics=("kurds",), summary="گزارشی درباره انتخابات."),
        picked(1, 1, 10),
        picked(2, 2, 14),
        picked(3, 3, 50, until=30),
        picked(7, 4, 4),
        picked(21, 1, 4),
        picked(31, 1, 3),
        viewed(1, 3, 900),
        viewed(4, 2, 500),
        viewed(5, 5, 300),
        viewed(5, 6, 20),
        viewed(6, 70, 800),
        viewed(6, 20, 50),
        viewed(7, 2, 999),
        viewed(22, 2, 40),
        viewed(2, 1, 10),
    ]  # fmt: skip


def build(
    engine: Engine,
    kind: Kind = "daily",
    language: str = "en",
    day: date | None = None,
    now: datetime = NOW,
    config: DigestConfig = CONFIG,
) -> Edition:
    """Build an edition that must be stored, and load it."""
    result = build_edition(engine, config, kind, language, day, now)
    assert result.edition_id is not None, result.skipped
    loaded = load_edition(engine, result.edition_id)
    assert loaded is not None
    return loaded
