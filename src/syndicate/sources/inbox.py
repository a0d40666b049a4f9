"""The inbox: a folder that people and programs drop JSON Lines files of ingest records into.

Only `*.jsonl` and `*.ndjson` files are read (other files are left alone and logged once).
A file is never read half-written:
- hidden names (`.name`) and names ending `.tmp`, `.part` or `.partial` are skipped, so a writer
  can write under such a name and rename the finished file into place;
- a file is read only once its mtime is `settle_seconds` old (any write moves the mtime);
- a file another process holds an flock on is skipped;
- a file that changed while it was read is left where it is and read again once it settles.

Each file goes through `ingest_lines` (the same validation, limits and `line N: reason`
messages as `syndicate ingest`), then moves to `processed/`, or to `rejected/` beside a report
listing its rejected lines, when any line was rejected. A file that cannot be processed for any
other reason (a fault of ours) also goes to `rejected/`, its report saying why, so that it never
blocks the files after it. Only two things leave a file where it is for the next poll: it
cannot be read (or moved) now, or the store failed, which fails the poll, since no file could
be stored until the store is back. Files are read in name order (then mtime). A moved
file never replaces an earlier one of the same name: a UTC timestamp (and a counter) is added.
A crash between ingest and move only means the file is read again, which ingest makes harmless.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from syndicate.observe.logs import logfmt
from syndicate.settings import IngestSettings, SourceSettings
from syndicate.sources.ingest import IngestReport, StoreFailure, ingest_lines
from syndicate.sources.report import INBOX, SourceError, SourceReport

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".ndjson")
UNFINISHED = (".tmp", ".part", ".partial")
PROCESSED_DIR = "processed"
REJECTED_DIR = "rejected"
REPORT_SUFFIX = ".report.txt"
# Rejections logged per file; the report in rejected/ lists them all.
_LOGGED_REJECTIONS = 10
# Things said once per process (an ignored file, an unreadable one), not at every poll.
_noted: set[tuple[str, ...]] = set()
_NOTED_LIMIT = 10_000


@dataclass(frozen=True)
class _Candidate:
    path: Path
    stat: os.stat_result


def poll_inbox(
    engine: Engine,
    settings: SourceSettings,
    languages: Sequence[str],
    *,
    report: SourceReport | None = None,
    limits: IngestSettings | None = None,
) -> SourceReport:
    """Ingest every settled inbox file in name order and file it in processed/ or rejected/.

    Raises SourceError when the inbox cannot be listed or the store fails.
    """
    report = report if report is not None else SourceReport(INBOX)
    inbox = settings.inbox_dir
    try:
        inbox.mkdir(parents=True, exist_ok=True)
        candidates = sorted(_candidates(inbox), key=lambda c: (c.path.name, c.stat.st_mtime_ns))
    except OSError as error:
        raise SourceError(INBOX, f"cannot list {inbox}: {_reason(error)}") from None
    for candidate in candidates:
        # Read the clock per file: ingesting the ones before may have taken a while.
        age = time.time() - candidate.stat.st_mtime
        if age < settings.settle_seconds:
            report.waiting += 1
            log.debug("inbox file settling file=%s age=%.1f", logfmt(candidate.path), age)
            continue
        _ingest_file(engine, candidate, languages, report, limits)
    return report


def _candidates(inbox: Path) -> Iterator[_Candidate]:
    with os.scandir(inbox) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.lower().endswith(UNFINISHED):
                continue  # still being written, by convention
            try:
                if not entry.is_file():
                    continue  # processed/, rejected/ and any other folder, FIFOs, sockets
                stat = entry.stat()
            except OSError:
                continue  # vanished since the listing, or a dangling link
            if not name.lower().endswith(SUFFIXES):
                if _first_time("ignored", entry.path):
                    log.info(
                        "inbox file ignored file=%s reason=%s",
                        logfmt(entry.path),
                        logfmt("only .jsonl and .ndjson files are read"),
                    )
                continue
            yield _Candidate(Path(entry.path), stat)


def _ingest_file(
    engine: Engine,
    candidate: _Candidate,
    languages: Sequence[str],
    report: SourceReport,
    limits: IngestSettings | None,
) -> None:
    """Read one listed file into the store, then move it aside with its rejections."""
    path = candidate.path
    try:
        stream = path.open("rb")
    except OSError as error:
        _leave(report, path, error)
        return
    with stream:
        held = _hold(stream, candidate, report)
        if held is None:
            return
        with tempfile.TemporaryFile("w+", encoding="utf-8") as rejections:
            log_rejection = _RejectionLog(path, rejections)
            try:
                result, failure = _ingest_stream(
                    engine, stream, path, languages, limits, log_rejection, report
                )
            except OSError as error:
                # What was read is stored (each record whole); the rest comes with the next read.
                _leave(report, path, error)
                return
            if failure is None and not _unchanged(os.fstat(stream.fileno()), held):
                report.waiting += 1
                report.add(result)
                log.warning(
                    "inbox file changed while read file=%s; read again once it settles",
                    logfmt(path),
                )
                return
            try:
                moved = _file_away(path, result, rejections, failure)
            except OSError as error:
                report.add(result)
                _leave(report, path, error, action="moved")
                return
    report.read += 1
    report.add(result)
    log.info(
        "inbox file %s file=%s moved_to=%s stored=%d unchanged=%d rejected=%d",
        "rejected" if result.rejected or failure else "processed",
        logfmt(path),
        logfmt(moved),
        result.stored,
        result.unchanged,
        result.rejected,
    )


def _hold(stream: IO[bytes], candidate: _Candidate, report: SourceReport) -> os.stat_result | None:
    """Lock the open file; its status, or None when it must wait (locked, moved or written)."""
    if not _try_lock(stream):
        report.waiting += 1
        log.debug("inbox file locked by another process file=%s", logfmt(candidate.path))
        return None
    held = os.fstat(stream.fileno())
    if not _same_file(candidate.path, held) or not _unchanged(held, candidate.stat):
        # Renamed over, moved away by another poller, or written since it was listed.
        report.waiting += 1
        return None
    return held


def _ingest_stream(
    engine: Engine,
    stream: IO[bytes],
    path: Path,
    languages: Sequence[str],
    limits: IngestSettings | None,
    log_rejection: _RejectionLog,
    report: SourceReport,
) -> tuple[IngestReport, str | None]:
    """Store the file's records; what was stored, and why the file failed (None if it did not).

    A read error (OSError) propagates; a store that fails stops the poll (SourceError).
    """
    try:
        return (
            ingest_lines(engine, stream, languages, on_reject=log_rejection, settings=limits),
            None,
        )
    except OSError:
        raise  # the caller leaves the file for the next poll
    except StoreFailure as error:
        report.add(error.report)
        raise SourceError(INBOX, f"{path.name}: {error}") from None
    except Exception as error:  # a fault of ours: the file goes aside, the poll goes on
        log.error("inbox file could not be processed file=%s", logfmt(path), exc_info=True)
        return IngestReport(rejected=log_rejection.count), f"{type(error).__name__}: {error}"


class _RejectionLog:
    """Writes `line N: reason` lines to the report being built, logging the first few."""

    def __init__(self, path: Path, out: IO[str]) -> None:
        self.path = path
        self.out = out
        self.count = 0

    def __call__(self, line: int, reason: str) -> None:
        self.out.write(f"line {line}: {reason}\n")
        self.count += 1
        if self.count <= _LOGGED_REJECTIONS:
            log.warning(
                "inbox line rejected file=%s line=%d reason=%s",
                logfmt(self.path),
                line,
                logfmt(reason),
            )


def _file_away(
    path: Path, result: IngestReport, rejections: IO[str], failure: str | None = None
) -> Path:
    """Move the read file to processed/ or rejected/ (with its report); return where it went."""
    rejected = bool(result.rejected or failure)
    folder = path.parent / (REJECTED_DIR if rejected else PROCESSED_DIR)
    folder.mkdir(exist_ok=True)
    moved = _move_without_overwriting(path, folder, datetime.now(UTC))
    if rejected:
        if failure is not None:
            rejections.write(f"{path.name}: could not be processed: {' '.join(failure.split())}\n")
        rejections.write(f"{path.name}: {result.summary()}\n")
        rejections.seek(0)
        _write_report(moved.with_name(moved.name + REPORT_SUFFIX), rejections)
    return moved


def _move_without_overwriting(path: Path, folder: Path, moment: datetime) -> Path:
    for name in _names(path.name, moment):
        target = folder / name
        try:
            # Claim the name first: O_EXCL fails rather than replace someone else's file.
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        try:
            os.replace(path, target)
        except OSError:
            target.unlink(missing_ok=True)
            raise
        return target
    raise FileExistsError(f"no free name for {path.name} in {folder}")


def _names(name: str, moment: datetime) -> Iterator[str]:
    """`a.jsonl`, then `a.20250820T120000Z.jsonl`, then `a.20250820T120000Z-2.jsonl`, ..."""
    yield name
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if stem else (name, "")
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    yield f"{stem}.{stamp}{suffix}"
    for counter in range(2, 10_000):
        yield f"{stem}.{stamp}-{counter}{suffix}"


def _write_report(target: Path, rejections: IO[str]) -> None:
    # Written whole under a hidden name, then renamed, so nobody reads half a report.
    partial = target.with_name(f".{target.name}.tmp")
    with partial.open("w", encoding="utf-8") as out:
        while chunk := rejections.read(1 << 16):
            out.write(chunk)
    os.replace(partial, target)


def _try_lock(stream: IO[bytes]) -> bool:
    """Take a non-blocking exclusive flock; False when another process holds the file."""
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True  # a file system without flock: the settle time is the guard there
    return True


def _same_file(path: Path, held: os.stat_result) -> bool:
    try:
        now = path.stat()
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _unchanged(now: os.stat_result, before: os.stat_result) -> bool:
    return (now.st_ino, now.st_size, now.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def _leave(report: SourceReport, path: Path, error: OSError, action: str = "read") -> None:
    """A file that cannot be read or moved now stays for the next poll; say so once."""
    report.waiting += 1
    reason = _reason(error)
    level = logging.WARNING if _first_time(action, str(path), reason) else logging.DEBUG
    log.log(
        level,
        "inbox file not %s file=%s error=%s; left for the next poll",
        action,
        logfmt(path),
        logfmt(reason),
    )


def _first_time(*key: str) -> bool:
    if key in _noted:
        return False
    if len(_noted) >= _NOTED_LIMIT:
        _noted.clear()  # bounded memory; at worst a line is said again
    _noted.add(key)
    return True


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
