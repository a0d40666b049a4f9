"""Subscriber lists as CSV: import an operator's list, export the current one.

Columns: email, name, language, digests, topics (digests and topics are words separated by
spaces or semicolons), and on export status and suppressed_because (why an address is
suppressed: `bounced: mail 5.1.1 550 user unknown`). An import takes its own export: a
suppressed row is stored suppressed with that detail. A bad row is reported by its line number and the
rest are imported; addresses are normalised, so spellings of one address merge into one
subscriber. An address on the suppression list is never subscribed again by an import.

The file is UTF-8. Read it with `errors="surrogateescape"` (see `open_csv`): a byte that is
not UTF-8 then reaches a cell as a lone surrogate, and only the row that holds it is refused,
named by its line, instead of the whole file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, insert, update

from syndicate.store.schema import subscriber
from syndicate.subscribers import registry
from syndicate.subscribers.addresses import needs_smtputf8, normalise_address
from syndicate.subscribers.registry import (
    SUPPRESSION_REASONS,
    Choices,
    PreferenceError,
    Preferences,
    Subscriber,
    split_choices,
)
from syndicate.subscribers.topics import topic_slugs

COLUMNS = ("email", "name", "language", "digests", "topics")
EXPORT_COLUMNS = (*COLUMNS, "status", "suppressed_because")
# A spreadsheet runs a cell starting with one of these as a formula; export prefixes such a
# cell with an apostrophe (OWASP's advice) and import takes the apostrophe off again.
FORMULA_STARTS = ("=", "+", "-", "@")
BATCH_SIZE = 500
# What surrogateescape makes of a byte that is not UTF-8: U+DC80 to U+DCFF.
_UNDECODABLE = re.compile("[\udc80-\udcff]")

ErrorHandler = Callable[[int, str], None]


class CsvHeaderError(ValueError):
    """A file whose first row does not name the columns this format has."""


@dataclass
class ImportReport:
    """What an import did, row by row, summed up."""

    created: int = 0
    updated: int = 0
    rejected: int = 0
    suppressed: int = 0
    # Imported addresses with a non-ASCII local part: only a server offering SMTPUTF8 takes them.
    smtputf8: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.created} created, {self.updated} updated, {self.rejected} rejected, "
            f"{self.suppressed} suppressed and left alone"
            + (f"; {_addresses(len(self.smtputf8))} SMTPUTF8" if self.smtputf8 else "")
        )


def _addresses(count: int) -> str:
    return "1 address needs" if count == 1 else f"{count} addresses need"


def open_csv(path: Path) -> TextIO:
    """`path` opened for `import_csv`: UTF-8 (a byte-order mark skipped), bad bytes kept for it."""
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


@dataclass(frozen=True, slots=True)
class _Row:
    """One parsed row: None where the cell was empty (keep what is stored, or the default)."""

    email: str
    name: str | None
    language: str | None
    digests: tuple[str, ...] | None
    topics: tuple[str, ...] | None
    status: str | None
    suppressed_because: str | None = None  # "bounced: mail 5.1.1 …", as an export writes it


def _defuse(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _undefuse(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def _header(cells: Sequence[str] | None) -> list[str]:
    if cells is None:
        raise CsvHeaderError("the file is empty; its first row must name the columns")
    if any(_UNDECODABLE.search(cell) for cell in cells):
        raise CsvHeaderError("the first row is not valid UTF-8; save the file as UTF-8")
    names = [cell.strip().lstrip("\ufeff").lower() for cell in cells]
    unknown = [name for name in names if name not in EXPORT_COLUMNS]
    if unknown:
        raise CsvHeaderError(
            f"unknown column {unknown[0]!r} in the first row; the columns are "
            + ", ".join(EXPORT_COLUMNS)
        )
    if "email" not in names:
        raise CsvHeaderError("the first row must name the columns, and one must be 'email'")
    if len(set(names)) != len(names):
        raise CsvHeaderError("a column is named twice in the first row")
    return names


def _parse(names: list[str], cells: list[str]) -> _Row:
    if len(cells) > len(names):
        raise ValueError(f"{len(cells)} cells, but the first row names {len(names)} columns")
    values = {name: _undefuse(cell.strip()) for name, cell in zip(names, cells, strict=False)}

    def cell(name: str) -> str | None:
        return values.get(name) or None

    try:
        email = normalise_address(values.get("email", ""))
    except ValueError as error:
        raise ValueError(f"email: {error}") from None
    digests, topics = cell("digests"), cell("topics")
    status = cell("status")
    if status is not None and status not in ("pending", "confirmed", *SUPPRESSION_REASONS):
        raise ValueError(f"status: unknown status {status!r}")
    return _Row(
        email=email,
        name=cell("name"),
        language=cell("language"),
        digests=tuple(kind.lower() for kind in split_choices(digests)) if digests else None,
        topics=split_choices(topics) if topics else None,
        status=status,
        suppressed_because=cell("suppressed_because"),
    )


def _undecodable(names: list[str], start: int, cells: list[str]) -> ValueError | None:
    """The error for a row (starting on line `start`) holding bytes that are not UTF-8."""
    lines = 0  # line breaks in the row before the cell looked at (a quoted cell may hold some)
    for number, cell in enumerate(cells):
        found = _UNDECODABLE.search(cell)
        if found is None:
            lines += cell.count("\n")
            continue
        where = f"the {names[number]} cell" if number < len(names) else f"cell {number + 1}"
        line = start + lines + cell.count("\n", 0, found.start())
        if line != start:
            where += f" on line {line}"
        byte = ord(found.group()) - 0xDC00
        return ValueError(f"not valid UTF-8: byte 0x{byte:02X} in {where}; save the file as UTF-8")
    return None


def _rows(stream: Iterable[str]) -> Iterator[tuple[int, _Row | ValueError]]:
    """Each row's first line and the row parsed, or the error that makes it bad."""
    reader = csv.reader(stream)
    try:
        names = _header(next(reader, None))
    except csv.Error as error:
        raise CsvHeaderError(f"the first row cannot be read: {error}") from None
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # such as a cell over the csv module's size limit
            start, line = line, reader.line_num + 1
            if line == start:  # the reader made no progress; going on would loop for ever
                yield start, ValueError(f"the file cannot be read from here on: {error}")
                return
            yield start, ValueError(f"the row cannot be read: {error}")
            continue
        start, line = line, reader.line_num + 1  # a quoted cell may span several lines
        undecodable = _undecodable(names, start, cells)
        if undecodable is not None:
            yield start, undecodable
            continue
        if not any(cell.strip() for cell in cells):
            continue
        try:
            yield start, _parse(names, cells)
        except ValueError as error:
            yield start, error


