"""Rendered articles kept in a temporary file, so a build's memory does not grow with the archive."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one article's fragments lie in the spool file, and when the article last changed."""

    offset: int
    rss: int
    atom: int
    json: int
    updated: datetime

    def span(self, fmt: str) -> tuple[int, int]:
        """Offset and length of the fragment for format `fmt`."""
        if fmt == "rss":
            return self.offset, self.rss
        if fmt == "atom":
            return self.offset + self.rss, self.atom
        return self.offset + self.rss + self.atom, self.json


class FragmentSpool:
    """An append-only file of fragments with an index; readable from other processes by path."""

    def __init__(self, directory: Path | None = None) -> None:
        """Create an empty spool file (in `directory`, else the system's temporary folder)."""
        handle, name = tempfile.mkstemp(prefix="syndicate-fragments-", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(handle, "w+b")
        self.slots: dict[int, Slot] = {}
        self._end = 0

    def add(self, pk: int, rss: bytes, atom: bytes, json_item: bytes, updated: datetime) -> None:
        """Keep one article's fragments."""
        self._file.write(rss + atom + json_item)
        self.slots[pk] = Slot(self._end, len(rss), len(atom), len(json_item), updated)
        self._end += len(rss) + len(atom) + len(json_item)

    def __contains__(self, pk: object) -> bool:
        """Whether the article has been rendered."""
        return pk in self.slots

    def flush(self) -> None:
        """Make everything added readable, here and in other processes."""
        self._file.flush()

    def reader(self) -> SpoolReader:
        """A reader of this spool in this process."""
        self.flush()
        return SpoolReader(self._file.fileno(), self.slots)

    def close(self) -> None:
        """Delete the spool."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class SpoolReader:
    """Reads fragments by article from an open spool file."""

    def __init__(self, fileno: int, slots: dict[int, Slot]) -> None:
        """Read from the open file `fileno` using `slots` as the index."""
        self.fileno = fileno
        self.slots = slots

    def fragment(self, pk: int, fmt: str) -> bytes:
        """The article's fragment for format `fmt`."""
        offset, length = self.slots[pk].span(fmt)
        return os.pread(self.fileno, length, offset)

    def updated(self, pk: int) -> datetime:
        """When the article last changed."""
        return self.slots[pk].updated
