"""Batched ingest does exactly what one record at a time does: rows, rejections, feeds marked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from syndicate.sources.ingest import ingest_lines
from syndicate.store import open_database
from syndicate.store.schema import (
    article,
    article_tag,
    article_topic,
    dirty_feed,
    pick,
    tag,
    topic,
    topic_text,
    view_count,
)
from tests.support.databases import postgres_database
from tests.support.fixture_corpus import LANGUAGES

IDS = ["a", "b"]
TIMES = ["2025-08-20T09:00:00Z", "2025-08-20T10:00:00+01:00", "2025-08-20T11:00:00Z"]
# Spellings that are one tag, and names whose readable slugs collide.
TAGS = ["Iraq", "IRAQ", " iraq ", "Iraq!", "Oil & Gas", "oil-gas", "النفط", "US"]
HOURS = ["2025-06-01T10:00:00Z", "2025-08-20T10:00:00Z", "2025-08-20T11:00:00Z"]
UNPICKED = [None, "2025-08-21T00:00:00Z", "2100-01-01T00:00:00Z"]

articles = st.fixed_dictionaries(
    {
        "type": st.just("article"),
        "id": st.sampled_from(IDS),
        "url": st.just("https://site.example/a"),
        "title": st.sampled_from(["One", "Two", "Three"]),
        "published_at": st.sampled_from(TIMES),
        "updated_at": st.sampled_from(TIMES),
        "status": st.sampled_from(["published", "draft", "retracted"]),
        "language": st.sampled_from(LANGUAGES),
        "section": st.sampled_from([None, "news", "report"]),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "topics": st.lists(st.sampled_from(["kurds", "nato", "nowhere"]), max_size=2),
    }
)
topics = st.fixed_dictionaries(
    {
        "type": st.just("topic"),
        "slug": st.sampled_from(["kurds", "nato"]),
        "name": st.sampled_from(["Kurds", "NATO"]),
        "language": st.sampled_from(LANGUAGES),
        "description": st.sampled_from(["", "About it."]),
    }
)
picks = st.fixed_dictionaries(
    {
        "type": st.just("pick"),
        "article_id": st.sampled_from([*IDS, "missing"]),
        "position": st.integers(1, 3),
        "picked_at": st.sampled_from(HOURS),
        "unpicked_at": st.sampled_from(UNPICKED),
    }
)
views = st.fixed_dictionaries(
    {
        "type": st.just("views"),
        "article_id": st.sampled_from([*IDS, "missing"]),
        "hour": st.sampled_from(HOURS),
        "count": st.integers(0, 5),
    }
)
# Short streams: the feeds a long one marks cover every feed, and hide a difference.
streams = st.lists(st.one_of(articles, topics, picks, views), min_size=1, max_size=10)


def _state(engine: Engine) -> dict[str, Any]:
    """Everything ingest writes, by natural keys (primary keys may differ between stores)."""
    with engine.connect() as connection:

        def rows(query: Any) -> list[tuple[Any, ...]]:
            return sorted((tuple(row) for row in connection.execute(query)), key=repr)

        columns = [column for column in article.c if column.name != "pk"]
        return {
            "article": rows(select(*columns)),
            "tag": rows(select(tag.c.key, tag.c.name, tag.c.slug)),
            "article_tag": rows(
                select(article.c.cms_id, tag.c.key, article_tag.c.position, article_tag.c.language,
                       article_tag.c.status, article_tag.c.published_at)
                .join_from(article_tag, article).join_from(article_tag, tag)
            ),
            "topic": rows(select(topic.c.slug)),
            "topic_text": rows(select(topic.c.slug, topic_text.c.language, topic_text.c.name,
                                      topic_text.c.description).join_from(topic_text, topic)),
            "article_topic": rows(
                select(article.c.cms_id, topic.c.slug, article_topic.c.position,
                       article_topic.c.language, article_topic.c.status)
                .join_from(article_topic, article).join_from(article_topic, topic)
            ),
            "pick": rows(select(article.c.cms_id, pick.c.picked_at, pick.c.position,
                                pick.c.unpicked_at).join_from(pick, article)),
            "view_count": rows(select(article.c.cms_id, view_count.c.hour, view_count.c.count)
                               .join_from(view_count, article)),
            "dirty": rows(select(dirty_feed.c.key)),
        }  # fmt: skip


@pytest.fixture
def other_engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A second empty store on the same backend as `engine`."""
    if database_url.startswith("sqlite"):
        second = open_database(f"sqlite:///{tmp_path / 'other.db'}")
        yield second
        second.dispose()
        return
    database = postgres_database()
    second = open_database(next(database))
    yield second
    second.dispose()
    for _ in database:  # drops it
        pass


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in (article_tag, article_topic, pick, view_count, topic_text, dirty_feed):
            connection.execute(delete(table))
        for table in (article, tag, topic):
            connection.execute(delete(table))


