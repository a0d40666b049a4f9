"""Ingest: JSON Lines records from a file or a stream into the store, a batch at a time.

Whatever a line holds, it is stored or rejected with `line N: reason`; nothing a line holds
stops the ingest. Lines are parsed, then applied a batch at a time in one transaction (see
`store.writes`), so memory stays flat however long the input is. The store reports what a batch
changed; `feeds.changes` names the feeds that touches, and they are marked for the next build
in the batch's transaction. When the database refuses a batch because of one of its records,
the batch is applied again one record at a time, each in a transaction of its own, so that one
record is rejected and every other one is stored. When the store itself fails (unreachable,
locked, full), ingest stops with `StoreFailure`: what the earlier batches stored stays, and
reading the same input again is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.domain.model import Record, RecordError, describe
from syndicate.feeds.changes import dirty_keys
from syndicate.settings import IngestSettings
from syndicate.sources.ingest_format import parse_record
from syndicate.sources.limits import Limit, Limits, over_limit
from syndicate.store.bulk import bulk_writes
from syndicate.store.database import for_writing
from syndicate.store.failures import is_store_failure
from syndicate.store.plan import Outcome
from syndicate.store.writes import StoreWriter

log = logging.getLogger(__name__)

# Records a transaction. Large batches write each page of the tag and views indexes once for
# many records; a batch holds SQLite's write lock for about a quarter of a second.
BATCH_SIZE = 5_000
BATCH_BYTES = 16_000_000  # input bytes a batch holds at most, however few its records
_REASON_CHARS = 300  # of an unexpected error's text, in a rejection
_READ_CHUNK = 1 << 20
_PROGRESS_BYTES = 1 << 16  # a progress bar redrawn for every line costs a second in 400,000
T = TypeVar("T")


@dataclass
class IngestReport:
    """What an ingest did, line by line, summed up."""

    stored: int = 0
    unchanged: int = 0
    rejected: int = 0

    @property
    def accepted(self) -> int:
        """Records that were valid, whether or not they changed anything."""
        return self.stored + self.unchanged

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.accepted} accepted ({self.stored} stored, {self.unchanged} unchanged), "
            f"{self.rejected} rejected"
        )


class StoreFailure(Exception):
    """The store failed (not a record of the input): ingest stopped at `line`."""

    def __init__(self, report: IngestReport, line: int, reason: str) -> None:
        """`report` counts what was done before line `line`; `reason` is the store's error."""
        super().__init__(
            f"stopped at line {line}: the store failed: {reason}; the records before line "
            f"{line} are stored, and ingesting the same input again is safe"
        )
        self.report = report
        self.line = line
        self.reason = reason


RejectHandler = Callable[[int, str], None]


