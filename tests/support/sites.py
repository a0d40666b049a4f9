"""Settings for a whole site in tests: its store and files in one folder, served at one URL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syndicate.settings import Settings

SECRET = "a secret for the sites tests serve, long enough to sign"
SITE_TITLES = {"en": "Demo News", "ar": "أخبار تجريبية", "fa": "اخبار آزمایشی"}


def site_settings(folder: Path, public_url: str, **changes: Mapping[str, Any]) -> Settings:
    """Settings of a site at `public_url` whose store, feeds and outbox are in `folder`.

    Each keyword names a section and the fields it changes there, e.g.
    `site_settings(folder, url, web={"lock_timeout": 0.3}, subscribers={"subscribe_per_hour": 5})`.
    """
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": f"sqlite:///{folder / 'store.db'}"},
        "feeds": {"dir": folder / "feeds"},
        "mail": {"outbox_dir": folder / "outbox"},
        "web": {"public_url": public_url},
        "security": {"secret_key": SECRET},
    }
    for section, fields in changes.items():
        sections.setdefault(section, {}).update(fields)
    return Settings(**sections)
