"""Ingest follows the contract in design.md, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from syndicate.domain.model import RecordError
from syndicate.sources.ingest_format import parse_record
from syndicate.store.schema import article, article_tag, pick, tag, topic_text, view_count
from tests.support.fixture_corpus import LANGUAGES, ingest_text


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table)) or 0  # type: ignore[arg-type]


def _article(**fields: object) -> str:
    record = {
        "type": "article",
        "id": "cms-1",
        "url": "https://site.example/en/news/1",
        "title": "Title",
        "published_at": "2025-08-20T09:30:00Z",
        "status": "published",
        "language": "en",
    }
    record.update(fields)
    return json.dumps({key: value for key, value in record.items() if value is not ...})


def test_corpus_is_accepted_whole(engine: Engine, corpus_text: str) -> None:
    """Every record of a well-formed file is stored and none is rejected."""
    report, messages = ingest_text(engine, corpus_text)
    assert messages == []
    assert report.rejected == 0
    assert _count(engine, article) == 7
    assert _count(engine, pick) == 3
    assert _count(engine, view_count) == 4


def test_replaying_a_file_changes_nothing(engine: Engine, corpus_text: str) -> None:
    """A second ingest of the same file stores no new article and leaves counts unchanged."""
    ingest_text(engine, corpus_text)
    with engine.connect() as connection:
        before = connection.execute(select(article).order_by(article.c.pk)).all()
    report, messages = ingest_text(engine, corpus_text)
    assert messages == []
    with engine.connect() as connection:
        assert connection.execute(select(article).order_by(article.c.pk)).all() == before
    assert report.unchanged >= 7
    assert _count(engine, view_count) == 4


def test_older_update_is_ignored(engine: Engine) -> None:
    """An article record older than the stored one changes nothing."""
    newer = _article(title="Newer", updated_at="2025-08-20T12:00:00Z")
    older = _article(title="Older", updated_at="2025-08-20T10:00:00Z")
    ingest_text(engine, newer + "\n" + older)
    with engine.connect() as connection:
        assert connection.scalar(select(article.c.title)) == "Newer"


def test_newer_update_replaces_title_and_tags(engine: Engine) -> None:
    """A newer record replaces the article, its tags included."""
    first = _article(tags=["Iraq", "US"], updated_at="2025-08-20T10:00:00Z")
    second = _article(title="Fixed", tags=["Syria"], updated_at="2025-08-20T11:00:00Z")
    ingest_text(engine, first + "\n" + second)
    with engine.connect() as connection:
        assert connection.scalar(select(article.c.title)) == "Fixed"
        names = connection.scalars(select(tag.c.name).join(article_tag)).all()
    assert names == ["Syria"]


def test_views_set_the_hour_rather_than_add(engine: Engine) -> None:
    """Two views records for one hour leave the last count, not the sum."""
    views = (
        '{{"type": "views", "article_id": "cms-1", "hour": "2025-08-20T13:00:00Z", "count": {}}}'
    )
    ingest_text(engine, "\n".join([_article(), views.format(5), views.format(7)]))
    with engine.connect() as connection:
        assert connection.scalar(select(view_count.c.count)) == 7


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "comment"}', "unknown type 'comment'"),
        (
            _article(published_at="2025-08-20T09:30:00"),
            "published_at: '2025-08-20T09:30:00' has no UTC offset",
        ),
        (_article(published_at="yesterday"), "is not an RFC 3339 timestamp"),
        (_article(published_at="2025-02-30T09:30:00Z"), "is not a real date and time"),
        (_article(title=""), "title: must not be empty"),
        (_article(title=...), "title: Field required"),
        (_article(url="/en/news/1"), "is not an absolute http(s) URL"),
        (_article(url="javascript:alert(1)"), "is not an absolute http(s) URL"),
        (_article(status="live"), "status: Input should be 'published', 'draft' or 'retracted'"),
        (_article(language="de"), "language: 'de' is not one of en, ar, fa"),
        (_article(tags="Iraq"), "tags: Input should be a valid list"),
        (_article(tags=["  "]), "tags.0: must not be empty"),
        (_article(topics=["nowhere"]), "no topic 'nowhere' is stored"),
        (_article(section="News & Views"), "section: String should match pattern"),
        (
            _article(
                image={"url": "https://x.example/a.jpg", "type": "image/jpeg", "length": "12"}
            ),
            "image.length: Input should be a valid integer",
        ),
        (
            '{"type": "pick", "article_id": "cms-404", "position": 1, "picked_at": "2025-08-20T12:00:00Z"}',
            "no article 'cms-404' is stored",
        ),
        (
            '{"type": "views", "article_id": "cms-1", "hour": "2025-08-20T13:30:00Z", "count": 1}',
            "is not on the hour",
        ),
        (
            '{"type": "views", "article_id": "cms-1", "hour": "2025-08-20T13:00:00Z", "count": -1}',
            "count: Input should be greater than or equal to 0",
        ),
        (
            '{"type": "topic", "slug": "Bad Slug", "name": "x", "language": "en"}',
            "slug: String should match pattern",
        ),
    ],
)
def test_bad_record_is_rejected_with_its_line_and_reason(
    engine: Engine, line: str, reason: str
) -> None:
    """A bad record is named by line number and reason; the records around it are stored."""
    good_before = _article(id="cms-before")
    good_after = _article(id="cms-after")
    report, messages = ingest_text(engine, "\n".join([good_before, line, good_after]))
    assert report.rejected == 1
    assert len(messages) == 1
    assert messages[0].startswith("line 2: ")
    assert reason in messages[0]
    with engine.connect() as connection:
        stored = set(connection.scalars(select(article.c.cms_id)))
    assert {"cms-before", "cms-after"} <= stored


def test_rejected_article_stores_nothing_at_all(engine: Engine) -> None:
    """An article refused for an unknown topic leaves no article, tag or link behind."""
    report, _ = ingest_text(engine, _article(tags=["Brand New Tag"], topics=["missing"]))
    assert report.rejected == 1
    assert _count(engine, article) == 0
    assert _count(engine, tag) == 0
    assert _count(engine, article_tag) == 0


def test_topic_may_come_earlier_in_the_same_stream(engine: Engine) -> None:
    """A topic defined on an earlier line can be used at once."""
    topic = '{"type": "topic", "slug": "kurds", "name": "Kurds", "language": "en"}'
    report, messages = ingest_text(engine, topic + "\n" + _article(topics=["kurds"]))
    assert messages == []
    assert report.stored == 2
    assert _count(engine, topic_text) == 1


def test_near_duplicate_tags_are_one_tag(engine: Engine) -> None:
    """Tags that differ only in case or spacing are one tag, named as first written."""
    ingest_text(
        engine,
        _article(id="a", tags=["Military  Withdrawal"])
        + "\n"
        + _article(id="b", tags=["military withdrawal"]),
    )
    with engine.connect() as connection:
        assert connection.execute(select(tag.c.name, tag.c.slug)).all() == [
            ("Military Withdrawal", "military-withdrawal")
        ]


def test_blank_lines_are_skipped_but_counted(engine: Engine) -> None:
    """Blank lines are not records, and line numbers still match the file."""
    _, messages = ingest_text(engine, _article() + "\n\n{oops")
    assert messages[0].startswith("line 3: ")


# -- where a line is not JSON ----------------------------------------------------------------

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.text(max_size=8), st.floats(0, 9)
)


def _tokens(pairs: list[tuple[str, object]], spaced: bool, ascii_only: bool) -> list[str]:
    """A JSON object as its tokens, so that a fault can be put between two of them."""
    tokens = ["{"]
    for index, (key, value) in enumerate(pairs):
        if index:
            tokens += [",", " "] if spaced else [","]
        tokens += [json.dumps(key, ensure_ascii=ascii_only), ":"]
        tokens += [" "] if spaced else []
        tokens.append(json.dumps(value, ensure_ascii=ascii_only))
    return [*tokens, "}"]


@given(
    pairs=st.lists(st.tuples(st.text(max_size=6), _VALUES), max_size=4),
    spaced=st.booleans(),
    ascii_only=st.booleans(),
    where=st.integers(min_value=0),
    truncate=st.booleans(),
    ending=st.sampled_from(["", "\n", "\r\n"]),
)
def test_invalid_json_column_points_at_the_fault(
    pairs: list[tuple[str, object]],
    spaced: bool,
    ascii_only: bool,
    where: int,
    truncate: bool,
    ending: str,
) -> None:
    """`at column N` is the Nth character of the line as written: a stray '@', or the line's end."""
    tokens = _tokens(pairs, spaced, ascii_only)
    boundaries = [len("".join(tokens[:count])) for count in range(len(tokens))]
    at = boundaries[where % len(boundaries)]
    text = "".join(tokens)
    line = (text[:at] if truncate else text[:at] + "@" + text[at:]) + ending
    with pytest.raises(RecordError) as refused:
        parse_record(line, LANGUAGES)
    message = str(refused.value)
    found = re.fullmatch(r"invalid JSON: (.+) at column (\d+)", message)
    assert found, message
    assert not found[1].endswith(" at"), message
    column = int(found[2])
    if truncate:
        assert column == at + 1, message  # just past the last character: the line ended early
    else:
        assert line[column - 1] == "@", message
