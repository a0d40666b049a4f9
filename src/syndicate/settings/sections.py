"""The site, store, feeds, web, sources, ingest, schedule and security sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationInfo, field_validator, model_validator

from syndicate.domain.periods import DIGEST_KINDS, SendTime, parse_send_time
from syndicate.settings.fields import (
    SERVED_LANGUAGES,
    OptionalWebAddress,
    Section,
    ServedLanguage,
    WebAddress,
)

# SQLAlchemy URL schemes of the stores Syndicate runs on (and has the driver of).
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
# The demo site's name in the demo's other languages: the default [site] title reads
# "Syndicate Demo News" in English only; any other title is the same in every language
# unless [site] titles says otherwise.
DEMO_TITLE = "Syndicate Demo News"
DEMO_TITLES = {"ar": "أخبار سينديكيت التجريبية", "fa": "اخبار نمایشی سیندیکیت"}


class SiteSettings(Section):
    """The news site whose articles Syndicate publishes."""

    base_url: WebAddress = Field(
        AnyHttpUrl("https://site.example/"),
        description="The site's public address; relative links in articles resolve against it.",
    )
    title: str = Field(DEMO_TITLE, min_length=1, description="The site's name.")
    titles: dict[ServedLanguage, str] = Field(
        default_factory=dict,
        description="The site's name per language where it differs, e.g. {ar = '...'}.",
    )
    languages: tuple[ServedLanguage, ...] = Field(
        SERVED_LANGUAGES,
        min_length=1,
        description="Languages articles may be written in: any of en, ar and fa.",
    )

    def title_in(self, language: str) -> str:
        """The site's name as readers of `language` know it."""
        if language in self.titles:
            return self.titles[language]
        if self.title == DEMO_TITLE:
            return DEMO_TITLES.get(language, self.title)
        return self.title


class DatabaseSettings(Section):
    """Where the article store, subscribers and ledgers live."""

    url: str = Field(
        "sqlite:///var/syndicate.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db.",
    )
    lock_timeout: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Seconds a command or job waits for SQLite's write lock before it fails.",
    )

    @field_validator("url")
    @classmethod
    def _usable_store(cls, value: str) -> str:
        found = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
        scheme = found[1] if found else ""
        if scheme not in DATABASE_SCHEMES:
            # Only the scheme is repeated: the rest may hold a password.
            named = repr(scheme) if scheme else "a URL without a scheme"
            hint = " (write postgresql+psycopg://)" if scheme in ("postgresql", "postgres") else ""
            raise ValueError(
                f"{named} is not a database Syndicate can use{hint}: "
                "sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname"
            )
        return value


