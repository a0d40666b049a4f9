"""The inbox folder: settled JSON Lines files are ingested, then filed in processed/ or rejected/."""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from syndicate.settings import Settings, SourceSettings
from syndicate.sources.inbox import poll_inbox
from syndicate.sources.polling import poll_sources
from syndicate.sources.report import SourceError, SourceReport
from syndicate.store.schema import article, pick
from tests.support.fixture_corpus import LANGUAGES


def _article(number: int, **fields: object) -> str:
    record = {
        "type": "article",
        "id": f"cms-{number}",
        "url": f"https://site.example/en/news/{number}",
        "title": f"Article {number}",
        "published_at": "2025-08-20T09:30:00Z",
        "status": "published",
        "language": "en",
    }
    return json.dumps({**record, **fields}, ensure_ascii=False)


def _drop(inbox: Path, name: str, content: str | bytes, age: float = 60) -> Path:
    """Write a file into the inbox, last modified `age` seconds ago."""
    path = inbox / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    moment = time.time() - age
    os.utime(path, (moment, moment))
    return path


def _ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(article.c.cms_id).order_by(article.c.cms_id)))


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """An empty inbox folder."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def _settings(inbox: Path, settle_seconds: float = 2) -> SourceSettings:
    return SourceSettings(inbox_dir=inbox, settle_seconds=settle_seconds)


def _poll(engine: Engine, inbox: Path, settle_seconds: float = 2) -> SourceReport:
    return poll_inbox(engine, _settings(inbox, settle_seconds), LANGUAGES)


def test_good_file_is_stored_and_moved_to_processed(engine: Engine, inbox: Path) -> None:
    """Every record is stored and the file moves to processed/ under its own name."""
    _drop(inbox, "batch.jsonl", _article(1) + "\n" + _article(2) + "\n")
    report = _poll(engine, inbox)
    assert (report.read, report.accepted, report.stored, report.rejected) == (1, 2, 2, 0)
    assert report.changed
    assert _ids(engine) == ["cms-1", "cms-2"]
    assert not (inbox / "batch.jsonl").exists()
    assert (inbox / "processed" / "batch.jsonl").read_text().startswith('{"type": "article"')
    assert not (inbox / "rejected").exists()


def test_bad_lines_are_reported_and_the_file_rejected(engine: Engine, inbox: Path) -> None:
    """Good records are stored; the file goes to rejected/ beside a report naming the bad lines."""
    lines = [
        _article(1),
        "{not json",
        _article(2, published_at="2025-08-20T09:30:00"),
        _article(3),
    ]
    _drop(inbox, "mixed.ndjson", "\n".join(lines) + "\n")
    report = _poll(engine, inbox)
    assert (report.read, report.stored, report.rejected) == (1, 2, 2)
    assert _ids(engine) == ["cms-1", "cms-3"]
    assert (inbox / "rejected" / "mixed.ndjson").exists()
    report_lines = (inbox / "rejected" / "mixed.ndjson.report.txt").read_text().splitlines()
    assert report_lines[0].startswith("line 2: invalid JSON")
    assert (
        report_lines[1]
        == "line 3: article 'cms-2': published_at: '2025-08-20T09:30:00' has no UTC offset"
    )
    assert report_lines[2] == "mixed.ndjson: 2 accepted (2 stored, 0 unchanged), 2 rejected"
    assert len(report_lines) == 3


@pytest.mark.parametrize(
    "name",
    [".hidden.jsonl", "batch.jsonl.tmp", "batch.jsonl.part", "batch.jsonl.partial", "notes.txt"],
)
def test_unfinished_hidden_and_foreign_files_are_left_alone(
    engine: Engine, inbox: Path, name: str
) -> None:
    """Names that mark a file still being written, and files of other kinds, are never read."""
    _drop(inbox, name, _article(1) + "\n")
    report = _poll(engine, inbox)
    assert (report.read, report.stored, report.waiting) == (0, 0, 0)
    assert (inbox / name).exists()
    assert _ids(engine) == []


def test_a_file_modified_just_now_waits_until_it_settles(engine: Engine, inbox: Path) -> None:
    """A file younger than settle_seconds is not read; once it is old enough, it is."""
    path = _drop(inbox, "fresh.jsonl", _article(1) + "\n", age=0)
    report = _poll(engine, inbox, settle_seconds=30)
    assert (report.read, report.waiting) == (0, 1)
    assert path.exists()
    assert _ids(engine) == []
    moment = time.time() - 31
    os.utime(path, (moment, moment))
    assert _poll(engine, inbox, settle_seconds=30).read == 1
    assert _ids(engine) == ["cms-1"]


def test_a_file_locked_by_its_writer_is_not_read(engine: Engine, inbox: Path) -> None:
    """A writer holding an flock on the file keeps it from being read."""
    path = _drop(inbox, "locked.jsonl", _article(1) + "\n")
    with path.open("ab") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        report = _poll(engine, inbox)
    assert (report.read, report.waiting) == (0, 1)
    assert path.exists()
    assert _poll(engine, inbox).read == 1


def test_files_are_read_in_name_order(engine: Engine, inbox: Path) -> None:
    """A later file may rely on an earlier one: a pick names an article from the file before."""
    picked = '{"type": "pick", "article_id": "cms-1", "position": 1, "picked_at": "2025-08-20T12:00:00Z"}'
    _drop(inbox, "02-picks.jsonl", picked + "\n", age=120)  # older, but later by name
    _drop(inbox, "01-articles.jsonl", _article(1) + "\n", age=60)
    report = _poll(engine, inbox)
    assert (report.read, report.rejected) == (2, 0)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(pick)) == 1


def test_a_name_already_in_processed_is_never_overwritten(engine: Engine, inbox: Path) -> None:
    """Second and third files of one name get a timestamp, then a counter; the first is kept."""
    for number in (1, 2, 3):
        _drop(inbox, "daily.jsonl", _article(number) + "\n")
        _poll(engine, inbox)
    processed = {path.name for path in (inbox / "processed").iterdir()}
    assert len(processed) == 3
    assert "daily.jsonl" in processed
    # The later two: daily.<UTC time>.jsonl, then daily.<UTC time>-2.jsonl in the same second.
    assert all(
        re.fullmatch(r"daily\.\d{8}T\d{6}Z(-2)?\.jsonl", name)
        for name in processed - {"daily.jsonl"}
    )
    assert (inbox / "processed" / "daily.jsonl").read_text() == _article(1) + "\n"
    assert _ids(engine) == ["cms-1", "cms-2", "cms-3"]


def test_reading_a_file_twice_is_harmless(engine: Engine, inbox: Path) -> None:
    """The same file dropped again (as after a crash before the move) stores nothing new."""
    content = _article(1) + "\n" + _article(2) + "\n"
    _drop(inbox, "batch.jsonl", content)
    _poll(engine, inbox)
    _drop(inbox, "batch.jsonl", content)
    report = _poll(engine, inbox)
    assert (report.read, report.accepted, report.stored) == (1, 2, 0)
    assert not report.changed
    assert _ids(engine) == ["cms-1", "cms-2"]


def test_a_file_that_is_not_utf8_is_rejected_line_by_line(engine: Engine, inbox: Path) -> None:
    """Latin-1 bytes are rejected as ingest rejects them; the UTF-8 lines are stored."""
    latin1 = _article(1, title="Café crème").encode("latin-1")
    _drop(inbox, "legacy.jsonl", latin1 + b"\n" + _article(2).encode() + b"\n")
    report = _poll(engine, inbox)
    assert (report.stored, report.rejected) == (1, 1)
    assert _ids(engine) == ["cms-2"]
    text = (inbox / "rejected" / "legacy.jsonl.report.txt").read_text()
    assert text.startswith("line 1: not valid UTF-8 (byte ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_left_for_the_next_poll(engine: Engine, inbox: Path) -> None:
    """A file without read permission stays where it is; the poll goes on with the others."""
    locked = _drop(inbox, "a.jsonl", _article(1) + "\n")
    locked.chmod(0)
    _drop(inbox, "b.jsonl", _article(2) + "\n")
    report = _poll(engine, inbox)
    assert (report.read, report.waiting) == (1, 1)
    assert locked.exists()
    assert _ids(engine) == ["cms-2"]


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc")
def test_a_file_failing_with_an_io_error_is_left_for_the_next_poll(
    engine: Engine, inbox: Path
) -> None:
    """A read that fails half-way (EIO) leaves the file in place; the poll goes on."""
    broken = inbox / "a.jsonl"
    broken.symlink_to("/proc/self/mem")  # a regular file whose first byte cannot be read
    _drop(inbox, "b.jsonl", _article(2) + "\n")
    report = _poll(engine, inbox, settle_seconds=0)
    assert (report.read, report.waiting) == (1, 1)
    assert broken.is_symlink()
    assert _ids(engine) == ["cms-2"]


def test_a_missing_inbox_is_created(engine: Engine, tmp_path: Path) -> None:
    """The inbox folder need not exist before the first poll."""
    report = _poll(engine, tmp_path / "var" / "inbox")
    assert report.read == 0
    assert (tmp_path / "var" / "inbox").is_dir()


def test_an_inbox_that_cannot_be_made_is_a_source_error(engine: Engine, tmp_path: Path) -> None:
    """A file where the folder should be fails the inbox source with a reason naming it."""
    blocker = tmp_path / "inbox"
    blocker.write_text("not a folder")
    with pytest.raises(SourceError, match=r"^inbox: cannot list .*inbox"):
        _poll(engine, blocker)


def test_poll_sources_without_wordpress_polls_the_inbox_alone(engine: Engine, inbox: Path) -> None:
    """With no WordPress url, the report holds the inbox only, and says the feeds changed."""
    _drop(inbox, "batch.jsonl", _article(1) + "\n")
    settings = Settings(sources=_settings(inbox))
    report = poll_sources(engine, settings)
    assert [source.source for source in report.sources] == ["inbox"]
    assert report.changed
    assert not report.failed
    assert report.summary() == "inbox: 1 file read, 1 accepted, 1 stored, 0 rejected"


def test_a_poison_file_never_blocks_the_next_one(engine: Engine, inbox: Path) -> None:
    """Lines that once crashed ingest only reject themselves; the file after is read too."""
    poison = [
        _article(1, published_at="0001-01-01T00:00:00+01:00"),
        _article(2, published_at="9999-12-31T23:59:59-01:00"),
        '{"type": "article", "id": "cms-3", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"type": "views", "article_id": "cms-4", "hour": "2025-08-20T13:00:00Z", "count": '
        + "9" * 5_000
        + "}",
        _article(
            5, image={"url": "https://x.example/a.jpg", "type": "image/jpeg", "length": 2**64}
        ),
        _article(6),
    ]
    _drop(inbox, "a.jsonl", "\n".join(poison) + "\n")
    _drop(inbox, "b.jsonl", _article(7) + "\n")
    report = _poll(engine, inbox)
    assert (report.read, report.stored, report.rejected) == (2, 2, 5)
    assert _ids(engine) == ["cms-6", "cms-7"]
    assert (inbox / "processed" / "b.jsonl").exists()
    lines = (inbox / "rejected" / "a.jsonl.report.txt").read_text().splitlines()
    assert [entry.split(":")[0] for entry in lines[:5]] == [f"line {n}" for n in range(1, 6)]
    assert "published_at" in lines[0]
    assert "nested too deeply" in lines[2]
    assert "image.length" in lines[4]


def test_a_file_that_fails_for_any_other_reason_goes_to_rejected(
    engine: Engine, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault while reading one file moves it aside with a report; the next file is read."""
    from syndicate.sources import inbox as module

    real = module.ingest_lines

    def faulty(engine: Engine, stream: Any, *args: Any, **kwargs: Any) -> Any:
        if stream.name.endswith("a.jsonl"):
            raise RuntimeError("a fault of ours")
        return real(engine, stream, *args, **kwargs)

    monkeypatch.setattr(module, "ingest_lines", faulty)
    _drop(inbox, "a.jsonl", _article(1) + "\n")
    _drop(inbox, "b.jsonl", _article(2) + "\n")
    report = _poll(engine, inbox)
    assert report.read == 2
    assert _ids(engine) == ["cms-2"]
    text = (inbox / "rejected" / "a.jsonl.report.txt").read_text()
    assert "a.jsonl: could not be processed: RuntimeError: a fault of ours" in text
    assert (inbox / "processed" / "b.jsonl").exists()


