"""What a batch of writes changed, as values: the store says what changed, never which feeds.

Which feed shows what is the feeds' knowledge (`feeds.changes` turns these values into feed
keys), so the store stays below the feeds: a write reports its `Changes`, the ingest that asked
for it has them turned into feed keys and hands those back to be marked dirty in the same
transaction (`StoreWriter.mark_dirty`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


# A named tuple, not a frozen dataclass: ingest makes one per article, and a tuple is built
# and hashed in C where a frozen dataclass sets each field through object.__setattr__ and
# hashes in Python (measured: about 0.8 % of the instructions ingest spends on an article).
class Placement(NamedTuple):
    """Where an article is listed for what it is: its language, section, tags and topics."""

    language: str
    section: str | None
    tag_slugs: tuple[str, ...]
    topic_slugs: tuple[str, ...]


@dataclass(frozen=True)
class Changes:
    """What one batch changed that a feed may show."""

    # Where the written articles are listed now, and where rewritten ones were before.
    placements: frozenset[Placement] = frozenset()
    # Languages whose editors' picks changed: a pick, or a change to a picked article.
    picks: frozenset[str] = frozenset()
    # Languages whose Most Viewed may show a change: views, or a change to a recently read one.
    views: frozenset[str] = frozenset()
    # Slugs of topics whose name or description changed in some language.
    topics: frozenset[str] = frozenset()
