"""Putting feed files on disk: atomically, only when their bytes change, never outside the folder."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from syndicate.feeds.layout import FORMATS


class UnsafePath(ValueError):
    """A relative path that could leave the feeds folder."""


def checked_parts(relative: str) -> list[str]:
    """The folders and name of `relative`, refusing any that could climb out or hide."""
    parts = relative.split("/")
    if "\\" in relative or "\x00" in relative:
        raise UnsafePath(relative)
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise UnsafePath(relative)
    return parts


class FeedFolder:
    """The feeds folder; every path is checked to stay inside it."""

    def __init__(self, root: Path) -> None:
        """Write under `root`, creating it if needed."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self._root = str(self.root)
        self._checked: set[str] = set()  # folders already known to lie inside the root

    def path(self, relative: str) -> Path:
        """The file for `relative` (such as `en/tags/iraq.rss`), refusing any escape."""
        return Path(self._checked_path(relative))

    def _checked_path(self, relative: str) -> str:
        parts = checked_parts(relative)
        folder = os.path.join(self._root, *parts[:-1])
        if folder not in self._checked:
            # A symlinked folder could point outside; resolve each folder once per build.
            # (The file itself is replaced by rename, which never follows a symlink.)
            if not Path(folder).resolve().is_relative_to(self.root):
                raise UnsafePath(relative)
            if os.path.isdir(folder):
                self._checked.add(folder)
        return os.path.join(folder, parts[-1])

    def write(self, relative: str, data: bytes) -> bool:
        """Replace the file with `data` unless it already holds exactly that; True if written.

        Unchanged files keep their mtime, so HTTP validators and mirrors see no change. The new
        bytes go to a hidden temporary file first and are renamed over the old one, so a reader
        sees either the old file or the new one, never a partial one.
        """
        path = self._checked_path(relative)
        try:
            if os.stat(path).st_size == len(data) and _read(path) == data:
                return False
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        folder, name = os.path.split(path)
        temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return True

    def remove(self, relative: str) -> bool:
        """Delete a file if it exists, and its folder if that leaves it empty; True if deleted."""
        path = self.path(relative)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):  # not empty, which is the usual case
            path.parent.rmdir()
        return True

    def exists(self, relative: str) -> bool:
        """True if the file is present."""
        return os.path.isfile(self._checked_path(relative))

    def survey(self) -> None:
        """Nothing to prepare: a folder answers each question cheaply."""

    def flush(self) -> None:
        """Nothing to wait for: every write is on disk when it returns."""

    def close(self) -> None:
        """Nothing to release."""

    def feed_files(self) -> Iterator[str]:
        """Relative paths of every feed file present (the index files are not feeds)."""
        suffixes = tuple(f".{fmt}" for fmt in FORMATS)
        for directory, _folders, files in os.walk(self.root):
            for name in files:
                if name.endswith(suffixes) and not name.startswith("."):
                    yield Path(directory, name).relative_to(self.root).as_posix()


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def feed_file(key: str, fmt: str) -> str:
    """The relative file name of feed `key` in format `fmt`."""
    return f"{key}.{fmt}"
