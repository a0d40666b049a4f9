"""No input line stops an ingest: each is stored or rejected as `line N: reason`, on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.pool import Pool

from syndicate.settings import IngestSettings
from syndicate.sources.ingest import IngestReport, StoreFailure, ingest_lines
from syndicate.store import open_database
from syndicate.store.database import reading
from syndicate.store.schema import article
from tests.support.cli import syndicate
from tests.support.fixture_corpus import LANGUAGES
from tests.support.ingest_strategies import (
    BAD_CHANGES,
    LIMITS,
    Bad,
    bad_record,
    junk_line,
    line,
    views,
)
from tests.support.ingest_strategies import (
    article as article_record,
)


def _ingest(
    engine: Engine, lines: list[str | bytes], *, batch_size: int = 5_000,
    limits: IngestSettings = LIMITS,
) -> tuple[IngestReport, dict[int, str]]:  # fmt: skip
    """Ingest `lines`; the report, and each rejection's reason by line number."""
    rejections: dict[int, str] = {}
    raw = [(item if isinstance(item, bytes) else item.encode()) + b"\n" for item in lines]
    report = ingest_lines(
        engine, raw, LANGUAGES, on_reject=rejections.__setitem__, batch_size=batch_size,
        settings=limits,
    )  # fmt: skip
    return report, rejections


def _titles(engine: Engine, prefix: str) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(article.c.cms_id, article.c.title).where(article.c.cms_id.like(f"{prefix}%"))
        )
        return {row.cms_id: row.title for row in rows}


def test_every_edge_value_is_rejected_naming_its_field(engine: Engine) -> None:
    """Each edge value is rejected with its line and field; every good line around is stored.

    Calendar edges with offsets, integers past the store's, deep nesting, thousands of digits,
    NaN, lone surrogates, NUL, overlong text, lists over their limits.
    """
    lines = [line(article_record("base"))]
    expected: dict[int, Bad] = {}
    for number, change in enumerate(BAD_CHANGES):
        lines.append(line(article_record(f"good-{number}")))
        lines.append(line(bad_record(change, f"bad-{number}", "base")))
        expected[len(lines)] = change
    report, rejections = _ingest(engine, lines)
    assert set(rejections) == set(expected)
    for number, change in expected.items():
        assert change.reason in rejections[number], (change, rejections[number])
    assert set(_titles(engine, "good-")) == {f"good-{n}" for n in range(len(BAD_CHANGES))}
    assert _titles(engine, "bad-") == {}
    assert (report.stored, report.rejected) == (len(BAD_CHANGES) + 1, len(BAD_CHANGES))


@settings(max_examples=40)
@given(
    plan=st.lists(
        st.one_of(st.just("good"), st.sampled_from(BAD_CHANGES), junk_line()),
        min_size=1, max_size=25,
    ),
    batch_size=st.sampled_from([1, 3, 5_000]),
)  # fmt: skip
def test_no_line_stops_an_ingest(engine: Engine, plan: list[object], batch_size: int) -> None:
    """Good, bad and junk lines mixed: every good record stored, every bad line named."""
    prefix = uuid.uuid4().hex[:12]  # one database serves every example
    lines: list[str | bytes] = [line(article_record(f"{prefix}-base"))]
    good: dict[str, str] = {f"{prefix}-base": f"Title of {prefix}-base"}
    good_lines = {1}
    bad: dict[int, Bad] = {}
    for index, item in enumerate(plan):
        if item == "good":
            cms_id = f"{prefix}-good-{index}"
            lines.append(line(article_record(cms_id)))
            good[cms_id] = f"Title of {cms_id}"
            good_lines.add(len(lines))
        elif isinstance(item, Bad):
            lines.append(line(bad_record(item, f"{prefix}-bad-{index}", f"{prefix}-base")))
            bad[len(lines)] = item
        else:
            assert isinstance(item, bytes)
            lines.append(item)
    report, rejections = _ingest(engine, lines, batch_size=batch_size)
    records = sum(
        1 for item in lines if (item if isinstance(item, bytes) else item.encode()).strip()
    )
    assert report.stored + report.unchanged + report.rejected == records
    assert len(rejections) == report.rejected
    for number, change in bad.items():
        assert change.reason in rejections[number], (change, rejections[number])
    assert not good_lines & set(rejections)
    stored = _titles(engine, prefix)
    assert {cms_id: stored.get(cms_id) for cms_id in good} == good
    assert not any("-bad-" in cms_id for cms_id in stored)


