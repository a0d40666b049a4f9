"""The fixture corpus (tests/fixtures/corpus.jsonl), the golden files, and ingesting text.

The corpus has three languages, hostile HTML, nasty tags, a draft and a future article.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from syndicate.sources.ingest import IngestReport, ingest_lines

FIXTURES = Path(__file__).parents[1] / "fixtures"
GOLDEN = Path(__file__).parents[1] / "golden"
LANGUAGES = ("en", "ar", "fa")
# The moment the fixture corpus is built at: after every article but the scheduled one.
NOW = datetime(2025, 8, 22, 12, 0, tzinfo=UTC)


def ingest_text(engine: Engine, content: str) -> tuple[IngestReport, list[str]]:
    """Ingest JSON Lines text; return the report and the `line N: reason` messages."""
    messages: list[str] = []
    report = ingest_lines(
        engine,
        [line.encode() + b"\n" for line in content.splitlines()],
        LANGUAGES,
        on_reject=lambda number, reason: messages.append(f"line {number}: {reason}"),
    )
    return report, messages


# One Persian article of the fixture corpus, changed: its feeds, and no others, get new bytes.
PERSIAN_UPDATE = {
    "type": "article",
    "id": "cms-1004",
    "url": "https://site.example/fa/report/1004",
    "title": "گزارش تازه",
    "published_at": "2025-08-22T07:00:00+03:30",
    "updated_at": "2025-08-22T09:00:00+03:30",
    "status": "published",
    "language": "fa",
    "section": "report",
    "tags": ["کردها", "انتخابات"],
    "topics": ["kurds"],
}
CHANGED_BY_PERSIAN_UPDATE = {
    f"fa/{key}.{fmt}"
    for key in ("all", "sections/report", "tags/کردها", "tags/انتخابات", "topics/kurds")
    for fmt in ("rss", "atom", "json")
}

# The fixture corpus's one article tagged "Oil & Gas", retracted: that tag is left empty.
OIL_GAS_RETRACTION = {
    "type": "article",
    "id": "cms-1007",
    "url": "https://site.example/en/news/1007",
    "title": "Oil & Gas: a tag with an ampersand",
    "published_at": "2025-08-19T12:00:00Z",
    "updated_at": "2025-08-22T11:00:00Z",
    "status": "retracted",
    "language": "en",
    "section": "news",
    "tags": ["Oil & Gas", "us"],
}
