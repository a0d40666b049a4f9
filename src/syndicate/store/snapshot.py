"""Reading what a batch of ingest records needs from the store, in a few set-based queries.

For the articles, tags and topics a batch names: whether they are stored, and what of them a
plan needs (an article's date, language, section, picks and newest views; a tag's slug; a
topic's texts). Tag and topic keys are remembered between batches in bounded caches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Column, Connection, func, select

from syndicate.domain.model import Article, Record, Topic
from syndicate.store.plan import ArticleState, Snapshot
from syndicate.store.schema import article, pick, tag, topic, topic_text, view_count
from syndicate.text.slugs import readable_slug
from syndicate.text.tidy import tag_key

# Bounded caches: ingest memory must not grow with the input's length.
_CACHE_LIMIT = 20_000
# Values bound in one IN (...) list; SQLite allows 32,766 parameters a statement.
_IN_CHUNK = 2_000


class Lookups:
    """Set-based reads for one connection, and the pks of what the current batch names."""

    def __init__(self, connection: Connection) -> None:
        """Read through `connection`."""
        self.connection = connection
        # Tags and topics are never deleted, so what a committed batch learnt stays true.
        self._tags: dict[str, tuple[int, str]] = {}  # key -> pk, slug
        self._topics: dict[str, int] = {}  # slug -> pk
        # The pks of the tags and topics the current batch names (the caches may drop them).
        self.tag_pks: dict[str, int] = {}
        self.topic_pks: dict[str, int] = {}

    def forget(self) -> None:
        """Drop what was learnt from writes that were then rolled back."""
        self._tags.clear()
        self._topics.clear()

    def snapshot(self, records: Sequence[Record]) -> Snapshot:
        """What the store holds for `records`, starting a new batch."""
        self.tag_pks, self.topic_pks = {}, {}
        articles = [record for record in records if isinstance(record, Article)]
        named = {
            record.id if isinstance(record, Article) else record.article_id
            for record in records
            if not isinstance(record, Topic)
        }
        stored = self._stored_articles(named)
        updatable = [stored[item.id].pk for item in articles if item.id in stored]
        self._ranking_facts(stored, [pk for pk in updatable if pk is not None])
        topic_slugs = {slug for item in articles for slug in item.topics}
        topic_slugs |= {record.slug for record in records if isinstance(record, Topic)}
        tag_slugs, taken = self.stored_tags({name for item in articles for name in item.tags})
        newest = self.connection.scalar(select(func.max(view_count.c.hour))) if articles else None
        return Snapshot(
            articles=stored,
            topics=self.stored_topics(topic_slugs),
            topic_texts=self._topic_texts(
                record for record in records if isinstance(record, Topic)
            ),
            tag_slugs=tag_slugs,
            taken_slugs=taken,
            newest_view=newest,
        )

    def _stored_articles(self, cms_ids: set[str]) -> dict[str, ArticleState]:
        columns = (
            article.c.pk,
            article.c.cms_id,
            article.c.updated_at,
            article.c.language,
            article.c.section,
        )
        return {
            row.cms_id: ArticleState(row.pk, row.updated_at, row.language, row.section)
            for row in self.rows_in(select(*columns), article.c.cms_id, cms_ids)
        }

    def _ranking_facts(self, stored: dict[str, ArticleState], pks: list[int]) -> None:
        """Fill in the picks and newest views of stored articles the batch may update."""
        by_pk = {state.pk: state for state in stored.values()}
        picks = select(pick.c.article_pk, pick.c.picked_at, pick.c.unpicked_at)
        for row in self.rows_in(picks, pick.c.article_pk, pks):
            by_pk[row.article_pk].picks[row.picked_at] = row.unpicked_at
        views = select(view_count.c.article_pk, func.max(view_count.c.hour).label("newest"))
        for chunk in chunks(pks):
            grouped = views.where(view_count.c.article_pk.in_(chunk)).group_by(
                view_count.c.article_pk
            )
            for row in self.connection.execute(grouped):
                by_pk[row.article_pk].newest_view = row.newest

    def stored_topics(self, slugs: set[str]) -> set[str]:
        """Which of `slugs` are stored topics, noting their pks for the batch."""
        for slug in slugs:
            if (pk := self._topics.get(slug)) is not None:
                self.topic_pks[slug] = pk
        missing = {slug for slug in slugs if slug not in self.topic_pks}
        for row in self.rows_in(select(topic.c.pk, topic.c.slug), topic.c.slug, missing):
            self.topic_pks[row.slug] = row.pk
            self._remember(self._topics, row.slug, row.pk)
        return {slug for slug in slugs if slug in self.topic_pks}

    def _topic_texts(self, records: Iterable[Topic]) -> dict[tuple[str, str], tuple[str, str]]:
        slugs = {record.slug for record in records}
        query = select(
            topic.c.slug, topic_text.c.language, topic_text.c.name, topic_text.c.description
        ).join_from(topic_text, topic)
        return {
            (row.slug, row.language): (row.name, row.description)
            for row in self.rows_in(query, topic.c.slug, slugs)
        }

    def stored_tags(self, names: set[str]) -> tuple[dict[str, str], set[str]]:
        """Slugs of the stored tags among `names`, and the stored slugs new ones might want."""
        keys = {name: tag_key(name) for name in names}
        found: dict[str, str] = {}
        for key in set(keys.values()):
            if (known := self._tags.get(key)) is not None:
                self.tag_pks[key], found[key] = known
        missing = {key for key in keys.values() if key not in found}
        query = select(tag.c.pk, tag.c.key, tag.c.slug)
        for row in self.rows_in(query, tag.c.key, missing):
            self.tag_pks[row.key], found[row.key] = row.pk, row.slug
            self._remember(self._tags, row.key, (row.pk, row.slug))
        wanted = {readable_slug(name) for name, key in keys.items() if key not in found}
        taken = {row.slug for row in self.rows_in(select(tag.c.slug), tag.c.slug, wanted)}
        return found, taken

    def rows_in(self, query: Any, column: Column[Any], values: Iterable[Any]) -> Iterator[Any]:
        """Rows of `query` where `column` is one of `values`, asked for in chunks."""
        for chunk in chunks(list(values)):
            yield from self.connection.execute(query.where(column.in_(chunk)))

    @staticmethod
    def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`values` in slices short enough for one IN (...) list."""
    values = list(values)
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
