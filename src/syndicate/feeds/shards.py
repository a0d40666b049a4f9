"""A feed build planned for sharing: which feeds it renders, and each shard's share of them.

A shard's share is decided by a hash of the feed key (not Python's `hash`, which differs
between processes), so every process that splits the same keys in the same number of shards
agrees, and each key lands in exactly one shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from syndicate.feeds.build import needs_full_build, read_registry
from syndicate.feeds.builder import STANDING_KINDS, FeedBuilder, NoProgress
from syndicate.feeds.config import FeedConfig
from syndicate.store.database import for_reading
from syndicate.store.schema import dirty_feed, state


def share_of(key: str, shards: int) -> int:
    """The shard (0 to `shards` - 1) that renders feed `key`, the same in every process."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def split_keys(keys: Iterable[str], shards: int) -> list[list[str]]:
    """`keys` in `shards` shares, each sorted; every key in exactly one."""
    shares: list[list[str]] = [[] for _ in range(shards)]
    for key in sorted(set(keys)):
        shares[share_of(key, shards)].append(key)
    return shares


@dataclass(frozen=True)
class BuildPlan:
    """What one build renders, as of its clock: every feed key, and the dirty marks it read."""

    mode: str  # "full" or "incremental"
    now: datetime
    keys: list[str]
    dirty: dict[str, str]

    @property
    def full(self) -> bool:
        """Whether this is a full build (strays are removed, the index rewritten)."""
        return self.mode == "full"


def plan_build(engine: Engine, config: FeedConfig, now: datetime, *, full: bool) -> BuildPlan:
    """Decide a build as `build_feeds` does: full or incremental, and the feed keys it renders.

    A full build renders every feed that has something in it (or always stands) and every
    feed on record, so that those now empty are removed; an incremental one what ingest
    marked and what time changed since the last build.
    """
    with engine.connect() as connection:
        for_reading(connection)
        with connection.begin():
            saved = {row.name: row.value for row in connection.execute(select(state))}
            dirty = {row.key: row.token for row in connection.execute(select(dirty_feed))}
            builder = FeedBuilder(connection, config, now, NoProgress(), None)
            try:
                full = full or needs_full_build(saved, config, builder.target)
                if full:
                    keys = set(read_registry(connection)) | {
                        content.key
                        for content in builder.reader.everything()
                        if content.article_pks or content.kind in STANDING_KINDS
                    }
                else:
                    since = datetime.fromisoformat(saved["built_at"])
                    keys = set(dirty) | builder.time_driven_keys(since)
            finally:
                builder.close()
    return BuildPlan("full" if full else "incremental", now, sorted(keys), dirty)
