"""Where a build puts its files: the feeds folder, or a bucket of S3-compatible object storage.

A build sees one small interface, `FeedTarget`; `open_target` picks the implementation from the
settings. The bucket's implementation (feeds.object_store) loads the AWS SDK, so it is imported
only by builds that publish there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from syndicate.feeds.bucket import Bucket
from syndicate.feeds.files import FeedFolder


class FeedTarget(Protocol):
    """What a build writes its files through: a folder or a bucket, alike to the build."""

    def write(self, relative: str, data: bytes) -> bool:
        """Store `data` as `relative` (such as `en/all.rss`) unless it holds it; True if written."""

    def remove(self, relative: str) -> bool:
        """Delete `relative` if present; True if it was."""

    def feed_files(self) -> Iterator[str]:
        """Relative paths of every feed file present (the index files are not feeds)."""

    def exists(self, relative: str) -> bool:
        """True if `relative` is present."""

    def survey(self) -> None:
        """Expect many writes (a full build): a bucket then lists once and writes in parallel."""

    def flush(self) -> None:
        """Wait until every write and removal so far is stored; raise the first failure."""

    def close(self) -> None:
        """Release what the target holds (a bucket's threads)."""


def open_target(feeds_dir: Path, bucket: Bucket | None) -> FeedTarget:
    """The bucket when one is configured, else the feeds folder."""
    if bucket is None:
        return FeedFolder(feeds_dir)
    # Deferred: boto3 takes a noticeable while to import, and folder builds never need it.
    from syndicate.feeds.object_store import ObjectStore

    return ObjectStore(bucket)