def test_a_failing_store_leaves_files_for_the_next_poll(sqlite_engine: Engine, inbox: Path) -> None:
    """A store that stays locked fails the poll; no file is moved, and the next poll reads it."""
    from sqlalchemy import create_engine, event

    event.listen(
        sqlite_engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout = 50")
    )
    sqlite_engine.dispose()
    _drop(inbox, "a.jsonl", _article(1) + "\n")
    holder = create_engine(str(sqlite_engine.url)).raw_connection()
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(SourceError, match="database is locked"):
            _poll(sqlite_engine, inbox)
    finally:
        holder.rollback()
        holder.close()
    assert (inbox / "a.jsonl").exists()
    assert not (inbox / "rejected").exists()
    assert _poll(sqlite_engine, inbox).read == 1
    assert _ids(sqlite_engine) == ["cms-1"]


def test_an_unreachable_store_leaves_files_for_the_next_poll(inbox: Path, tmp_path: Path) -> None:
    """A store that cannot even be opened fails the poll; the file is not moved to rejected/."""
    from sqlalchemy import create_engine

    unreachable = create_engine(f"sqlite:///{tmp_path / 'missing' / 'store.db'}")
    _drop(inbox, "a.jsonl", _article(1) + "\n")
    with pytest.raises(SourceError, match="unable to open database file"):
        _poll(unreachable, inbox)
    assert (inbox / "a.jsonl").exists()
    assert not (inbox / "rejected").exists()
