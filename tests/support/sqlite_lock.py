"""Another connection to a SQLite store, holding its write lock while a test asks it to."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class LockHolder:
    """A plain sqlite3 connection that can take the write lock (BEGIN IMMEDIATE) and keep it."""

    def __init__(self, path: Path) -> None:
        """Connect to the store at `path`; hold nothing yet."""
        self.connection = sqlite3.connect(path, isolation_level=None, timeout=0)

    def hold(self) -> None:
        """Take the write lock, and keep it until `release`."""
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        """Give the lock up."""
        self.connection.execute("ROLLBACK")

    def try_to_write(self) -> bool:
        """Whether a write could begin at once (it is rolled back at once)."""
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            return False
        self.connection.execute("ROLLBACK")
        return True

    def close(self) -> None:
        """Close the connection (rolling back whatever it holds)."""
        self.connection.close()
