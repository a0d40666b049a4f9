"""What building feeds needs from the settings, and the fingerprint that forces a full build."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from syndicate.feeds.bucket import Bucket
from syndicate.settings import Settings

# Bump when rendering changes in a way that must reach every file: a build with a different
# fingerprint from the last one is a full build.
RENDERING_VERSION = "1"


@dataclass(frozen=True)
class FeedConfig:
    """What building feeds needs from the settings, and nothing more."""

    site_url: str
    site_titles: dict[str, str]
    languages: tuple[str, ...]
    feeds_dir: str
    feeds_url: str
    items: int
    hub: str | None = None
    workers: int = 1
    embed_frames: bool = False
    bucket: Bucket | None = None  # publish to this bucket instead of feeds_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedConfig:
        """Pick the feed settings out of the whole."""
        site = settings.site
        return cls(
            site_url=str(site.base_url),
            site_titles={language: site.title_in(language) for language in site.languages},
            languages=site.languages,
            feeds_dir=str(settings.feeds.dir),
            feeds_url=settings.web.feeds_url,
            items=settings.feeds.items,
            hub=str(settings.feeds.websub_hub) if settings.feeds.websub_hub else None,
            workers=settings.feeds.build_workers,
            embed_frames=settings.feeds.embed_frames,
            bucket=_bucket(settings) if settings.feeds.publish == "s3" else None,
        )

    def fingerprint(self) -> str:
        """A digest of everything that shapes every feed; when it changes, all feeds must."""
        settings = asdict(self) | {"rendering": RENDERING_VERSION}
        settings.pop("feeds_dir")
        settings.pop("bucket")  # where the files go shapes none of them
        settings.pop("workers")
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()

    def home_url(self, language: str) -> str:
        """The site's front page in `language`."""
        return f"{self.site_url.rstrip('/')}/{language}/"


def _bucket(settings: Settings) -> Bucket:
    """The [feeds.s3] bucket, with the Cache-Control age its objects carry."""
    s3 = settings.feeds.s3
    return Bucket(
        name=s3.bucket,
        prefix=s3.prefix,
        endpoint_url=str(s3.endpoint_url) if s3.endpoint_url else None,
        region=s3.region or None,
        timeout=s3.timeout,
        max_age=settings.feeds.max_age,
    )