class _Importer:
    """Applies parsed rows to the store, remembering which subscribers this import touched."""

    def __init__(self, connection: Connection, choices: Choices, *, confirmed: bool) -> None:
        self.connection = connection
        self.choices = choices
        self.confirmed = confirmed
        self.topics = topic_slugs(connection)
        self.seen: set[int] = set()
        self.now = datetime.now(UTC)

    def _preferences(self, row: _Row, current: Subscriber | None) -> Preferences:
        merge = current is not None and current.pk in self.seen
        digests = row.digests or ()
        topics = row.topics or ()
        if current is not None:
            # Rows of one import add up; a later import replaces what its cells name.
            digests = (*current.digests, *digests) if merge or row.digests is None else digests
            topics = (*current.topics, *topics) if merge or row.topics is None else topics
        wanted = Preferences(
            language=row.language or (current.language if current else self.choices.languages[0]),
            digests=digests or self.choices.kinds[:1],
            topics=topics,
            name=row.name if row.name is not None else (current.name if current else ""),
        )
        return registry.validate(self.connection, wanted, self.choices, known_topics=self.topics)

    def _status(self, row: _Row, current: Subscriber | None) -> str:
        if row.status in SUPPRESSION_REASONS:
            return "unsubscribed"
        if row.status == "pending" or not self.confirmed:
            return current.status if current and current.status == "confirmed" else "pending"
        return "confirmed"

    def apply(self, row: _Row) -> str:
        """Store one row: "created", "updated" or "suppressed" (left alone)."""
        if registry.suppression_reason(self.connection, row.email) is not None:
            return "suppressed"
        current = registry.find_by_email(self.connection, row.email)
        chosen = self._preferences(row, current)
        status = self._status(row, current)
        values: dict[str, Any] = {
            "name": chosen.name,
            "language": chosen.language,
            "digests": list(chosen.digests),
            "topics": list(chosen.topics),
            "status": status,
            "updated_at": self.now,
        }
        if status == "confirmed" and (current is None or current.confirmed_at is None):
            values["confirmed_at"] = self.now
        if current is None:
            pk = self.connection.execute(
                insert(subscriber).returning(subscriber.c.pk),
                {"email": row.email, "created_at": self.now, **values},
            ).scalar_one()
            outcome = "created"
        else:
            pk = current.pk
            self.connection.execute(update(subscriber).where(subscriber.c.pk == pk).values(values))
            outcome = "updated"
        if row.status in SUPPRESSION_REASONS:
            registry.suppress(self.connection, row.email, row.status, _detail(row), now=self.now)
        self.seen.add(pk)
        return outcome