class _Readable(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def ingest_lines(
    engine: Engine,
    lines: Iterable[bytes] | IO[bytes],
    languages: Sequence[str],
    *,
    on_reject: RejectHandler,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    settings: IngestSettings | None = None,
) -> IngestReport:
    """Apply every line's record in order; report rejects through `on_reject(line, reason)`.

    `on_progress(n)` hears now and then that `n` more bytes of input were read. Raises
    StoreFailure when the store fails, and OSError when `lines` cannot be read.
    """
    limits = Limits.from_settings(settings or IngestSettings())
    report = IngestReport()
    resume_at = 1  # the first line no batch has stored yet
    try:
        with engine.connect() as connection, bulk_writes(connection):
            for_writing(connection)  # each batch reads, then writes: see for_writing
            writer = StoreWriter(connection)
            store = _Store(connection, writer, tuple(languages), report, on_reject)
            for items in _batches(lines, languages, limits, batch_size, on_progress):
                resume_at = items[0][0]
                store.apply(items)
                resume_at = items[-1][0] + 1
    except SQLAlchemyError as error:  # connecting or setting up, outside any batch
        if not is_store_failure(error):
            raise
        raise StoreFailure(report, resume_at, _error_text(error)) from error
    log.info(
        "ingest finished stored=%d unchanged=%d rejected=%d",
        report.stored,
        report.unchanged,
        report.rejected,
    )
    return report


Item = tuple[int, Record | str]  # a line's number, and its record or the reason it has none


def _batches(
    lines: Iterable[bytes] | IO[bytes],
    languages: Sequence[str],
    limits: Limits,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
) -> Iterator[list[Item]]:
    """The input's lines parsed, in batches of at most `batch_size` items or BATCH_BYTES."""
    items: list[Item] = []
    size = unreported = 0
    for number, raw, length in _numbered_lines(lines, limits.line):
        size += length
        unreported += length
        if len(raw) < length:
            items.append((number, over_limit(length, "bytes", limits.line)))
        elif raw.strip():  # blank lines, such as a trailing one, are not records
            items.append((number, _parse(raw, languages, limits)))
        if len(items) >= batch_size or size >= BATCH_BYTES:
            yield items
            items, size = [], 0
        if on_progress is not None and unreported >= _PROGRESS_BYTES:
            on_progress(unreported)
            unreported = 0
    if items:
        yield items
    if on_progress is not None and unreported:
        on_progress(unreported)


def _numbered_lines(
    source: Iterable[bytes] | IO[bytes], limit: Limit
) -> Iterator[tuple[int, bytes, int]]:
    """(number, line, size) for each line; a line over `limit` comes empty, never read whole."""
    most = limit[0] + 1  # the line break does not count
    if not hasattr(source, "readline"):
        for number, raw in enumerate(source, start=1):
            yield (
                (number, raw, len(raw))
                if len(raw.rstrip(b"\n")) < most
                else (number, b"", len(raw))
            )
        return
    stream: _Readable = source  # type: ignore[assignment]
    number = 0
    while raw := stream.readline(most):
        number += 1
        if len(raw) < most or raw.endswith(b"\n"):
            yield number, raw, len(raw)
            continue
        size = len(raw)
        while (rest := stream.readline(_READ_CHUNK)) and not rest.endswith(b"\n"):
            size += len(rest)
        yield number, b"", size + len(rest)


def _parse(raw: bytes, languages: Sequence[str], limits: Limits) -> Record | str:
    """The line's record, or the reason it has none."""
    try:
        return parse_record(raw.decode("utf-8"), languages, limits)
    except UnicodeDecodeError as error:
        return f"not valid UTF-8 (byte {error.start + 1})"
    except RecordError as error:
        return str(error)
    except Exception as error:  # no line may stop an ingest: a parser's surprise is its reason
        log.warning("ingest: unexpected error reading a line", exc_info=True)
        return f"cannot be read: {_error_text(error)}"


class _Store:
    """Stores batches of parsed lines, counting and reporting what became of each."""

    def __init__(
        self,
        connection: Connection,
        writer: StoreWriter,
        languages: tuple[str, ...],
        report: IngestReport,
        on_reject: RejectHandler,
    ) -> None:
        self.connection = connection
        self.writer = writer
        self.languages = languages
        self.report = report
        self.on_reject = on_reject

    def apply(self, items: list[Item]) -> None:
        """Store the batch's records in one transaction, or one at a time if that fails."""
        records = [item for _, item in items if not isinstance(item, str)]
        outcomes: Iterator[Outcome] | None = None
        try:
            if records:
                outcomes = iter(self._committed(items[0][0], lambda: self._write(records)))
            else:
                outcomes = iter(())
        except StoreFailure:
            raise
        except Exception as error:
            self.writer.forget()
            if is_store_failure(error):
                raise StoreFailure(self.report, items[0][0], _error_text(error)) from error
            log.info(
                "ingest: a batch was refused, applying its records one at a time: %s",
                _error_text(error),
            )
        for number, item in items:
            if isinstance(item, str):
                outcome = Outcome(False, item)
            elif outcomes is not None:
                outcome = next(outcomes)
            else:
                outcome = self._alone(number, item)
            self._count(number, outcome)

    def _alone(self, number: int, record: Record) -> Outcome:
        """Apply one record in a transaction of its own; a database error rejects it alone."""
        try:
            return self._committed(number, lambda: self._write([record]))[0]
        except StoreFailure:
            raise
        except Exception as error:
            self.writer.forget()
            if is_store_failure(error):
                raise StoreFailure(self.report, number, _error_text(error)) from error
            return Outcome(False, f"{describe(record)}: could not be stored: {_error_text(error)}")

    def _write(self, records: Sequence[Record]) -> list[Outcome]:
        """Store `records` and mark the feeds they touch; the caller owns the transaction."""
        applied = self.writer.apply(records)
        self.writer.mark_dirty(dirty_keys(applied.changes, self.languages))
        return applied.outcomes

    def _committed(self, line: int, work: Callable[[], T]) -> T:
        """`work` done and committed in a transaction of its own, or rolled back."""
        try:
            transaction = self.connection.begin()
        except Exception as error:  # no transaction to be had: no record is to blame
            raise StoreFailure(self.report, line, _error_text(error)) from error
        try:
            result = work()
            transaction.commit()
        except BaseException:
            try:
                # After a failed commit the transaction is inactive, but still to be ended.
                self.connection.rollback()
            except Exception:
                log.debug("ingest: rollback failed too", exc_info=True)
            raise
        return result

    def _count(self, number: int, outcome: Outcome) -> None:
        if outcome.rejection is not None:
            self.report.rejected += 1
            self.on_reject(number, outcome.rejection)
        elif outcome.changed:
            self.report.stored += 1
        else:
            self.report.unchanged += 1


def _error_text(error: BaseException) -> str:
    """An error as one short line: database errors carry whole statements and parameters."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error)
    first = " ".join(text.strip().splitlines()[:1]) or type(error).__name__
    if original is None and not isinstance(error, RecordError):
        first = f"{type(error).__name__}: {first}"
    return first if len(first) <= _REASON_CHARS else first[: _REASON_CHARS - 1] + "…"
