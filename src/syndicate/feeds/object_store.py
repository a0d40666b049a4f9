"""Putting feed files in an S3 bucket: each with its media type, caching and content hash.

The second `FeedTarget` beside the feeds folder, so a CDN or nginx can serve the bucket
directly. Every detail of the AWS SDK (boto3) lives here. Credentials are never in Syndicate's
settings: the SDK finds them as it always does (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, an instance's role).

An object's ETag is the MD5 of its bytes (a single PUT, which every object here is), so readers
get a content-hash validator; the SHA-256 is also kept as metadata, and a file whose hash, media
type and Cache-Control all match what is stored is not sent again.

A few files are checked one HEAD each. A full build first calls `survey()`: the prefix is then
listed once (a thousand keys a request, each with its ETag), a file whose MD5 matches its
listed ETag is skipped without a request, and changed files are PUT by a few threads while the
build renders on; deletes go in batches. `flush()` waits for all of it, and the index files
are only put after a flush, so the index never names a feed that is not stored yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import posixpath
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from syndicate.feeds.bucket import Bucket, PublishError
from syndicate.feeds.files import checked_parts
from syndicate.feeds.layout import FORMATS, MEDIA_TYPES, cache_control

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

HASH_KEY = "sha256"  # the object metadata (x-amz-meta-sha256) holding the bytes' SHA-256
MISSING = ("404", "NoSuchKey", "NotFound")
ATTEMPTS = 3  # tries of each request, the SDK's standard back-off between them
PUT_THREADS = 8  # PUTs in flight at once; each waits mostly on the network
PENDING_LIMIT = 64  # PUTs queued before write() waits for the oldest (bounds the bytes held)
DELETE_BATCH = 1000  # keys per DeleteObjects request, S3's limit
INDEX_FILES = ("index.opml", "index.html")  # written only once every feed before is stored


@dataclass(frozen=True)
class Fetched:
    """An object as a reader gets it: the bytes (None when the reader's copy is current)."""

    body: bytes | None
    etag: str  # the S3 ETag, quoted, for the next conditional request
    last_modified: float  # Unix seconds


class ObjectStore:
    """The feeds as objects under a prefix of one bucket."""

    def __init__(
        self, bucket: Bucket, *, attempts: int = ATTEMPTS, connections: int = PUT_THREADS + 2
    ) -> None:
        """Publish to (or read) `bucket`; nothing is sent until the first file."""
        self.bucket = bucket
        self.cache_control = cache_control(bucket.max_age)
        self._prefix = f"{bucket.prefix}/" if bucket.prefix else ""
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=bucket.endpoint_url,
            region_name=bucket.region,
            config=Config(
                connect_timeout=bucket.timeout,
                read_timeout=bucket.timeout,
                retries={"max_attempts": attempts, "mode": "standard"},
                max_pool_connections=connections,
            ),
        )
        self._surveying = False
        self._listed: dict[str, str] | None = None  # key -> S3 ETag, once surveyed
        self._threads: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._doomed: list[str] = []  # keys to delete at the next flush

    def survey(self) -> None:
        """Expect many files: list the prefix once, at the first need, and put files in parallel."""
        self._surveying = True

    def flush(self) -> None:
        """Wait until every queued PUT and delete is done; raise the first failure."""
        pending, self._pending = self._pending, []
        with self._reaching():
            for future in pending:
                future.result()
            doomed, self._doomed = self._doomed, []
            for start in range(0, len(doomed), DELETE_BATCH):
                self._delete_batch(doomed[start : start + DELETE_BATCH])

    def close(self) -> None:
        """Stop the threads; what was queued and never flushed is abandoned (a failed build)."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        self._pending.clear()
        self._doomed.clear()

    def key(self, relative: str) -> str:
        """The object key of `relative` (such as `en/tags/iraq.rss`), refusing any escape."""
        checked_parts(relative)
        return self._prefix + relative

    def write(self, relative: str, data: bytes) -> bool:
        """Put `data` as `relative` unless the bucket holds exactly it; True if put (or queued)."""
        key = self.key(relative)
        listed = self._listing()
        if relative in INDEX_FILES:
            self.flush()  # the index names feeds: every one of them is stored first
        elif listed is not None:
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if listed.get(key) == f'"{md5}"':
                return False
            if key not in listed or _is_md5(listed[key]):
                listed[key] = f'"{md5}"'
                self._queue(lambda: self._put(key, relative, data))
                return True
            # An ETag that is not a plain MD5 (a multipart upload, another tool): ask its metadata.
        with self._reaching():
            if self._head(key) == self._wanted(relative, data):
                return False
            self._put(key, relative, data)
        return True

    def _wanted(self, relative: str, data: bytes) -> tuple[str, str, str]:
        """The hash, media type and Cache-Control an up-to-date object of `data` has."""
        media_type = MEDIA_TYPES[posixpath.splitext(relative)[1]]
        return hashlib.sha256(data).hexdigest(), media_type, self.cache_control

    def _put(self, key: str, relative: str, data: bytes) -> None:
        """One PUT, with the media type, caching and hash readers rely on."""
        digest, media_type, cache = self._wanted(relative, data)
        self._client.put_object(
            Bucket=self.bucket.name,
            Key=key,
            Body=data,
            ContentType=media_type,
            CacheControl=cache,
            Metadata={HASH_KEY: digest},
        )
        log.debug("feed object put key=%s bytes=%d", key, len(data))

    def _queue(self, put: Callable[[], None]) -> None:
        """Run `put` on a thread; wait for the oldest when too many are queued."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(PUT_THREADS, thread_name_prefix="feed-put")
        self._pending.append(self._threads.submit(put))
        if len(self._pending) >= PENDING_LIMIT:
            oldest = self._pending.pop(0)
            with self._reaching():
                oldest.result()

    def _listing(self) -> dict[str, str] | None:
        """Every key under the prefix with its ETag, listed once after survey(); else None."""
        if self._surveying and self._listed is None:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket.name, Prefix=self._prefix
            )
            with self._reaching():
                self._listed = {
                    found["Key"]: found.get("ETag", "")
                    for page in pages
                    for found in page.get("Contents", [])
                }
                index = self._head(self._prefix + INDEX_FILES[0])
            if index is not None and index[2] != self.cache_control:
                # [feeds] max_age changed: a listed ETag no longer proves an object current,
                # so each is checked by its metadata (and put again with the new header).
                self._listed = dict.fromkeys(self._listed, "")
            log.debug("feed objects listed prefix=%s objects=%d", self._prefix, len(self._listed))
        return self._listed

    def _delete_batch(self, keys: list[str]) -> None:
        """Delete up to a thousand keys in one request; raise if any of them failed."""
        answer = self._client.delete_objects(
            Bucket=self.bucket.name,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        failed = [error for error in answer.get("Errors", []) if error.get("Code") not in MISSING]
        if failed:
            raise PublishError(f"the object store kept {len(failed)} objects: {failed[:3]}")
        for key in keys:
            log.debug("feed object deleted key=%s", key)

    def remove(self, relative: str) -> bool:
        """Delete the object if it exists (batched after survey()); True if it did."""
        key = self.key(relative)
        listed = self._listing()
        if listed is not None:
            if listed.pop(key, None) is None:
                return False
            self._doomed.append(key)
            return True
        with self._reaching():
            if self._head(key) is None:
                return False
            self._client.delete_object(Bucket=self.bucket.name, Key=key)
        log.debug("feed object deleted key=%s", key)
        return True

    def exists(self, relative: str) -> bool:
        """True if the object is present."""
        with self._reaching():
            return self._head(self.key(relative)) is not None

    def feed_files(self) -> Iterator[str]:
        """Relative paths of every feed object under the prefix (the index files are not feeds)."""
        suffixes = tuple(f".{fmt}" for fmt in FORMATS)
        for key in self._keys():
            relative = key.removeprefix(self._prefix)
            if relative.endswith(suffixes) and not posixpath.basename(relative).startswith("."):
                yield relative

    def _keys(self) -> Iterator[str]:
        """Every key under the prefix: from the survey's listing (kept current), else listed."""
        listed = self._listing()
        if listed is not None:
            yield from list(listed)
            return
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket.name, Prefix=self._prefix
        )
        with self._reaching():
            for page in pages:
                for found in page.get("Contents", []):
                    yield found["Key"]

    def fetch(self, relative: str, etag: str | None = None) -> Fetched | None:
        """The object of `relative`, None if there is none; no body if `etag` is still current."""
        key = self.key(relative)
        with self._reaching():
            try:
                if etag:
                    answer = self._client.get_object(
                        Bucket=self.bucket.name, Key=key, IfNoneMatch=etag
                    )
                else:
                    answer = self._client.get_object(Bucket=self.bucket.name, Key=key)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in ("304", "NotModified"):
                    log.debug("feed object read key=%s status=304", key)
                    return Fetched(None, etag or "", 0.0)
                if code in MISSING:
                    return None
                raise
            body = answer["Body"].read()
        log.debug("feed object read key=%s status=200 bytes=%d", key, len(body))
        return Fetched(body, answer.get("ETag", ""), answer["LastModified"].timestamp())

    def _head(self, key: str) -> tuple[str, str, str] | None:
        """The stored object's hash, media type and Cache-Control, or None if there is none."""
        log.debug("feed object checked key=%s", key)
        try:
            head = self._client.head_object(Bucket=self.bucket.name, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
        metadata = head.get("Metadata", {})
        return metadata.get(HASH_KEY, ""), head.get("ContentType", ""), head.get("CacheControl", "")

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn the SDK's failures into one line naming the setting to look at."""
        where = self.bucket.where()
        try:
            yield
        except (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            ConnectionError,
        ) as error:
            raise PublishError(
                f"cannot reach the object store: {where} ([feeds.s3] endpoint_url): {error}"
            ) from error
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise PublishError(
                f"no credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"(or AWS_PROFILE) in the environment ({error})"
            ) from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise PublishError(f"no such bucket: {where} ([feeds.s3] bucket)") from error
            raise PublishError(f"the object store refused: {where}: {error}") from error
        except BotoCoreError as error:
            raise PublishError(f"publishing to {where} failed: {error}") from error


def _is_md5(etag: str) -> bool:
    """Whether an S3 ETag is a plain MD5 of the bytes (a multipart upload's has a "-N" part)."""
    bare = etag.strip('"')
    return len(bare) == 32 and all(c in "0123456789abcdef" for c in bare)
