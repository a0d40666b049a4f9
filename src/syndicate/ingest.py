"""Ingest: JSON Lines records from a file or a stream into the store, one line at a time.

Each record is validated, then applied inside a savepoint, so a rejected record stores nothing
and every other record is stored. Work is committed in batches so memory stays flat however
long the input is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from syndicate.model import Article, Pick, Record, Topic, Views
from syndicate.records import RecordError, describe, parse_record
from syndicate.store.database import for_writing
from syndicate.store.writes import StoreWriter

log = logging.getLogger(__name__)

BATCH_SIZE = 500


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


RejectHandler = Callable[[int, str], None]


def ingest_lines(
    engine: Engine,
    lines: Iterable[bytes],
    languages: Sequence[str],
    *,
    on_reject: RejectHandler,
    on_line: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestReport:
    """Apply every line's record in order; report rejects through `on_reject(line, reason)`."""
    report = IngestReport()
    with engine.connect() as connection:
        for_writing(connection)  # each batch reads, then writes: see for_writing
        writer = StoreWriter(connection, languages)
        transaction = connection.begin()
        pending = 0
        for number, raw in enumerate(lines, start=1):
            if on_line is not None:
                on_line(len(raw))
            if not raw.strip():
                continue  # blank lines, such as a trailing one, are not records
            try:
                record = parse_record(_decode(raw), languages)
                changed = _apply(writer, record)
            except RecordError as error:
                report.rejected += 1
                on_reject(number, str(error))
                continue
            if changed:
                report.stored += 1
            else:
                report.unchanged += 1
            pending += 1
            if pending >= batch_size:
                writer.flush_dirty()
                transaction.commit()
                transaction = connection.begin()
                pending = 0
        writer.flush_dirty()
        transaction.commit()
    log.info(
        "ingest finished stored=%d unchanged=%d rejected=%d",
        report.stored,
        report.unchanged,
        report.rejected,
    )
    return report


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordError(f"not valid UTF-8 (byte {error.start + 1})") from None


def _apply(writer: StoreWriter, record: Record) -> bool:
    """Apply one record atomically: all of it is stored, or (on error) none of it."""
    try:
        return _apply_in_savepoint(writer, record)
    except RecordError as error:
        raise RecordError(f"{describe(record)}: {error}") from None
    except IntegrityError as error:
        # Another writer raced us to the same row; the record is refused, not half-stored.
        raise RecordError(f"{describe(record)}: could not be stored: {error.orig}") from None


def _apply_in_savepoint(writer: StoreWriter, record: Record) -> bool:
    with writer.connection.begin_nested():
        match record:
            case Article():
                return writer.article(record)
            case Topic():
                return writer.topic(record)
            case Pick():
                return writer.pick(record)
            case Views():
                return writer.views(record)
    raise AssertionError(f"unhandled record {type(record).__name__}")
