"""Building digest editions: what an edition holds, gathered once from the store and frozen.

An edition is named by kind, language and date D in the schedule's zone. Its window ends when
it is first built (for today) or at the end of D (for a past date) and reaches back 24 hours,
7 days or 30 days. It holds the Editor's Choice picks active during the window, the Most Viewed
articles of the window (hourly buckets whose hour is in [start, end)), without an article twice,
and for topic followers the newest articles of every topic published in the window. Its content
is stored as JSON at the first build and never changes: building it again returns the same id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from syndicate.digests.frozen import edition_from_json, edition_row
from syndicate.digests.gathering import gather
from syndicate.digests.model import Edition
from syndicate.digests.model import edition_id as name_edition
from syndicate.domain.periods import DIGEST_KINDS, KINDS, Kind
from syndicate.i18n.catalogs import gettext, local_date
from syndicate.observe.logs import logfmt
from syndicate.settings import Settings
from syndicate.store.database import reading
from syndicate.store.schema import edition

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """What building editions needs from the settings, and nothing else."""

    picks: int = 6
    most_viewed: int = 6
    topic_items: int = 3
    skip_empty: bool = True
    kinds: tuple[Kind, ...] = KINDS
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    languages: tuple[str, ...] = ("en", "ar", "fa")
    site_titles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> DigestConfig:
        """The building configuration drawn from the loaded settings."""
        digests = settings.digests
        return cls(
            picks=digests.picks,
            most_viewed=digests.most_viewed,
            topic_items=digests.topic_items,
            skip_empty=digests.skip_empty,
            kinds=tuple(digests.kinds),
            zone=settings.schedule.zone,
            languages=tuple(settings.site.languages),
            site_titles={lang: settings.site.title_in(lang) for lang in settings.site.languages},
        )

    def site_title(self, language: str) -> str:
        """The site's name for readers of `language`."""
        return self.site_titles.get(language) or next(iter(self.site_titles.values()), "")


@dataclass(frozen=True, slots=True)
class EditionBuild:
    """The outcome of a build: the edition's id (None when skipped), and whether it is new."""

    edition_id: str | None
    created: bool
    skipped: str | None = None  # why nothing was stored


def edition_window(
    kind: Kind, day: date, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """The UTC window [start, end) of the `kind` edition of `day`, built at `now`."""
    today = now.astimezone(zone).date()
    if day > today:
        raise ValueError(f"{day.isoformat()} is in the future in {zone.key}")
    if day == today:
        end = now.astimezone(UTC)
    else:
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return end - DIGEST_KINDS[kind].reach, end


def subject_line(kind: Kind, language: str, site: str, day: date) -> str:
    """The translated subject of an edition: site, kind and the date in the reader's locale."""
    return gettext(language, DIGEST_KINDS[kind].subject).format(
        site=site, date=local_date(day, language)
    )


def draft_edition(
    connection: Connection,
    config: DigestConfig,
    kind: Kind,
    language: str,
    day: date | None,
    now: datetime,
) -> Edition:
    """What the edition would hold if built now, without storing it (for previews)."""
    if kind not in config.kinds:
        raise ValueError(f"the {kind} digest is not enabled (setting digests.kinds)")
    if language not in config.languages:
        raise ValueError(
            f"{language!r} is not one of the site's languages (setting site.languages)"
        )
    day = day or now.astimezone(config.zone).date()
    start, end = edition_window(kind, day, config.zone, now)
    gathered = gather(connection, config, language, start, end)
    subject = subject_line(kind, language, config.site_title(language), day)
    key = name_edition(kind, language, day)
    return Edition(key, kind, language, day, start, end, now.astimezone(UTC), subject, *gathered)


def build_edition(
    engine: Engine,
    config: DigestConfig,
    kind: Kind,
    language: str,
    day: date | None,
    now: datetime,
) -> EditionBuild:
    """Build and store the `kind` edition of `language` for `day` (today when None), once."""
    day = day or now.astimezone(config.zone).date()
    key = name_edition(kind, language, day)
    with engine.connect() as connection:
        if connection.scalar(select(edition.c.id).where(edition.c.id == key)) is not None:
            log.info("edition_exists id=%s", key)
            return EditionBuild(key, created=False)
        built = draft_edition(connection, config, kind, language, day, now)
        start, end = built.window_start, built.window_end
        reason = _nothing_new(connection, built) if config.skip_empty else None
    if reason:
        log.info("edition_skipped id=%s reason=%s", key, logfmt(reason))
        return EditionBuild(None, created=False, skipped=reason)
    try:
        with engine.begin() as connection:
            connection.execute(insert(edition).values(edition_row(built)))
    except IntegrityError:  # another process built it first; theirs is the frozen one
        log.info("edition_exists id=%s", key)
        return EditionBuild(key, created=False)
    log.info(
        "edition_built id=%s picks=%d most_viewed=%d topics=%d window_start=%s window_end=%s",
        key,
        len(built.picks),
        len(built.most_viewed),
        len(built.topics),
        start.isoformat(),
        end.isoformat(),
    )
    return EditionBuild(key, created=True)


def load_edition(engine: Engine, edition_id: str) -> Edition | None:
    """The stored edition `edition_id`, exactly as it was frozen, or None."""
    with reading(engine).connect() as connection:
        content = connection.scalar(select(edition.c.content).where(edition.c.id == edition_id))
    return None if content is None else edition_from_json(content)


# -- skipping ----------------------------------------------------------------------------


def _nothing_new(connection: Connection, built: Edition) -> str | None:
    """Why `built` says nothing new (empty, or all seen in the previous edition), or None."""
    if not built.picks and not built.most_viewed:
        return "no Editor's Choice picks and no Most Viewed articles in the window"
    previous = connection.scalar(
        select(edition.c.content)
        .where(
            edition.c.kind == built.kind,
            edition.c.language == built.language,
            edition.c.date < built.date.isoformat(),
        )
        .order_by(edition.c.date.desc())
        .limit(1)
    )
    if previous is None:
        return None
    before = edition_from_json(previous)
    seen = {item.cms_id for item in (*before.picks, *before.most_viewed)}
    if all(item.cms_id in seen for item in (*built.picks, *built.most_viewed)):
        return f"every item was already in the previous edition {before.id}"
    return None