def test_a_line_over_the_limit_is_skipped_unread(engine: Engine, tmp_path: Path) -> None:
    """A line longer than [ingest] max_line_bytes is rejected by size; the next one is stored."""
    path = tmp_path / "input.jsonl"
    huge = line(article_record("huge", body_html="x" * 50_000))
    path.write_text("\n".join([huge, line(article_record("after"))]) + "\n")
    rejections: dict[int, str] = {}
    with path.open("rb") as stream:
        ingest_lines(engine, stream, LANGUAGES, on_reject=rejections.__setitem__, settings=LIMITS)
    assert rejections == {
        1: f"{len(huge) + 1:,} bytes, more than the limit of 20,000 ([ingest] max_line_bytes)"
    }
    assert set(_titles(engine, "")) == {"after"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": "t" * 41}, "title: 41 characters, more than the limit of 40 ([ingest] max_title_chars)"),
        ({"summary": "s" * 61}, "summary: 61 characters, more than the limit of 60 ([ingest] max_summary_chars)"),
        ({"body_html": "ب" * 101}, "body_html: 202 bytes, more than the limit of 200 ([ingest] max_body_bytes)"),
        ({"tags": ["t"] * 3000}, "tags: 3,000 tags, more than the limit of 5 ([ingest] max_tags)"),
        ({"topics": ["a", "b", "c"]}, "topics: 3 topics, more than the limit of 2 ([ingest] max_topics)"),
        ({"authors": ["a", "b", "c"]}, "authors: 3 authors, more than the limit of 2 ([ingest] max_authors)"),
    ],
)  # fmt: skip
def test_a_record_over_a_limit_is_rejected_naming_the_setting(
    engine: Engine, fields: dict[str, object], reason: str
) -> None:
    """Each limit's rejection says what was too big, the limit, and the setting to change."""
    _, rejections = _ingest(engine, [line(article_record("x", **fields))])
    assert rejections == {1: f"article 'x': {reason}"}


def test_the_default_limits_fit_a_news_site(engine: Engine) -> None:
    """Without settings, 100 tags pass and 101 do not; a 2 MB body passes."""
    at_limit = article_record("a", tags=[f"t{n}" for n in range(100)], body_html="x" * 2_000_000)
    over = article_record("b", tags=[f"t{n}" for n in range(101)])
    _, rejections = _ingest(engine, [line(at_limit), line(over)], limits=IngestSettings())
    assert rejections == {
        2: "article 'b': tags: 101 tags, more than the limit of 100 ([ingest] max_tags)"
    }


# -- database errors ------------------------------------------------------------------------

_POSTGRES_POISON = """
CREATE FUNCTION poison() RETURNS trigger AS $$
BEGIN
    IF NEW.title = 'Poison' THEN RAISE EXCEPTION 'poisoned record'; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON article FOR EACH ROW EXECUTE FUNCTION poison();
CREATE FUNCTION poison_at_commit() RETURNS trigger AS $$
BEGIN
    IF NEW.title = 'Poison at commit' THEN RAISE EXCEPTION 'poisoned at commit'; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER poison_at_commit AFTER INSERT OR UPDATE ON article
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison_at_commit();
"""


def _refuse(*_: object) -> None:
    raise ValueError("poisoned record")


def _poison(engine: Engine) -> None:
    """Make the database refuse (with an error of its own) any article titled 'Poison'."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(_POSTGRES_POISON)
        else:
            connection.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON article WHEN NEW.title = 'Poison' "
                "BEGIN SELECT poison(); END"
            )
    if engine.dialect.name == "sqlite":
        # The trigger calls a function that raises: SQLite reports an error of the statement.
        event.listen(
            engine, "connect", lambda dbapi, _: dbapi.create_function("poison", 0, _refuse)
        )
        engine.dispose()


@pytest.mark.parametrize("batch_size", [1, 5_000])
def test_a_database_error_on_one_record_loses_no_other(engine: Engine, batch_size: int) -> None:
    """The database refuses one record of a batch: it alone is rejected, with the reason."""
    _poison(engine)
    lines = [line(article_record("before")), line(article_record("poisoned", title="Poison")),
             line(article_record("after")), line(views("before"))]  # fmt: skip
    report, rejections = _ingest(engine, lines, batch_size=batch_size)
    assert list(rejections) == [2]
    assert rejections[2].startswith("article 'poisoned': could not be stored: ")
    assert "poison" in rejections[2]
    assert set(_titles(engine, "")) == {"before", "after"}
    assert (report.stored, report.rejected) == (3, 1)


@pytest.mark.postgres
def test_a_record_refused_at_commit_loses_no_other(engine: Engine) -> None:
    """A batch whose commit fails is applied again record by record: one is rejected."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no deferred triggers")
    _poison(engine)
    lines = [line(article_record("before")), line(article_record("late", title="Poison at commit")),
             line(article_record("after"))]  # fmt: skip
    _, rejections = _ingest(engine, lines)
    assert list(rejections) == [2]
    assert "poisoned at commit" in rejections[2]
    assert set(_titles(engine, "")) == {"before", "after"}


