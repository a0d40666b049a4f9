"""The settings root and its loading: TOML file and environment in, one Settings out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from syndicate.settings.bounces import BounceSettings
from syndicate.settings.mail import DigestSettings, MailSettings, SubscriberSettings
from syndicate.settings.sections import (
    DatabaseSettings,
    FeedSettings,
    IngestSettings,
    QueueSettings,
    ScheduleSettings,
    SecuritySettings,
    SiteSettings,
    SourceSettings,
    WebSettings,
)

DEFAULT_CONFIG_FILE = Path("settings.toml")
# Settings whose value a message never repeats: a database URL may carry a password.
UNECHOED_KEYS = ("database.url",)


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
    bounces: BounceSettings = Field(default_factory=BounceSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)

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
    finally:
        # Only this construction reads the file: a later `Settings()` (defaults and the
        # environment) must not find the last file loaded, good or bad, behind it.
        Settings.config_path = None


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
    # A whole section (a table, or its defaults when none was given) is not worth echoing.
    unshown = isinstance(value, dict | BaseModel) or key in UNECHOED_KEYS or repr(value) in message
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
