"""Gathering an edition's items from the store: picks, Most Viewed, and topic sections.

Picks are those active during the window, in the editors' order; Most Viewed ranks the views
of the window's hourly buckets, leaving out what the picks show; each followed topic gets its
newest articles of the window that neither shows. No article appears twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, RowMapping, func, or_, select

from syndicate.digests.model import DigestItem, TopicDigest
from syndicate.domain.model import Status
from syndicate.feeds.contents import visible
from syndicate.store.schema import article, article_topic, pick, topic, topic_text
from syndicate.store.schema import view_count as views
from syndicate.text.sanitize import plain_lead

SUMMARY_LIMIT = 300  # characters of an item's lead an email shows


class ItemLimits(Protocol):
    """How many items each section of an edition holds at most (digests.DigestConfig)."""

    @property
    def picks(self) -> int:
        """Editor's Choice items."""

    @property
    def most_viewed(self) -> int:
        """Most Viewed items."""

    @property
    def topic_items(self) -> int:
        """Items of each followed topic."""


def gather(
    connection: Connection,
    limits: ItemLimits,
    language: str,
    start: datetime,
    end: datetime,
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
        limits.picks,
    )
    total = func.sum(views.c.count).label("total")
    ranked = connection.execute(
        select(article.c.pk, total)
        .join(views, views.c.article_pk == article.c.pk)
        .where(shown, views.c.hour >= start, views.c.hour < end, article.c.pk.not_in(pick_pks))
        .group_by(article.c.pk, article.c.published_at)
        .order_by(total.desc(), article.c.published_at.desc(), article.c.pk.desc())
        .limit(limits.most_viewed)
    ).all()
    shown_pks = {*pick_pks, *(row.pk for row in ranked)}
    topic_rows = _topic_articles(connection, limits.topic_items, language, (start, end), shown_pks)
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