def _detail(row: _Row) -> str:
    """The suppression detail of a suppressed row: its export's words, else "imported"."""
    because = row.suppressed_because
    if because is None:
        return "imported"
    if because == row.status:  # exported without a detail
        return ""
    return because.removeprefix(f"{row.status}:").strip()


def _because(reason: str | None, detail: str) -> str:
    """Why an address is suppressed, for the export: `bounced: mail 5.1.1 …`, or ""."""
    if reason is None:
        return ""
    return f"{reason}: {detail}" if detail else reason


def import_csv(
    engine: Engine,
    stream: Iterable[str],
    *,
    confirmed: bool,
    languages: Sequence[str],
    kinds: Sequence[str],
    on_error: ErrorHandler,
    on_notice: ErrorHandler | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import a subscriber list; each bad or suppressed row goes to `on_error(line, reason)`.

    Without `confirmed`, new subscribers are pending (they receive nothing until they confirm);
    with it, they are confirmed. A `status` column of an export is honoured: "pending" stays
    pending, and unsubscribed, bounced or complained rows are stored suppressed. An imported
    address that needs SMTPUTF8 goes to `on_notice(line, note)`. Raises CsvHeaderError,
    before storing anything, when the first row is not a valid header.
    """
    report = ImportReport()
    choices = Choices(tuple(languages), tuple(kinds))
    with engine.connect() as connection:
        transaction = connection.begin()
        importer = _Importer(connection, choices, confirmed=confirmed)
        pending = 0
        noted: set[str] = set()
        for line, parsed in _rows(stream):
            if isinstance(parsed, ValueError):
                report.rejected += 1
                on_error(line, str(parsed))
                continue
            try:
                with connection.begin_nested():
                    outcome = importer.apply(parsed)
            except PreferenceError as error:
                report.rejected += 1
                on_error(line, str(error))
                continue
            if outcome == "suppressed":
                report.suppressed += 1
                on_error(line, f"{parsed.email} is on the suppression list; not subscribed again")
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if needs_smtputf8(parsed.email) and parsed.email not in noted:
                noted.add(parsed.email)
                report.smtputf8.append(parsed.email)
                if on_notice is not None:
                    on_notice(line, f"{parsed.email} needs SMTPUTF8 (its local part is not ASCII)")
            pending += 1
            if pending >= batch_size:
                transaction.commit()
                transaction = connection.begin()
                pending = 0
        transaction.commit()
    return report


def export_csv(engine: Engine, stream: TextIO) -> int:
    """Write every subscriber as CSV (no keys, no tokens); return how many rows were written."""
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    written = 0
    for person, reason, detail in registry.all_with_suppressions(engine):
        writer.writerow(
            [
                _defuse(person.email),
                _defuse(person.name),
                person.language,
                " ".join(person.digests),
                " ".join(person.topics),
                reason or person.status,
                _defuse(_because(reason, detail)),  # a remote server's words: untrusted
            ]
        )
        written += 1
    return written