# S3's rule for bucket names: 3 to 63 lower-case letters, digits, dots and hyphens.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class S3Settings(Section):
    """The bucket feeds are published to with [feeds] publish = "s3"; keys from the environment."""

    bucket: str = Field("", description='The bucket\'s name; required with publish = "s3".')
    prefix: str = Field(
        "", description='Folder in the bucket the feeds go under, e.g. "feeds"; empty for its root.'
    )
    endpoint_url: OptionalWebAddress = Field(
        None, description="The S3-compatible server's address; empty for Amazon S3."
    )
    region: str = Field("", description="The bucket's region; empty for the SDK's own choice.")
    timeout: float = Field(
        10, gt=0, le=600, description="Seconds to wait for the server to connect or answer."
    )
    cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Bytes of feed files each web node keeps in memory when serving the bucket.",
    )
    cache_seconds: float = Field(
        5,
        ge=0,
        le=3600,
        description="Seconds a cached feed file is served without asking the bucket: how stale "
        "a node's /feeds/ may be after a build; 0 asks (conditionally) on every request.",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if value and not BUCKET_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a bucket name: 3 to 63 lower-case letters, digits, dots "
                "and hyphens, starting and ending with a letter or digit"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _relative_folder(cls, value: str) -> str:
        parts = value.strip("/").split("/")
        if value.startswith("/") or (value and any(p in ("", ".", "..") for p in parts)):
            raise ValueError(f'{value!r} must be a relative folder such as "feeds"')
        return value.strip("/")


class FeedSettings(Section):
    """The feeds: where they are written and how they are built."""

    dir: Path = Field(Path("feeds"), description="Folder the feeds are written to.")
    publish: Literal["folder", "s3"] = Field(
        "folder",
        description='Where builds put the feeds: "folder" (dir) or "s3" (the [feeds.s3] bucket).',
    )
    items: int = Field(20, ge=1, le=1000, description="Items in each feed, newest first.")
    build_workers: int = Field(
        0, ge=0, le=32, description="Processes a large build uses; 0 for one per CPU core."
    )
    websub_hub: OptionalWebAddress = Field(
        None, description="A WebSub hub every feed advertises and is announced to."
    )
    max_age: int = Field(300, ge=0, description="Seconds clients may cache a feed (Cache-Control).")
    embed_frames: bool = Field(
        False,
        description="Keep allow-listed video players as iframes in feed content; off, each "
        "becomes a link to the player (the W3C validator warns about every iframe).",
    )
    s3: S3Settings = Field(default_factory=S3Settings, validate_default=True)

    @field_validator("s3")
    @classmethod
    def _bucket_when_publishing_there(cls, value: S3Settings, info: ValidationInfo) -> S3Settings:
        if info.data.get("publish") == "s3" and not value.bucket:
            raise ValueError('[feeds.s3] bucket must name a bucket with [feeds] publish = "s3"')
        return value


class WebSettings(Section):
    """Syndicate's own HTTP server."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    public_url: WebAddress = Field(
        AnyHttpUrl("http://127.0.0.1:8000/"),
        description="Public base URL of Syndicate's pages; feeds live under {public_url}/feeds/.",
    )
    lock_timeout: float = Field(
        5.0,
        ge=0,
        le=600,
        description="Seconds a web request waits for SQLite's write lock before answering 503.",
    )
    access_log: bool = Field(
        False,
        description="Log every request (method, path without the query, status, bytes, "
        "duration, client) as a `request` line.",
    )

    @property
    def feeds_url(self) -> str:
        """The public URL of the feeds folder, ending in a slash."""
        return str(self.public_url).rstrip("/") + "/feeds/"


class WordPressSettings(Section):
    """A WordPress site whose posts are read through its REST API (off while `url` is empty)."""

    url: OptionalWebAddress = Field(
        None, description="The WordPress site's address (its REST API is {url}/wp-json/)."
    )
    language: ServedLanguage = Field("en", description="Language of posts that do not name one.")
    per_page: int = Field(100, ge=1, le=100, description="Posts asked for in each page.")
    timeout: float = Field(20, gt=0, description="Seconds to wait for each answer.")


class SourceSettings(Section):
    """Where articles come from."""

    inbox_dir: Path = Field(Path("var/inbox"), description="Folder of JSON Lines files to ingest.")
    settle_seconds: float = Field(
        2,
        ge=0,
        description="A file in the inbox is read only once it has not changed for this long.",
    )
    wordpress: WordPressSettings = Field(default_factory=WordPressSettings)


class IngestSettings(Section):
    """What one ingest record may cost: a record over a limit is rejected, naming the limit."""

    max_title_chars: int = Field(
        1_000, ge=1, description="Characters of an article's title or a topic's name, at most."
    )
    max_summary_chars: int = Field(
        10_000,
        ge=1,
        description="Characters of a summary, a topic's description or an image caption, at most.",
    )
    max_body_bytes: int = Field(
        2_000_000, ge=1, description="Bytes (UTF-8) of an article's body_html, at most."
    )
    max_tags: int = Field(100, ge=0, description="Tags on one article, at most.")
    max_topics: int = Field(20, ge=0, description="Topics of one article, at most.")
    max_authors: int = Field(20, ge=0, description="Authors of one article, at most.")
    max_line_bytes: int = Field(
        10_000_000,
        ge=1_000,
        description="Bytes of one JSON Lines record, at most; a longer line is skipped unread.",
    )


class ScheduleSettings(Section):
    """When things happen."""

    timezone: str = Field("UTC", description="IANA zone that edition dates and send times use.")
    poll_seconds: int = Field(30, ge=1, description="Seconds between polls of the sources.")
    daily_at: str = Field(
        DIGEST_KINDS["daily"].send_at, description=DIGEST_KINDS["daily"].send_at_help
    )
    weekly_at: str = Field(
        DIGEST_KINDS["weekly"].send_at, description=DIGEST_KINDS["weekly"].send_at_help
    )
    monthly_at: str = Field(
        DIGEST_KINDS["monthly"].send_at, description=DIGEST_KINDS["monthly"].send_at_help
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("daily_at", "weekly_at", "monthly_at")
    @classmethod
    def _send_time(cls, value: str, info: ValidationInfo) -> str:
        parse_send_time(str(info.field_name).removesuffix("_at"), value)
        return value

    def send_time(self, kind: str) -> SendTime:
        """When digest `kind` (daily, weekly, monthly) goes out, in `zone`."""
        return parse_send_time(kind, getattr(self, f"{kind}_at"))

    @property
    def zone(self) -> ZoneInfo:
        """The configured zone."""
        return ZoneInfo(self.timezone)


class QueueSettings(Section):
    """The work queue shared by `syndicate worker`s (PostgreSQL only; SQLite works in-process)."""

    send_batch: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        description="Subscribers in one send job: a range of subscriber ids a worker sends.",
    )
    feed_shards: int = Field(
        0,
        ge=0,
        le=256,
        description="Jobs one feed build is split into, by feed key; 0 for one per live worker.",
    )
    run_workers: int = Field(
        1,
        ge=0,
        le=64,
        description=(
            "Workers `syndicate run` starts beside itself on PostgreSQL, stopped with it;"
            " 0 on a node that only serves and schedules."
        ),
    )
    heartbeat_seconds: float = Field(
        10, gt=0, le=300, description="Seconds between a worker's heartbeats in the queue."
    )
    stalled_seconds: float = Field(
        30,
        gt=0,
        le=3600,
        description="Seconds without a heartbeat after which a worker is dead and its jobs retried.",
    )

    @model_validator(mode="after")
    def _beats_before_stalling(self) -> QueueSettings:
        if self.stalled_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                "stalled_seconds must be at least twice heartbeat_seconds: one late beat"
                " must not make a live worker's jobs run twice"
            )
        return self


class SecuritySettings(Section):
    """Secrets."""

    secret_key: SecretStr = Field(
        SecretStr(""), description="Signs subscription tokens; set it in the environment."
    )
