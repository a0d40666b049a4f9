"""Applying ingest records to the store, and noting which feeds each change touches."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Table, delete, func, or_, select, update

from syndicate.feeds import layout
from syndicate.model import Article, Pick, Topic, Views
from syndicate.records import RecordError
from syndicate.slugs import disambiguated_slug, readable_slug
from syndicate.store.schema import (
    article,
    article_tag,
    article_topic,
    dirty_feed,
    pick,
    tag,
    topic,
    topic_text,
    view_count,
)
from syndicate.store.sql import upsert
from syndicate.text import tag_key

# The longest Most Viewed window, plus a day of slack for builds that run late.
MOST_VIEWED_REACH = timedelta(days=31)
# Bounded caches: ingest memory must not grow with the input's length.
_TAG_CACHE_LIMIT = 20_000


class StoreWriter:
    """Writes records through one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection, languages: Sequence[str]) -> None:
        """Write through `connection`; topic feeds are marked in every one of `languages`."""
        self.connection = connection
        self.languages = tuple(languages)
        self.dirty: set[str] = set()
        self._topics: dict[str, int] = {}
        self._tags: dict[str, tuple[int, str]] = {}

    def flush_dirty(self) -> None:
        """Record the feeds touched so far for the next build, in the caller's transaction."""
        token = uuid.uuid4().hex
        rows = [{"key": key, "token": token} for key in sorted(self.dirty)]
        upsert(self.connection, dirty_feed, rows, ["key"])
        self.dirty.clear()

    def article(self, item: Article) -> bool:
        """Store an article unless the stored one is as new; True when something changed."""
        old = self.connection.execute(
            select(article.c.pk, article.c.updated_at, article.c.language, article.c.section).where(
                article.c.cms_id == item.id
            )
        ).first()
        if old is not None and item.updated_at <= old.updated_at:
            return False
        topic_pks = [self._topic_pk(slug) for slug in item.topics]
        values = {
            "cms_id": item.id,
            "url": item.url,
            "title": item.title,
            "summary": item.summary,
            "body_html": item.body_html,
            "published_at": item.published_at,
            "updated_at": item.updated_at,
            "status": item.status.value,
            "language": item.language,
            "section": item.section,
            "authors": list(item.authors),
            "image": asdict(item.image) if item.image else None,
        }
        if old is None:
            inserted = self.connection.execute(article.insert().values(values))
            pk = inserted.inserted_primary_key[0]  # type: ignore[index]
        else:
            pk = old.pk
            self._mark_article_feeds(pk, old.language, old.section)  # where it was
            self.connection.execute(update(article).where(article.c.pk == pk).values(values))
            self.connection.execute(delete(article_tag).where(article_tag.c.article_pk == pk))
            self.connection.execute(delete(article_topic).where(article_topic.c.article_pk == pk))
        tags = [self._tag(name) for name in item.tags]
        copied = {
            "language": item.language,
            "status": item.status.value,
            "published_at": item.published_at,
        }
        self._insert_links(article_tag, "tag_pk", pk, [tag_pk for tag_pk, _ in tags], copied)
        self._insert_links(article_topic, "topic_pk", pk, topic_pks, copied)
        self.dirty |= layout.article_keys(
            item.language, item.section, [slug for _, slug in tags], item.topics
        )
        self._mark_ranked_feeds(pk, {item.language} | ({old.language} if old else set()))
        return True

    def _mark_ranked_feeds(self, pk: int, languages: set[str]) -> None:
        """Editor's Choice and Most Viewed change with an article only if it is in them."""
        now = datetime.now(UTC)
        picked = select(pick.c.article_pk).where(
            pick.c.article_pk == pk, or_(pick.c.unpicked_at.is_(None), pick.c.unpicked_at > now)
        )
        if self.connection.scalar(picked.limit(1)) is not None:
            self.dirty.update(layout.editors_choice_key(language) for language in languages)
        # "Recent" is measured from the newest hour of views the store holds, not from this
        # machine's clock, so replaying an old archive marks what a build of it will show.
        newest = self.connection.scalar(select(func.max(view_count.c.hour)))
        if newest is not None and self.connection.scalar(
            select(view_count.c.article_pk)
            .where(view_count.c.article_pk == pk, view_count.c.hour > newest - MOST_VIEWED_REACH)
            .limit(1)
        ):
            self.dirty.update(
                layout.most_viewed_key(language, period)
                for language in languages
                for period in layout.PERIODS
            )

    def topic(self, item: Topic) -> bool:
        """Store a topic's name and description in one language."""
        pk = self._topics.get(item.slug) or self._find_topic(item.slug)
        if pk is None:
            upsert(self.connection, topic, [{"slug": item.slug}], ["slug"], update=False)
            pk = self._find_topic(item.slug)
            assert pk is not None
        stored = self.connection.execute(
            select(topic_text.c.name, topic_text.c.description).where(
                topic_text.c.topic_pk == pk, topic_text.c.language == item.language
            )
        ).first()
        if stored is not None and tuple(stored) == (item.name, item.description):
            return False
        row = {
            "topic_pk": pk,
            "language": item.language,
            "name": item.name,
            "description": item.description,
        }
        upsert(self.connection, topic_text, [row], ["topic_pk", "language"])
        # Every language's feed of the topic may fall back to this text for its title.
        self.dirty.update(layout.topic_key(language, item.slug) for language in self.languages)
        return True

    def pick(self, item: Pick) -> bool:
        """Store an Editor's Choice placement."""
        pk, language = self._article_of(item.article_id)
        row = {
            "article_pk": pk,
            "picked_at": item.picked_at,
            "position": item.position,
            "unpicked_at": item.unpicked_at,
        }
        upsert(self.connection, pick, [row], ["article_pk", "picked_at"])
        self.dirty.add(layout.editors_choice_key(language))
        return True

    def views(self, item: Views) -> bool:
        """Set (not add to) an article's read count for one hour."""
        pk, language = self._article_of(item.article_id)
        row = {"article_pk": pk, "hour": item.hour, "count": item.count}
        upsert(self.connection, view_count, [row], ["article_pk", "hour"])
        self.dirty.update(layout.most_viewed_key(language, period) for period in layout.PERIODS)
        return True

    def _article_of(self, cms_id: str) -> tuple[int, str]:
        row = self.connection.execute(
            select(article.c.pk, article.c.language).where(article.c.cms_id == cms_id)
        ).first()
        if row is None:
            raise RecordError(f"article_id: no article {cms_id!r} is stored")
        return row.pk, row.language

    def _mark_article_feeds(self, pk: int, language: str, section: str | None) -> None:
        tag_slugs = self.connection.scalars(
            select(tag.c.slug).join(article_tag).where(article_tag.c.article_pk == pk)
        )
        topic_slugs = self.connection.scalars(
            select(topic.c.slug).join(article_topic).where(article_topic.c.article_pk == pk)
        )
        self.dirty |= layout.article_keys(language, section, tag_slugs, topic_slugs)

    def _find_topic(self, slug: str) -> int | None:
        pk = self.connection.scalar(select(topic.c.pk).where(topic.c.slug == slug))
        if pk is not None:
            self._topics[slug] = pk
        return pk

    def _topic_pk(self, slug: str) -> int:
        pk = self._topics.get(slug) or self._find_topic(slug)
        if pk is None:
            raise RecordError(f"topics: no topic {slug!r} is stored")
        return pk

    def _tag(self, name: str) -> tuple[int, str]:
        """The tag's primary key and slug, registering it on first use."""
        key = tag_key(name)
        if found := self._tags.get(key):
            return found
        row = self.connection.execute(select(tag.c.pk, tag.c.slug).where(tag.c.key == key)).first()
        if row is None:
            slug = readable_slug(name)
            if self.connection.scalar(select(tag.c.pk).where(tag.c.slug == slug)) is not None:
                slug = disambiguated_slug(name, key)
            upsert(
                self.connection,
                tag,
                [{"key": key, "name": name, "slug": slug}],
                ["key"],
                update=False,
            )
            row = self.connection.execute(
                select(tag.c.pk, tag.c.slug).where(tag.c.key == key)
            ).one()
        if len(self._tags) >= _TAG_CACHE_LIMIT:
            self._tags.clear()
        self._tags[key] = (row.pk, row.slug)
        return row.pk, row.slug

    def _insert_links(
        self,
        table: Table,
        column: str,
        article_pk: int,
        pks: list[int],
        copied: Mapping[str, object],
    ) -> None:
        if pks:
            rows = [
                {"article_pk": article_pk, column: pk, "position": position, **copied}
                for position, pk in enumerate(pks)
            ]
            self.connection.execute(table.insert(), rows)
