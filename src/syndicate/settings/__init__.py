"""Settings: one typed object, loaded once from settings.toml and the environment.

Precedence, highest first: environment (`SYNDICATE_<SECTION>__<KEY>`), then the TOML file
(`--config FILE`, else `SYNDICATE_CONFIG`, else `./settings.toml`), then the defaults here.
Every part of the program receives only the section it needs.

This package's face: import from `syndicate.settings`. Behind it, `loading` holds the root
and how it is read, `sections`, `mail` and `bounces` the sections, `fields` what the sections share.
A leaf: imports only the domain (the digest kinds and send times).
"""

from syndicate.settings.bounces import BounceSettings, ImapSettings, WebhookSettings
from syndicate.settings.fields import SERVED_LANGUAGES
from syndicate.settings.loading import Settings, SettingsError, config_file, load_settings, masked
from syndicate.settings.mail import (
    DigestSettings,
    DkimSettings,
    MailSettings,
    SmtpSettings,
    SubscriberSettings,
)
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
    WordPressSettings,
)

__all__ = [
    "SERVED_LANGUAGES",
    "BounceSettings",
    "DatabaseSettings",
    "DigestSettings",
    "DkimSettings",
    "FeedSettings",
    "ImapSettings",
    "IngestSettings",
    "MailSettings",
    "QueueSettings",
    "ScheduleSettings",
    "SecuritySettings",
    "Settings",
    "SettingsError",
    "SiteSettings",
    "SmtpSettings",
    "SourceSettings",
    "SubscriberSettings",
    "WebSettings",
    "WebhookSettings",
    "WordPressSettings",
    "config_file",
    "load_settings",
    "masked",
]
