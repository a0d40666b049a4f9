"""Putting feed files on disk: atomically, only when their bytes change, never outside the folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from syndicate.feeds.layout import FORMATS


class UnsafePath(ValueError):
    """A relative path that could leave the feeds folder."""


class FeedFolder:
    """The feeds folder; every path is checked to stay inside it."""

    def __init__(self, root: Path) -> None:
        """Write under `root`, creating it if needed."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def path(self, relative: str) -> Path:
        """The file for `relative` (such as `en/tags/iraq.rss`), refusing any escape."""
        parts = relative.split("/")
        if "\\" in relative or "\x00" in relative:
            raise UnsafePath(relative)
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            raise UnsafePath(relative)
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root):  # a symlink pointing outside
            raise UnsafePath(relative)
        return path

    def write(self, relative: str, data: bytes) -> bool:
        """Replace the file with `data` unless it already holds exactly that; True if written.

        Unchanged files keep their mtime, so HTTP validators and mirrors see no change. The new
        bytes go to a hidden temporary file first and are renamed over the old one, so a reader
        sees either the old file or the new one, never a partial one.
        """
        path = self.path(relative)
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return False
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def remove(self, relative: str) -> bool:
        """Delete a file if it exists, and its folder if that leaves it empty; True if deleted."""
        path = self.path(relative)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        try:
            path.parent.rmdir()
        except OSError:
            pass  # not empty, which is the usual case
        return True

    def feed_files(self) -> Iterator[str]:
        """Relative paths of every feed file present (the index files are not feeds)."""
        suffixes = tuple(f".{fmt}" for fmt in FORMATS)
        for directory, _folders, files in os.walk(self.root):
            for name in files:
                if name.endswith(suffixes) and not name.startswith("."):
                    yield Path(directory, name).relative_to(self.root).as_posix()


def feed_file(key: str, fmt: str) -> str:
    """The relative file name of feed `key` in format `fmt`."""
    return f"{key}.{fmt}"
