"""Settings: one typed object, loaded once from settings.toml and the environment.

Precedence, highest first: environment (`SYNDICATE_<SECTION>__<KEY>`), then the TOML file
(`--config FILE`, else `SYNDICATE_CONFIG`, else `./settings.toml`), then the defaults here.
Every part of the program receives only the section it needs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from syndicate.periods import DIGEST_KINDS, KINDS, Kind, SendTime, parse_send_time

DEFAULT_CONFIG_FILE = Path("settings.toml")
# The languages Syndicate has pages, mail and feeds for: English, the source language, and each
# catalog under locale/ (tests/test_settings.py holds the two equal).
SERVED_LANGUAGES = ("en", "ar", "fa")
# SQLAlchemy URL schemes of the stores Syndicate runs on (and has the driver of).
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
# Settings whose value a message never repeats: a database URL may carry a password.
UNECHOED_KEYS = ("database.url",)
# The demo site's name in the demo's other languages: the default [site] title reads
# "Syndicate Demo News" in English only; any other title is the same in every language
# unless [site] titles says otherwise.
DEMO_TITLE = "Syndicate Demo News"
DEMO_TITLES = {"ar": "أخبار سينديكيت التجريبية", "fa": "اخبار نمایشی سیندیکیت"}
# Gmail's Feedback-ID, "a:b:c:SenderId"; the message builder holds every header to this shape.
FEEDBACK_ID_PATTERN = r"[A-Za-z0-9._-]{1,64}(?::[A-Za-z0-9._-]{1,64}){0,3}"


class Section(BaseModel):
    """Base of every settings section: unknown keys are mistakes, not extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _unset_when_empty(value: object) -> object:
    """An empty string means "not set", as `syndicate config` and settings.toml write it."""
    return None if value == "" else value


def _served_language(code: str) -> str:
    if code not in SERVED_LANGUAGES:
        raise ValueError(
            f"{code!r} is not a language Syndicate can serve ({', '.join(SERVED_LANGUAGES)})"
        )
    return code


def _web_address(url: AnyHttpUrl) -> AnyHttpUrl:
    """An http(s) address that paths can be appended to: no query, fragment or password."""
    if url.query or url.fragment:
        raise ValueError(f"{str(url)!r} must not have a query (?) or a fragment (#)")
    if url.username or url.password:
        raise ValueError("a user name or password does not belong in this address")
    return url


# An http or https address (pydantic refuses every other scheme), with nothing after its path.
WebAddress = Annotated[AnyHttpUrl, AfterValidator(_web_address)]
OptionalWebAddress = Annotated[WebAddress | None, BeforeValidator(_unset_when_empty)]
ServedLanguage = Annotated[str, AfterValidator(_served_language)]


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


class FeedSettings(Section):
    """The feeds written to disk."""

    dir: Path = Field(Path("feeds"), description="Folder the feeds are written to.")
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


class SmtpSettings(Section):
    """An SMTP relay or MTA."""

    host: str = Field("localhost", description="SMTP server host.")
    port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    username: str = Field("", description="Login name; empty for none.")
    password: SecretStr = Field(
        SecretStr(""), description="Login password (set it in the environment)."
    )
    security: Literal["none", "starttls", "tls"] = Field("none", description="Transport security.")
    pool_size: int = Field(4, ge=1, le=64, description="Connections kept open and reused.")
    rate_per_second: float = Field(
        0, ge=0, description="Messages a second at most; 0 for no limit."
    )
    timeout: float = Field(30, gt=0, description="Seconds to wait for the server to answer.")
    retries: int = Field(
        5, ge=0, le=20, description="Tries after a 4xx reply or a dropped connection, with backoff."
    )


class DkimSettings(Section):
    """DKIM signing of every digest message (off while `domain` is empty)."""

    domain: str = Field("", description="The signing domain (d=); empty to send unsigned.")
    selector: str = Field("syndicate", description="The DNS selector (s=).")
    key_file: Annotated[Path | None, BeforeValidator(_unset_when_empty)] = Field(
        None, description="PEM file holding the RSA private key."
    )


