"""Putting feed files in an S3 bucket: each with its media type, caching and content hash.

The second `FeedTarget` beside the feeds folder, so a CDN or nginx can serve the bucket
directly. Every detail of the AWS SDK (boto3) lives here. Credentials are never in Syndicate's
settings: the SDK finds them as it always does (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, an instance's role).

An object's ETag is the MD5 of its bytes (a single PUT, which every object here is), so readers
get a content-hash validator; the SHA-256 is also kept as metadata, and a file whose hash, media
type and Cache-Control all match what is stored is not sent again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import posixpath
from collections.abc import Iterator
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


class ObjectStore:
    """The feeds as objects under a prefix of one bucket."""

    def __init__(self, bucket: Bucket) -> None:
        """Publish to `bucket`; nothing is sent until the first file."""
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
                retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            ),
        )

    def key(self, relative: str) -> str:
        """The object key of `relative` (such as `en/tags/iraq.rss`), refusing any escape."""
        checked_parts(relative)
        return self._prefix + relative

    def write(self, relative: str, data: bytes) -> bool:
        """Put `data` as `relative` unless the bucket holds exactly it; True if put."""
        key = self.key(relative)
        digest = hashlib.sha256(data).hexdigest()
        media_type = MEDIA_TYPES[posixpath.splitext(relative)[1]]
        with self._reaching():
            stored = self._head(key)
            if stored == (digest, media_type, self.cache_control):
                return False
            self._client.put_object(
                Bucket=self.bucket.name,
                Key=key,
                Body=data,
                ContentType=media_type,
                CacheControl=self.cache_control,
                Metadata={HASH_KEY: digest},
            )
        log.debug("feed object put key=%s bytes=%d", key, len(data))
        return True

    def remove(self, relative: str) -> bool:
        """Delete the object if it exists; True if it did."""
        key = self.key(relative)
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
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket.name, Prefix=self._prefix
        )
        with self._reaching():
            for page in pages:
                for found in page.get("Contents", []):
                    relative = found["Key"].removeprefix(self._prefix)
                    if relative.endswith(suffixes) and not posixpath.basename(relative).startswith(
                        "."
                    ):
                        yield relative

    def _head(self, key: str) -> tuple[str, str, str] | None:
        """The stored object's hash, media type and Cache-Control, or None if there is none."""
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
