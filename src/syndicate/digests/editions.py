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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, RowMapping, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from syndicate.digests.model import DigestItem, Edition, TopicDigest
from syndicate.digests.model import edition_id as name_edition
from syndicate.feeds.contents import visible
from syndicate.i18n import gettext, local_date
from syndicate.logs import logfmt
from syndicate.model import Status
from syndicate.periods import DIGEST_KINDS, KINDS, Kind
from syndicate.sanitize import plain_lead
from syndicate.settings import Settings
from syndicate.store.database import reading
from syndicate.store.schema import article, article_topic, edition, pick, topic, topic_text
from syndicate.store.schema import view_count as views

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 300  # characters of an item's lead an email shows
CONTENT_VERSION = 1  # of the JSON an edition is frozen as


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
    gathered = _gather(connection, config, language, start, end)
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
            connection.execute(insert(edition).values(_row(built)))
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


# -- gathering ---------------------------------------------------------------------------


def _gather(
    connection: Connection, config: DigestConfig, language: str, start: datetime, end: datetime
) -> tuple[tuple[DigestItem, ...], tuple[DigestItem, ...], tuple[TopicDigest, ...]]:
    """The picks, Most Viewed and topic sections of a window, as digest items."""
    shown = visible(end) & (article.c.language == language)
    pick_pks = _dedupe(
        connection.scalars(
            select(article.c.pk)
            .join(pick, pick.c.article_pk == article.c.pk)
            .where(
                shown,
                pick.c.picked_at < end,
                or_(pick.c.unpicked_at.is_(None), pick.c.unpicked_at > start),
            )
            .order_by(pick.c.position, pick.c.picked_at.desc(), article.c.pk)
        ),
        config.picks,
    )
    total = func.sum(views.c.count).label("total")
    ranked = connection.execute(
        select(article.c.pk, total)
        .join(views, views.c.article_pk == article.c.pk)
        .where(shown, views.c.hour >= start, views.c.hour < end, article.c.pk.not_in(pick_pks))
        .group_by(article.c.pk, article.c.published_at)
        .order_by(total.desc(), article.c.published_at.desc(), article.c.pk.desc())
        .limit(config.most_viewed)
    ).all()
    shown_pks = {*pick_pks, *(row.pk for row in ranked)}
    topic_rows = _topic_articles(connection, config.topic_items, language, (start, end), shown_pks)
    items = _items(connection, shown_pks | {pk for _, pk in topic_rows})
    picks = tuple(items[pk] for pk in pick_pks)
    most_viewed = tuple(replace(items[row.pk], views=int(row.total)) for row in ranked)
    return picks, most_viewed, _topics(connection, topic_rows, items, language)


def _dedupe(pks: Iterable[int], limit: int) -> list[int]:
    """The first `limit` distinct keys, in order (an article picked twice counts once)."""
    unique: list[int] = []
    for pk in pks:
        if len(unique) >= limit:
            break
        if pk not in unique:
            unique.append(pk)
    return unique


def _topic_articles(
    connection: Connection,
    limit: int,
    language: str,
    window: tuple[datetime, datetime],
    shown: set[int],
) -> list[tuple[int, int]]:
    """(topic, article) pairs: each topic's newest `limit` articles of the window not yet shown."""
    if limit == 0:
        return []
    start, end = window
    rank = (
        func.row_number()
        .over(
            partition_by=article_topic.c.topic_pk,
            order_by=[article_topic.c.published_at.desc(), article_topic.c.article_pk.desc()],
        )
        .label("rank")
    )
    ranked = (
        select(article_topic.c.topic_pk, article_topic.c.article_pk, rank)
        .join(article, article.c.pk == article_topic.c.article_pk)
        .where(
            visible(end),
            article_topic.c.language == language,
            article_topic.c.status == Status.PUBLISHED.value,
            article_topic.c.published_at >= start,
            article_topic.c.published_at < end,
            article_topic.c.article_pk.not_in(shown),
        )
        .subquery()
    )
    rows = connection.execute(
        select(ranked.c.topic_pk, ranked.c.article_pk)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.topic_pk, ranked.c.rank)
    )
    return [(row.topic_pk, row.article_pk) for row in rows]


def _topics(
    connection: Connection,
    pairs: Sequence[tuple[int, int]],
    items: Mapping[int, DigestItem],
    language: str,
) -> tuple[TopicDigest, ...]:
    """Topic sections named in `language` (else English, else any), ordered by slug."""
    if not pairs:
        return ()
    topic_pks = {topic_pk for topic_pk, _ in pairs}
    names: dict[int, dict[str, str]] = {}
    slugs: dict[int, str] = {}
    for row in connection.execute(
        select(topic.c.pk, topic.c.slug, topic_text.c.language, topic_text.c.name)
        .join(topic_text, topic_text.c.topic_pk == topic.c.pk)
        .where(topic.c.pk.in_(topic_pks))
    ):
        slugs[row.pk] = row.slug
        names.setdefault(row.pk, {})[row.language] = row.name
    sections = []
    for topic_pk in sorted(topic_pks, key=slugs.__getitem__):
        article_pks = [pk for owner, pk in pairs if owner == topic_pk]
        name = _name_in(names[topic_pk], language)
        sections.append(TopicDigest(slugs[topic_pk], name, tuple(items[pk] for pk in article_pks)))
    return tuple(sections)