@pytest.fixture
def locked_later(tmp_path: Path) -> Iterator[tuple[Engine, list[object]]]:
    """A SQLite store with a short busy timeout, and a list of lock holders to release."""
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout = 50"))
    engine.dispose()
    holders: list[object] = []
    yield engine, holders
    for holder in holders:
        holder.rollback()  # type: ignore[attr-defined]
        holder.close()  # type: ignore[attr-defined]
    engine.dispose()


def test_a_failing_store_stops_ingest_keeping_earlier_batches(
    locked_later: tuple[Engine, list[object]],
) -> None:
    """A store locked past its timeout stops ingest at a line; earlier batches stay stored."""
    engine, holders = locked_later
    other = create_engine(str(engine.url)).raw_connection()

    def lines() -> Iterator[bytes]:
        yield line(article_record("one")).encode()
        yield line(article_record("two")).encode()
        other.execute("BEGIN IMMEDIATE")  # another writer takes the lock between batches
        holders.append(other)
        yield line(article_record("three")).encode()
        yield line(article_record("four")).encode()

    with pytest.raises(StoreFailure) as failure:
        ingest_lines(engine, lines(), LANGUAGES, on_reject=pytest.fail, batch_size=2)
    assert failure.value.line == 3
    assert "database is locked" in str(failure.value)
    assert failure.value.report.stored == 2
    with reading(engine).connect() as connection:  # a reader: the other writer still holds on
        assert set(connection.scalars(select(article.c.cms_id))) == {"one", "two"}


@contextmanager
def _busy_timeout(milliseconds: int) -> Iterator[None]:
    """Every SQLite connection opened meanwhile waits this long for a lock, not 30 s."""

    def shorten(dbapi: Any, _: object) -> None:
        dbapi.execute(f"PRAGMA busy_timeout = {milliseconds}")

    event.listen(Pool, "connect", shorten)
    try:
        yield
    finally:
        event.remove(Pool, "connect", shorten)


# -- the command ----------------------------------------------------------------------------


def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    environment = {
        "SYNDICATE_DATABASE__URL": f"sqlite:///{tmp_path / 'store.db'}",
        **{f"SYNDICATE_INGEST__{key.upper()}": str(value)
           for key, value in LIMITS.model_dump().items()},
    }  # fmt: skip
    config = tmp_path / "settings.toml"
    config.touch()
    result = syndicate("--config", str(config), *args, cwd=tmp_path, env=environment)
    return result.returncode, result.stdout, result.stderr


@settings(max_examples=15)
@given(st.lists(st.one_of(st.none(), st.sampled_from(BAD_CHANGES)), min_size=1, max_size=6))
def test_ingest_exits_zero_when_all_is_accepted_and_one_when_anything_is_rejected(
    tmp_path_factory: pytest.TempPathFactory, changes: list[Bad | None]
) -> None:
    """`syndicate ingest` exits 0 or 1 as all was accepted or not, naming each rejected line."""
    folder = tmp_path_factory.mktemp("cli")
    lines = [line(article_record("base"))] + [
        line(article_record(f"r{n}") if change is None else bad_record(change, f"r{n}", "base"))
        for n, change in enumerate(changes)
    ]
    (folder / "input.jsonl").write_text("\n".join(lines) + "\n")
    status, stdout, stderr = _run(folder, "ingest", str(folder / "input.jsonl"))
    rejected = [n + 2 for n, change in enumerate(changes) if change is not None]
    assert status == (1 if rejected else 0), stderr
    assert [entry.split(":")[0] for entry in stderr.splitlines() if entry.startswith("line ")] == [
        f"line {number}" for number in rejected
    ]
    assert stdout.strip().endswith(f", {len(rejected)} rejected")


def test_ingest_exits_two_when_the_input_cannot_be_read(tmp_path: Path) -> None:
    """A missing file or a folder is not input: exit 2 with a message naming it."""
    for source in (tmp_path / "missing.jsonl", tmp_path):
        status, _, stderr = _run(tmp_path, "ingest", str(source))
        assert status == 2
        assert f"cannot read {source}" in stderr


def test_ingest_exits_two_when_the_store_fails(tmp_path: Path) -> None:
    """A store that stays locked: a message saying what was stored and that rerunning is safe."""
    (tmp_path / "input.jsonl").write_text(line(article_record("one")) + "\n")
    _run(tmp_path, "ingest", str(tmp_path / "input.jsonl"))  # creates the store
    holder = create_engine(f"sqlite:///{tmp_path / 'store.db'}").raw_connection()
    holder.execute("BEGIN IMMEDIATE")
    try:
        environment = {"SYNDICATE_DATABASE__URL": f"sqlite:///{tmp_path / 'store.db'}"}
        with _busy_timeout(50):
            result = syndicate(
                "ingest", str(tmp_path / "input.jsonl"), cwd=tmp_path, env=environment
            )
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 2
    assert "the store failed: database is locked" in result.stderr
    assert "ingesting the same input again is safe" in result.stderr