def _ingest(engine: Engine, records: list[dict[str, Any]], batch_size: int) -> tuple[Any, ...]:
    rejections: list[tuple[int, str]] = []
    report = ingest_lines(
        engine, [json.dumps(record).encode() for record in records], LANGUAGES,
        on_reject=lambda *rejection: rejections.append(rejection), batch_size=batch_size,
    )  # fmt: skip
    return report, rejections


@settings(max_examples=150)
@given(first=streams, second=streams)
def test_a_batch_ends_as_its_records_one_at_a_time(
    engine: Engine, other_engine: Engine, first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    """One record a transaction or whole batches: the same rows, rejections and feeds marked."""
    _empty(engine)
    _empty(other_engine)
    for stream in (first, second):  # the second file meets what the first stored
        assert _ingest(engine, stream, 5_000) == _ingest(other_engine, stream, 1)
        assert _state(engine) == _state(other_engine)
        for store in (engine, other_engine):  # each file's marks on their own
            with store.begin() as connection:
                connection.execute(delete(dirty_feed))


def _record(kind: str, cms_id: str = "a", **fields: Any) -> dict[str, Any]:
    base: dict[str, dict[str, Any]] = {
        "article": {"type": "article", "id": cms_id, "url": "https://site.example/a",
                    "title": "One", "published_at": TIMES[0], "status": "published",
                    "language": "en", "tags": ["Iraq"]},
        "views": {"type": "views", "article_id": cms_id, "hour": HOURS[1], "count": 1},
        "pick": {"type": "pick", "article_id": cms_id, "position": 1, "picked_at": HOURS[1]},
        "topic": {"type": "topic", "slug": "kurds", "name": "Kurds", "language": "en"},
    }  # fmt: skip
    return base[kind] | fields


NEWER = {"updated_at": TIMES[2]}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # An update sees the views and picks that came before it in its own batch...
        ([_record("article")], [_record("views"), _record("article", language="fa", **NEWER)]),
        ([_record("article")], [_record("pick"), _record("article", language="ar", **NEWER)]),
        # ...and the newest hour of views, which decides what counts as recent.
        ([_record("article"), _record("article", "b"), _record("views", hour=HOURS[0])],
         [_record("views", "b", hour=HOURS[2]), _record("article", language="fa", **NEWER)]),
        # A pick ended earlier in the batch no longer counts.
        ([_record("article"), _record("pick", unpicked_at=None)],
         [_record("pick", unpicked_at="2025-08-21T00:00:00Z"),
          _record("article", language="fa", **NEWER)]),
        # Twice in a batch: the newer wins, an older one after it changes nothing.
        ([], [_record("article", title="Two", **NEWER), _record("article", title="Three")]),
        # A topic, and tags whose slugs collide, used within the batch that makes them.
        ([], [_record("topic"), _record("article", topics=["kurds"], tags=["Iraq!"]),
              _record("article", "b", tags=["Iraq", "IRAQ"])]),
    ],
)  # fmt: skip
def test_records_see_what_came_before_them_in_their_batch(
    engine: Engine,
    other_engine: Engine,
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
) -> None:
    """A record sees the records before it in its batch as if each had been committed alone."""
    for stream in (first, second):
        assert _ingest(engine, stream, 5_000) == _ingest(other_engine, stream, 1)
        assert _state(engine) == _state(other_engine)
        for store in (engine, other_engine):
            with store.begin() as connection:
                connection.execute(delete(dirty_feed))