class MailSettings(Section):
    """How digests leave the building."""

    transport: Literal["outbox", "smtp"] = Field("outbox", description="outbox (Maildir) or smtp.")
    from_address: str = Field("Syndicate Demo News <news@site.example>", description="From header.")
    outbox_dir: Path = Field(Path("var/outbox"), description="Maildir the outbox transport writes.")
    unsubscribe_mailto: str = Field(
        "",
        description="Address of the mailto: List-Unsubscribe URI; empty for unsubscribe@ the "
        "From address's domain.",
    )
    processes: int = Field(
        1,
        ge=0,
        le=64,
        description="Processes a send uses, sharing the pool's connections; 0 for one per CPU "
        "core (a send to fewer than 2,000 recipients stays in one).",
    )
    feedback_id: str = Field(
        "",
        description="Feedback-ID header for Gmail's Feedback Loop, 'a:b:c:SenderId' (up to "
        "four fields of letters, digits, '.', '_', '-'); {kind} and {language} are replaced "
        "by the mail's kind (daily, weekly, monthly, confirmation) and language; empty for none.",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    dkim: DkimSettings = Field(default_factory=DkimSettings)

    @field_validator("feedback_id")
    @classmethod
    def _feedback_id_is_header_safe(cls, value: str) -> str:
        # Checked with the longest values the placeholders take, so no mail can fail on it.
        filled = value.replace("{kind}", "confirmation").replace("{language}", "xxx")
        if value and not re.fullmatch(FEEDBACK_ID_PATTERN, filled):
            raise ValueError(
                f"{value!r} is not a Feedback-ID: up to four fields separated by ':' (the last "
                "naming the sender), each 1 to 64 letters, digits, '.', '_' or '-', or the "
                "placeholders {kind} and {language}"
            )
        return value


class DigestSettings(Section):
    """The digest newsletters: which run, and what goes in them."""

    kinds: tuple[Kind, ...] = Field(KINDS, description="Which digests exist and are sent.")
    picks: int = Field(6, ge=0, le=50, description="Editor's Choice items in an edition, at most.")
    most_viewed: int = Field(
        6, ge=0, le=50, description="Most Viewed items in an edition, at most."
    )
    topic_items: int = Field(
        3, ge=0, le=20, description="Latest articles per followed topic, for topic followers."
    )
    skip_empty: bool = Field(
        True, description="Skip an edition with nothing new since the previous one of its kind."
    )
    max_html_bytes: int = Field(
        100_000, ge=10_000, description="HTML size limit (Gmail clips past 102 KB); items trimmed."
    )


class SubscriberSettings(Section):
    """Subscription pages and confirmation."""

    confirm_hours: int = Field(48, ge=1, description="Hours a confirmation link stays valid.")
    link_days: int = Field(
        365, ge=1, description="Days an unsubscribe or preferences link in a digest stays valid."
    )
    subscribe_per_hour: int = Field(
        10, ge=1, description="Subscribe requests one client address may make in an hour."
    )


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


class SecuritySettings(Section):
    """Secrets."""

    secret_key: SecretStr = Field(
        SecretStr(""), description="Signs subscription tokens; set it in the environment."
    )


class Settings(BaseSettings):
    """Everything Syndicate can be told."""

    model_config = SettingsConfigDict(
        env_prefix="SYNDICATE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    site: SiteSettings = Field(default_factory=SiteSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    digests: DigestSettings = Field(default_factory=DigestSettings)
    subscribers: SubscriberSettings = Field(default_factory=SubscriberSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    sources: SourceSettings = Field(default_factory=SourceSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    # Set by load_settings just before construction; the TOML source reads it.
    config_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over the TOML file over defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.config_path))
        return tuple(sources)


class SettingsError(Exception):
    """Settings that cannot be used; the message names the key."""


def config_file(explicit: Path | None) -> Path | None:
    """The settings file to read: --config, else SYNDICATE_CONFIG, else ./settings.toml if present."""
    if explicit is not None:
        return explicit
    if env := os.environ.get("SYNDICATE_CONFIG"):
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(explicit: Path | None = None) -> Settings:
    """Load the settings once, raising SettingsError with one line naming the bad key."""
    path = config_file(explicit)
    if path is not None and not path.is_file():
        raise SettingsError(f"settings file {path} does not exist")
    Settings.config_path = path
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_describe(error, path)) from None
    except (ValueError, OSError) as error:  # a TOML syntax error surfaces as ValueError
        raise SettingsError(f"{path}: {error}") from None


def _describe(error: ValidationError, path: Path | None) -> str:
    first = error.errors()[0]
    # The key, without the position of a list item, nor a table's key when that key is wrong.
    loc: list[str] = []
    for part in first["loc"]:
        if part == "[key]":
            loc.pop()
        elif isinstance(part, str):
            loc.append(part)
    key = ".".join(loc)
    env = "SYNDICATE_" + "__".join(part.upper() for part in loc)
    where = f"{path} or {env}" if path else env
    value = first.get("input")
    message = str(first["msg"]).removeprefix("Value error, ")
    unshown = isinstance(value, dict) or key in UNECHOED_KEYS or repr(value) in message
    shown = "" if unshown else f" (got {value!r})"
    more = f"; and {error.error_count() - 1} more" if error.error_count() > 1 else ""
    return f"setting {key}: {message}{shown} [from {where}]{more}"


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with secrets shown as '********'."""
    data = settings.model_dump(mode="json")
    _mask(settings, data)
    return data


def _mask(model: BaseModel, data: dict[str, Any]) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            data[name] = "********" if value.get_secret_value() else ""
        elif isinstance(value, BaseModel):
            _mask(value, data[name])
