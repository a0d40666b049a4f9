"""A bucket of S3-compatible object storage that feeds are published to, as a build names it.

Plain data (picklable, for worker processes) and the error a bucket raises; the code that talks
to the bucket is feeds.object_store.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    """Where and how feeds are published to object storage ([feeds.s3] and [feeds] max_age)."""

    name: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    timeout: float = 10.0
    max_age: int = 300

    def where(self) -> str:
        """The bucket and server, as errors and logs name them."""
        server = self.endpoint_url or "Amazon S3"
        return f"bucket {self.name!r} at {server}"


class PublishError(Exception):
    """Files could not be published; the message names the setting to look at."""
