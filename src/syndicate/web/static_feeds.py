"""The feeds folder over HTTP: media types, validators, 304s, gzip and CORS for pollers.

A raw ASGI app rather than Starlette's StaticFiles: partner sites poll the same few feeds all
day, so the hot path is a stat, a dictionary lookup and a 304; StaticFiles re-reads files, has no
content-based ETag and no compressed variant.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

from syndicate.feeds import layout
from syndicate.web.security import FEED_INDEX_POLICY

Scope = dict[str, Any]
Receive = Any
Send = Any

MEDIA_TYPES = {suffix: media_type.encode() for suffix, media_type in layout.MEDIA_TYPES.items()}
INDEX_FILE = "index.html"
# Below this size gzip saves less than its header and the CPU it costs.
GZIP_MIN_BYTES = 512
CACHE_BYTES = 64 * 1024 * 1024
ALLOWED = b"GET, HEAD, OPTIONS"
# How many URL paths to remember the checked file of (a few per feed; scanners add junk).
PATH_MEMORY = 200_000


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a file: its body and its validator."""

    body: bytes
    etag: bytes


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A file's bytes and headers, valid while the file's stat identity is unchanged."""

    identity: tuple[int, int, int]
    media_type: bytes
    extra_headers: tuple[tuple[bytes, bytes], ...]
    last_modified: bytes
    modified_seconds: int
    plain: Variant
    gzipped: Variant | None
    # Every ETag this file answers with, for If-None-Match; computed once, at load.
    etags: frozenset[bytes]


class FeedSource(Protocol):
    """Where /feeds/ is served from: the feeds folder (FeedFiles) or a bucket (BucketFeeds)."""

    async def respond(self, scope: Scope, relative: str, send: Send) -> None:
        """Answer a request for `relative`, a path below /feeds/."""

    async def find(self, relative: str) -> CachedFile | None:
        """The file at `relative`, or None if there is none."""


class FeedFiles:
    """Answers ASGI requests for one folder's feed files, read-only, never leaving the folder."""

    def __init__(self, folder: Path | str, *, max_age: int = 300) -> None:
        """Serve `folder`; clients may reuse an answer for `max_age` seconds."""
        self.folder = Path(folder).resolve()
        self.cache_control = layout.cache_control(max_age).encode()
        self._cache: OrderedDict[str, CachedFile] = OrderedDict()
        self._cached_bytes = 0
        # URL path -> checked real path. Resolving symbolic links costs a system call per
        # path component, so it is done once per name; a stat per request still sees changes.
        self._paths: dict[str, str | None] = {}

    async def respond(self, scope: Scope, relative: str, send: Send) -> None:
        """Answer a request for the file at `relative`, a path inside the folder."""
        if await refused(scope, send):
            return
        await answer(scope, send, self.file(relative), self.cache_control)

    async def find(self, relative: str) -> CachedFile | None:
        """The file at `relative`, as the pages read it (a stat, so no thread is needed)."""
        return self.file(relative)

    def file(self, relative: str) -> CachedFile | None:
        """The cached file at `relative`, reloaded if it changed on disk, or None."""
        try:
            path = self._paths[relative]
        except KeyError:
            path = self._safe_path(relative)
            if len(self._paths) >= PATH_MEMORY:
                self._paths.clear()
            self._paths[relative] = path
        if path is None:
            return None
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        identity = (info.st_ino, info.st_size, info.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached.identity == identity:
            self._cache.move_to_end(path)
            return cached
        loaded = _load(path, identity, int(info.st_mtime))
        if loaded is not None:
            self._remember(path, loaded)
        return loaded

    def _safe_path(self, relative: str) -> str | None:
        """The file a URL path names inside the folder, or None if it names anything else."""
        checked = safe_relative(relative)
        if checked is None:
            return None
        path = os.path.join(self.folder, *checked.split("/"))
        # Symbolic links could still point out of the folder; the real path must stay inside.
        real = os.path.realpath(path)
        if not real.startswith(str(self.folder) + os.sep):
            return None
        return real

    def _remember(self, path: str, item: CachedFile) -> None:
        """Keep `item`, evicting the least recently used files beyond the cache's budget."""
        old = self._cache.pop(path, None)
        if old is not None:
            self._cached_bytes -= size(old)
        self._cache[path] = item
        self._cached_bytes += size(item)
        while self._cached_bytes > CACHE_BYTES and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._cached_bytes -= size(evicted)


def _load(path: str, identity: tuple[int, int, int], modified: int) -> CachedFile | None:
    """Read a file and prepare its plain and gzip variants."""
    try:
        with open(path, "rb") as stream:
            body = stream.read()
    except OSError:
        return None
    return prepare(body, os.path.splitext(path)[1], identity, modified)


def prepare(body: bytes, suffix: str, identity: tuple[int, int, int], modified: int) -> CachedFile:
    """A file's plain and gzip variants and headers; its ETag is a digest of `body` alone.

    Whoever serves the bytes (this folder, or the bucket through web.bucket_feeds) gives the
    same ETag for the same bytes, so a node changing where it serves from keeps clients' copies.
    """
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    gzipped = None
    if len(body) >= GZIP_MIN_BYTES:
        # mtime=0 keeps the compressed bytes a function of the content alone.
        compressed = gzip.compress(body, compresslevel=6, mtime=0)
        gzipped = Variant(compressed, f'"{digest}-gzip"'.encode())
    plain = Variant(body, f'"{digest}"'.encode())
    return CachedFile(
        identity=identity,
        media_type=MEDIA_TYPES[suffix],
        extra_headers=_HTML_HEADERS if suffix == ".html" else (),
        last_modified=formatdate(modified, usegmt=True).encode(),
        modified_seconds=modified,
        plain=plain,
        gzipped=gzipped,
        etags=frozenset({plain.etag, *([gzipped.etag] if gzipped else [])}),
    )


def safe_relative(relative: str) -> str | None:
    """The file a URL path below /feeds/ names (index.html for a folder), or None if unsafe."""
    if relative == "" or relative.endswith("/"):
        relative += INDEX_FILE
    parts = relative.split("/")
    # No parent or current-directory steps, no hidden files (temp files begin with a dot),
    # no empty segments, no backslashes or NULs that another layer might read differently.
    if any(
        part in ("", ".", "..") or part.startswith(".") or "\\" in part or "\x00" in part
        for part in parts
    ):
        return None
    if os.path.splitext(parts[-1])[1] not in MEDIA_TYPES:
        return None
    return relative


async def refused(scope: Scope, send: Send) -> bool:
    """Answer OPTIONS (CORS preflight) and methods other than GET and HEAD; True if answered."""
    method = scope["method"]
    if method == "OPTIONS":
        await respond_with(send, 204, _PREFLIGHT)
        return True
    if method not in ("GET", "HEAD"):
        await respond_with(send, 405, [(b"allow", ALLOWED)], b"Method Not Allowed\n")
        return True
    return False


async def answer(
    scope: Scope,
    send: Send,
    found: CachedFile | None,
    cache_control: bytes,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer a GET or HEAD with `found`: 404, 304 or 200, plain or gzipped as accepted."""
    if found is None:
        await respond_with(send, 404, _NOT_FOUND_HEADERS, b"Not Found\n")
        return
    request = dict(scope["headers"])
    variant = found.plain
    if found.gzipped and b"gzip" in request.get(b"accept-encoding", b""):
        variant = found.gzipped
    headers = [
        (b"content-type", found.media_type),
        (b"etag", variant.etag),
        (b"last-modified", found.last_modified),
        (b"cache-control", cache_control),
        *_COMMON,
        *found.extra_headers,
        *extra,
    ]
    if found.gzipped:
        headers.append((b"vary", b"Accept-Encoding"))
    if not_modified(request, found.etags, found.modified_seconds):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    if variant is found.gzipped:
        headers.append((b"content-encoding", b"gzip"))
    body = variant.body if scope["method"] == "GET" else b""
    headers.append((b"content-length", str(len(variant.body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def not_modified(
    request: dict[bytes, bytes], etags: frozenset[bytes], modified_seconds: int
) -> bool:
    """Whether the client's copy is current (RFC 9110 section 13.2.2 order of precedence).

    `request` maps lower-case header names to values; `etags` are the current validators and
    `modified_seconds` the representation's modification time (Unix seconds).
    """
    if_none_match = request.get(b"if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == b"*":
            return True
        offered = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
        return not offered.isdisjoint(etags)
    if_modified_since = request.get(b"if-modified-since")
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since.decode("latin-1"))
        except (TypeError, ValueError):
            return False  # an unreadable date is ignored, as the RFC says
        return modified_seconds <= int(since.timestamp())
    return False


def size(item: CachedFile) -> int:
    """The bytes `item` holds in memory (both variants)."""
    return len(item.plain.body) + (len(item.gzipped.body) if item.gzipped else 0)


async def respond_with(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    """Send a small complete response."""
    headers = [*headers, *_COMMON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Partner sites read feeds from their own pages' scripts, so any origin may read them; the
# validators are exposed so that those scripts can poll conditionally too.
_COMMON = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"ETag, Last-Modified"),
    (b"x-content-type-options", b"nosniff"),
]
_PREFLIGHT = [
    (b"allow", ALLOWED),
    (b"access-control-allow-methods", ALLOWED),
    (b"access-control-allow-headers", b"If-None-Match, If-Modified-Since"),
    (b"access-control-max-age", b"86400"),
]
# The feeds index is a page people open: it gets a page's protection, computed once per file
# load, so a feed's hot path only adds an empty tuple.
_HTML_HEADERS = (
    (b"content-security-policy", FEED_INDEX_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)
_NOT_FOUND_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
