"""Reports kept as files: one RFC 5322 message, an mbox, or a Maildir folder, told apart by looking.

A folder with `cur/` and `new/` is a Maildir, read message by message (new first, then cur,
each in name order: the order they arrived in). A file whose first line is an mbox
`From ` line is an mbox, read with Python's `mailbox` (it indexes the file's offsets first,
then reads one message at a time). Any other file is one message if its first line is a
header field. Anything else is not a mailbox, said before any message is read.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_HEADER_FIELD = re.compile(rb"^[!-9;-~]{1,200}:")  # a field name (printable, no colon), a colon
_LOOK = 4_096  # bytes read to tell a file's kind


class NotAMailbox(ValueError):
    """A path that is no message, mbox or Maildir (or cannot be read at all)."""


@dataclass(frozen=True, slots=True)
class ReportFile:
    """One input: a path, and what it holds."""

    path: Path
    kind: str  # "message", "mbox" or "maildir"

    @property
    def many(self) -> bool:
        """Whether it can hold more than one message."""
        return self.kind != "message"


def open_report_file(path: Path) -> ReportFile:
    """What `path` holds; NotAMailbox when it is missing, unreadable or no mail."""
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return ReportFile(path, "maildir")
        raise NotAMailbox(f"{path}: a folder, but not a Maildir (no cur/ and new/)")
    try:
        with path.open("rb") as handle:
            head = handle.read(_LOOK)
    except OSError as error:
        raise NotAMailbox(f"{path}: {error.strerror or error}") from error
    first = head.split(b"\n", 1)[0]
    if first.startswith(b"From "):
        return ReportFile(path, "mbox")
    if _HEADER_FIELD.match(first):
        return ReportFile(path, "message")
    raise NotAMailbox(f"{path}: not a mail message, an mbox or a Maildir")


def read_messages(source: ReportFile) -> tuple[int, Iterator[tuple[str, bytes | OSError]]]:
    """How many messages `source` holds, and each one's reference and bytes (or why not).

    An OSError stands for a message that could not be read. A reference is where the message is: `PATH` for a single message, `PATH:N` for the Nth
    message of an mbox, the file's own path in a Maildir.
    """
    if source.kind == "maildir":
        files = _maildir_files(source.path)
        return len(files), ((str(file), _read(file)) for file in files)
    if source.kind == "mbox":
        box = mailbox.mbox(source.path, create=False)
        keys = box.keys()  # one pass over the file, indexing where each message starts
        return len(keys), _mbox_messages(source.path, box, keys)
    return 1, iter([(str(source.path), _read(source.path))])


def _read(file: Path) -> bytes | OSError:
    try:
        return file.read_bytes()
    except OSError as error:  # taken away while we read (another reader of the Maildir, say)
        return error


def _mbox_messages(
    path: Path, box: mailbox.mbox, keys: list[str]
) -> Iterator[tuple[str, bytes | OSError]]:
    try:
        for number, key in enumerate(keys, start=1):
            try:
                yield f"{path}:{number}", box.get_bytes(key)
            except OSError as error:
                yield f"{path}:{number}", error
    finally:
        box.close()


def _maildir_files(folder: Path) -> list[Path]:
    return [
        file
        for sub in ("new", "cur")
        for file in sorted((folder / sub).iterdir())
        if not file.name.startswith(".")  # a dot file is no message (Maildir++ keeps its own)
    ]
