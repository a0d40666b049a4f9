"""The demo corpus: deterministic, valid ingest input, and shaped like a real site."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from syndicate.demo import generate_corpus
from syndicate.demo.corpus import SPAN
from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.text.tidy import tag_key
from tests.support.cli import syndicate
from tests.support.fixture_corpus import ingest_text

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def corpus(**options: int) -> list[dict[str, object]]:
    """The demo corpus at a fixed moment, as records."""
    return list(generate_corpus(now=NOW, **options))


def jsonl(records: list[dict[str, object]]) -> str:
    """Records as JSON Lines, the way `syndicate demo-data` writes them."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def test_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    """`demo-data` with the same seed and moment prints the same corpus; another seed does not."""
    args = ("demo-data", "--articles", "300", "--seed", "4", "--now", "2026-11-24T12:00:00+0000")
    first = syndicate(*args, cwd=tmp_path)
    second = syndicate(*args, cwd=tmp_path)
    other = syndicate(*args[:-3], "5", *args[-2:], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout != other.stdout
    assert first.stdout == jsonl(corpus(articles=300, seed=4))


def test_every_record_is_accepted_by_ingest(engine: Engine) -> None:
    """The corpus is valid ingest input on every backend: nothing rejected."""
    records = corpus(articles=400, tags=300)
    report, messages = ingest_text(engine, jsonl(records))
    assert messages == []
    assert report.rejected == 0
    assert report.accepted == len(records)


def test_articles_span_ninety_days_in_three_languages() -> None:
    """Articles cover the last 90 days, mostly English with Arabic and Persian shares."""
    articles = [record for record in corpus(articles=2000) if record["type"] == "article"]
    assert len(articles) == 2000
    languages = Counter(str(record["language"]) for record in articles)
    assert 0.6 < languages["en"] / 2000 < 0.8
    assert languages["ar"] > 200
    assert languages["fa"] > 200
    published = [datetime.fromisoformat(str(record["published_at"])) for record in articles]
    past = [moment for moment in published if moment <= NOW]
    assert min(past) >= NOW - SPAN
    assert max(past) > NOW - timedelta(days=1)
    assert len({record["section"] for record in articles}) == 6
    assert sum("image" in record for record in articles) > 1500


def test_corpus_holds_the_cases_feeds_must_handle() -> None:
    """Drafts, retractions, scheduled articles, updates and script embeds all occur."""
    articles = [record for record in corpus(articles=3000) if record["type"] == "article"]
    statuses = Counter(str(record["status"]) for record in articles)
    assert statuses["draft"] > 0
    assert statuses["retracted"] > 0
    scheduled = [r for r in articles if datetime.fromisoformat(str(r["published_at"])) > NOW]
    assert scheduled
    assert all(r["status"] == "published" for r in scheduled)
    assert any(r["updated_at"] != r["published_at"] for r in articles)
    assert any("<script" in str(r["body_html"]) for r in articles)
    assert any("<iframe" in str(r["body_html"]) for r in articles)


def test_tags_are_many_messy_and_skewed() -> None:
    """Thousands of distinct tags in three scripts, with near-duplicates and a long tail."""
    articles = [
        record for record in corpus(articles=6000, tags=3000) if record["type"] == "article"
    ]
    uses = Counter(tag for record in articles for tag in record["tags"])  # type: ignore[attr-defined]
    assert len(uses) > 2000
    assert len({tag_key(tag) for tag in uses}) < len(uses)  # "Iraq" and "iraq"
    assert any("&" in tag for tag in uses)
    assert any("/" in tag for tag in uses)
    assert any("\u0600" <= tag[0] <= "\u06ff" for tag in uses)
    counts = sorted(uses.values(), reverse=True)
    assert counts[0] > 50 * counts[len(counts) // 2]


def test_topics_exist_in_every_language_before_articles_use_them() -> None:
    """Ten In Focus topics, each named and described in en, ar and fa, come first."""
    records = corpus(articles=50)
    topics = [record for record in records if record["type"] == "topic"]
    assert len(topics) == 30
    assert records[: len(topics)] == topics
    assert {record["language"] for record in topics} == {"en", "ar", "fa"}
    assert all(record["description"] for record in topics)


def test_picks_and_views_make_the_ranked_feeds_meaningful(
    sqlite_engine: Engine, feed_config: FeedConfig
) -> None:
    """Editor's Choice has current picks and Most Viewed ranks by views in each language."""
    records = corpus(articles=1500)
    current = [r for r in records if r["type"] == "pick" and r["unpicked_at"] is None]
    assert current
    assert all(datetime.fromisoformat(str(r["picked_at"])) <= NOW for r in current)
    views = [r for r in records if r["type"] == "views"]
    assert all(datetime.fromisoformat(str(r["hour"])) <= NOW for r in views)
    ingest_text(sqlite_engine, jsonl(records))
    build_feeds(sqlite_engine, feed_config, now=NOW)
    for language in ("en", "ar", "fa"):
        for name in ("editors-choice", "most-viewed/day", "most-viewed/month"):
            path = Path(feed_config.feeds_dir, language, f"{name}.json")
            feed = json.loads(path.read_text())
            assert feed["items"], f"{language}/{name} is empty"
