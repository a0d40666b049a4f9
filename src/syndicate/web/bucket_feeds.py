"""The feeds bucket over HTTP: with [feeds] publish = "s3", every node's /feeds/ reads through.

No node has the feeds on disk then; each asks the bucket, keeps what it got in a memory cache
bounded in bytes ([feeds.s3] cache_bytes, least recently used out first), answers from the
cache for [feeds.s3] cache_seconds, and after that asks again with If-None-Match, so an
unchanged file costs the bucket a 304 and no body. Clients see what the folder server gives:
the same ETag for the same bytes (web.static_feeds.prepare), 304s, gzip, media types and
Cache-Control. When the bucket cannot be reached a cached copy is served with a Warning
header; without one the answer is 503.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from starlette.concurrency import run_in_threadpool

from syndicate.feeds import layout
from syndicate.feeds.bucket import Bucket, PublishError
from syndicate.web.static_feeds import (
    CachedFile,
    Scope,
    Send,
    answer,
    prepare,
    refused,
    respond_with,
    safe_relative,
    size,
)

if TYPE_CHECKING:
    from syndicate.feeds.object_store import Fetched

log = logging.getLogger(__name__)

READ_ATTEMPTS = 1  # a reader does not wait out back-offs: it has a stale copy, or asks next time
READ_CONNECTIONS = 40  # as many as Starlette's thread pool runs calls at once
STALE = ((b"warning", b'110 - "Response is Stale"'),)
RETRY_AFTER = b"30"


class BucketReader(Protocol):
    """What serving needs of the bucket (feeds.object_store.ObjectStore)."""

    def fetch(self, relative: str, etag: str | None = None) -> Fetched | None:
        """The object, None if there is none; no body if `etag` is still current."""


@dataclass(slots=True)
class Entry:
    """A cached file, the bucket's ETag for it, and when the bucket last vouched for it."""

    file: CachedFile
    upstream: str
    checked: float
    stale: bool = False  # served because the bucket could not be asked


class Unavailable(Exception):
    """The bucket could not be reached and no copy of the file is cached."""


class BucketFeeds:
    """Answers /feeds/ requests from a bucket through a bounded, briefly trusted memory cache."""

    def __init__(
        self,
        store: BucketReader,
        *,
        max_age: int = 300,
        cache_bytes: int = 64 * 1024 * 1024,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Serve `store`'s objects; `clock` (seconds) decides when a cached copy is re-checked."""
        self.store = store
        self.cache_control = layout.cache_control(max_age).encode()
        self.cache_bytes = cache_bytes
        self.cache_seconds = cache_seconds
        self.cached_bytes = 0
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        # One request to the bucket per file at a time; others asking meanwhile share it.
        self._asking: dict[str, asyncio.Future[Entry | None]] = {}

    async def respond(self, scope: Scope, relative: str, send: Send) -> None:
        """Answer a request for `relative`, a path below /feeds/."""
        if await refused(scope, send):
            return
        try:
            entry = await self._lookup(relative)
        except Unavailable:
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            headers.append((b"retry-after", RETRY_AFTER))
            await respond_with(send, 503, headers, b"Feeds temporarily unavailable\n")
            return
        found = entry.file if entry else None
        await answer(scope, send, found, self.cache_control, STALE if entry and entry.stale else ())

    async def find(self, relative: str) -> CachedFile | None:
        """The file at `relative`, or None if there is none or the bucket cannot say."""
        try:
            entry = await self._lookup(relative)
        except Unavailable:
            return None
        return entry.file if entry else None

    def cached(self) -> dict[str, CachedFile]:
        """The files held now, least recently used first."""
        return {relative: entry.file for relative, entry in self._entries.items()}

    async def _lookup(self, relative: str) -> Entry | None:
        """The entry for a URL path: cached if fresh, else asked of the bucket."""
        checked = safe_relative(relative)
        if checked is None:
            return None
        entry = self._entries.get(checked)
        if entry is not None and self._clock() - entry.checked < self.cache_seconds:
            self._entries.move_to_end(checked)
            return entry
        asking = self._asking.get(checked)
        if asking is None:
            asking = asyncio.ensure_future(self._refresh(checked, entry))
            self._asking[checked] = asking
            asking.add_done_callback(lambda _: self._asking.pop(checked, None))
        # Shielded: one client hanging up must not cancel the answer others wait for.
        return await asyncio.shield(asking)

    async def _refresh(self, relative: str, entry: Entry | None) -> Entry | None:
        """Ask the bucket for `relative`, conditionally when a copy is cached."""
        try:
            fetched = await run_in_threadpool(
                self.store.fetch, relative, entry.upstream if entry else None
            )
        except PublishError as error:
            if entry is None:
                log.error("feeds bucket unreachable; answered 503 key=%s error=%s", relative, error)
                raise Unavailable(relative) from error
            log.warning("feeds bucket unreachable; served stale key=%s error=%s", relative, error)
            # Asked again after cache_seconds, not on every request while the bucket is away.
            entry.checked, entry.stale = self._clock(), True
            return entry
        if fetched is None:
            self._forget(relative)
            return None
        if fetched.body is None and entry is not None:
            entry.checked, entry.stale = self._clock(), False
            return entry
        body = fetched.body or b""
        modified = int(fetched.last_modified)
        file = prepare(body, os.path.splitext(relative)[1], (0, len(body), modified), modified)
        fresh = Entry(file, fetched.etag, self._clock())
        self._remember(relative, fresh)
        return fresh

    def _remember(self, relative: str, entry: Entry) -> None:
        """Keep `entry`, evicting the least recently used beyond the byte budget."""
        self._forget(relative)
        if size(entry.file) > self.cache_bytes:
            return  # larger than the whole cache: served, never kept
        self._entries[relative] = entry
        self.cached_bytes += size(entry.file)
        while self.cached_bytes > self.cache_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.cached_bytes -= size(evicted.file)

    def _forget(self, relative: str) -> None:
        old = self._entries.pop(relative, None)
        if old is not None:
            self.cached_bytes -= size(old.file)


def open_bucket_feeds(
    bucket: Bucket,
    *,
    cache_bytes: int,
    cache_seconds: float,
    clock: Callable[[], float] | None = None,
) -> BucketFeeds:
    """/feeds/ served from `bucket` ([feeds.s3]), with its own client to the bucket."""
    # Deferred, as for builds: boto3 is slow to import and folder-served sites never need it.
    from syndicate.feeds.object_store import ObjectStore

    store = ObjectStore(bucket, attempts=READ_ATTEMPTS, connections=READ_CONNECTIONS)
    return BucketFeeds(
        store,
        max_age=bucket.max_age,
        cache_bytes=cache_bytes,
        cache_seconds=cache_seconds,
        clock=clock or time.monotonic,
    )