def _name_in(by_language: Mapping[str, str], language: str) -> str:
    """A topic's name in `language`, else in English, else in any language (as feeds name it)."""
    for candidate in (language, "en", *sorted(by_language)):
        if candidate in by_language:
            return by_language[candidate]
    raise LookupError("a topic without any name")


def _items(connection: Connection, pks: Iterable[int]) -> dict[int, DigestItem]:
    """Digest items of the given articles, by primary key."""
    wanted = sorted(set(pks))
    if not wanted:
        return {}
    rows = connection.execute(select(article).where(article.c.pk.in_(wanted))).mappings()
    return {row["pk"]: _item(row) for row in rows}


def _item(row: RowMapping) -> DigestItem:
    """One article row as a digest shows it."""
    image: dict[str, Any] = row["image"] or {}
    caption = plain_lead(str(image.get("caption") or ""), SUMMARY_LIMIT)
    return DigestItem(
        cms_id=row["cms_id"],
        url=row["url"],
        title=row["title"],
        summary=plain_lead(row["summary"], SUMMARY_LIMIT)
        or plain_lead(row["body_html"], SUMMARY_LIMIT),
        published_at=row["published_at"],
        section=row["section"],
        image_url=image.get("url"),
        image_alt=(caption or row["title"]) if image else "",
    )


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


# -- freezing ----------------------------------------------------------------------------


def _row(built: Edition) -> dict[str, Any]:
    """The `edition` table row of an edition."""
    return {
        "id": built.id,
        "kind": built.kind,
        "language": built.language,
        "date": built.date.isoformat(),
        "window_start": built.window_start,
        "window_end": built.window_end,
        "built_at": built.built_at,
        "subject": built.subject,
        "content": edition_to_json(built),
    }


def edition_item_to_json(item: DigestItem) -> dict[str, Any]:
    """A digest item as plain JSON data."""
    return {
        "cms_id": item.cms_id,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "published_at": item.published_at.astimezone(UTC).isoformat(),
        "section": item.section,
        "image_url": item.image_url,
        "image_alt": item.image_alt,
        "views": item.views,
    }


def edition_item_from_json(data: Mapping[str, Any]) -> DigestItem:
    """A digest item from its JSON data."""
    return DigestItem(
        cms_id=data["cms_id"],
        url=data["url"],
        title=data["title"],
        summary=data["summary"],
        published_at=datetime.fromisoformat(data["published_at"]),
        section=data["section"],
        image_url=data["image_url"],
        image_alt=data["image_alt"],
        views=data["views"],
    )


def edition_to_json(built: Edition) -> dict[str, Any]:
    """An edition as plain JSON data: everything rendering needs, nothing from the store."""
    return {
        "version": CONTENT_VERSION,
        "id": built.id,
        "kind": built.kind,
        "language": built.language,
        "date": built.date.isoformat(),
        "window_start": built.window_start.astimezone(UTC).isoformat(),
        "window_end": built.window_end.astimezone(UTC).isoformat(),
        "built_at": built.built_at.astimezone(UTC).isoformat(),
        "subject": built.subject,
        "picks": [edition_item_to_json(item) for item in built.picks],
        "most_viewed": [edition_item_to_json(item) for item in built.most_viewed],
        "topics": [
            {
                "slug": section.slug,
                "name": section.name,
                "items": [edition_item_to_json(item) for item in section.items],
            }
            for section in built.topics
        ],
    }


def edition_from_json(data: Mapping[str, Any]) -> Edition:
    """An edition from the JSON data `edition_to_json` made."""
    if data.get("version") != CONTENT_VERSION:
        raise ValueError(f"edition content version {data.get('version')!r} is not understood")
    kind = data["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown digest kind {kind!r}")
    return Edition(
        id=data["id"],
        kind=kind,
        language=data["language"],
        date=date.fromisoformat(data["date"]),
        window_start=datetime.fromisoformat(data["window_start"]),
        window_end=datetime.fromisoformat(data["window_end"]),
        built_at=datetime.fromisoformat(data["built_at"]),
        subject=data["subject"],
        picks=tuple(edition_item_from_json(item) for item in data["picks"]),
        most_viewed=tuple(edition_item_from_json(item) for item in data["most_viewed"]),
        topics=tuple(
            TopicDigest(
                section["slug"],
                section["name"],
                tuple(edition_item_from_json(item) for item in section["items"]),
            )
            for section in data["topics"]
        ),
    )
