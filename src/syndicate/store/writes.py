"""Applying ingest records to the store a batch at a time, and reporting what they changed.

A batch costs a few set-based reads (what the store holds for the batch's articles, tags and
topics), a plan made in memory (see `plan`), and one statement per table for the whole batch
(the driver's executemany). The result is exactly what writing the records one at a time did:
the same rows, the same rejections, the same changes.

What changed comes back as values (`changes.Changes`), not as feed keys: which feeds a change
touches is the feeds' to say, and the store imports nothing above it. The caller has the
changes turned into feed keys and marks those with `mark_dirty`, in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select, update

from syndicate.domain.model import Article, Record, Status
from syndicate.store import bulk
from syndicate.store.changes import Changes, Placement
from syndicate.store.plan import BatchPlan, Outcome
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
from syndicate.store.snapshot import Lookups, chunks
from syndicate.store.sql import upsert

ARTICLE_COLUMNS = (
    "url",
    "title",
    "summary",
    "body_html",
    "published_at",
    "updated_at",
    "status",
    "language",
    "section",
    "authors",
    "image",
)
LINK_COLUMNS = ("position", "language", "status", "published_at")
TEXT_COLUMNS = ("topic_pk", "language", "name", "description")
PICK_COLUMNS = ("article_pk", "picked_at", "position", "unpicked_at")
VIEW_COLUMNS = ("article_pk", "hour", "count")
_STATUS = {status: status.value for status in Status}  # a look-up: .value is slow in bulk
_UPDATE_ARTICLE = (
    update(article)
    .where(article.c.pk == bindparam("row_pk"))
    .values({name: bindparam(name) for name in ARTICLE_COLUMNS})
)


@dataclass(frozen=True)
class Applied:
    """What became of a batch: each record's outcome, in order, and what the batch changed."""

    outcomes: list[Outcome]
    changes: Changes


class StoreWriter:
    """Writes batches of records through one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        """Write through `connection`."""
        self.connection = connection
        self.lookups = Lookups(connection)

    def forget(self) -> None:
        """Drop what was learnt from writes that were then rolled back."""
        self.lookups.forget()

    def apply(self, records: Sequence[Record]) -> Applied:
        """Store `records` in order; report each one's outcome and what they changed.

        Raises on a database error.
        """
        plan = BatchPlan(self.lookups.snapshot(records), datetime.now(UTC))
        outcomes = [plan.play(record) for record in records]
        return Applied(outcomes, plan.changes(self._write(plan)))

    def mark_dirty(self, keys: Iterable[str]) -> None:
        """Mark the feeds `keys` for the next build, in the caller's transaction.

        A fresh token keeps a mark past a build already under way, which clears only the
        marks it read.
        """
        token = uuid.uuid4().hex
        marks = [(key, token) for key in sorted(keys)]
        bulk.insert(self.connection, dirty_feed, ("key", "token"), marks, keys=["key"], update=True)

    # -- writing the plan ---------------------------------------------------------------

    def _write(self, plan: BatchPlan) -> list[Placement]:
        """Send the plan's rows; where the articles it rewrites were listed before."""
        connection = self.connection
        if plan.new_topics:
            upsert(
                connection,
                topic,
                [{"slug": slug} for slug in plan.new_topics],
                ["slug"],
                update=False,
            )
            self.lookups.stored_topics(set(plan.new_topics))
        texts = [
            (self.lookups.topic_pks[slug], language, name, description)
            for (slug, language), (name, description) in plan.new_texts.items()
        ]
        bulk.insert(connection, topic_text, TEXT_COLUMNS, texts, keys=TEXT_COLUMNS[:2], update=True)
        if plan.new_tags:
            tags = [(key, name, slug) for key, (name, slug) in plan.new_tags.items()]
            bulk.insert(connection, tag, ("key", "name", "slug"), tags, keys=["key"])
            self.lookups.stored_tags({name for name, _ in plan.new_tags.values()})
        pks, old = self._write_articles(plan)
        self._bulk(
            pick,
            PICK_COLUMNS,
            [
                (pks[cms_id], picked_at, position, unpicked_at)
                for (cms_id, picked_at), (position, unpicked_at) in plan.picks.items()
            ],
            keys=("article_pk", "picked_at"),
        )
        self._bulk(
            view_count,
            VIEW_COLUMNS,
            [(pks[cms_id], hour, count) for (cms_id, hour), count in plan.views.items()],
            keys=("article_pk", "hour"),
        )
        return old

    def _write_articles(self, plan: BatchPlan) -> tuple[dict[str, int], list[Placement]]:
        """Insert or update each written article and its links.

        Returns every named article's pk, and where the rewritten ones were listed before.
        """
        connection = self.connection
        pks = {cms_id: state.pk for cms_id, state in plan.snapshot.articles.items() if state.pk}
        replaced = [pks[cms_id] for cms_id in plan.replaced]
        old = self._old_placements(plan, replaced)
        new = [item for cms_id, (item, _) in plan.written.items() if cms_id not in pks]
        if new:
            self._bulk(
                article,
                ("cms_id", *ARTICLE_COLUMNS),
                [(item.id, *_article_values(item)) for item in new],
            )
            query = select(article.c.pk, article.c.cms_id)
            found = self.lookups.rows_in(query, article.c.cms_id, {item.id for item in new})
            pks |= {row.cms_id: row.pk for row in found}
        if replaced:
            rows = [
                dict(zip(ARTICLE_COLUMNS, _article_values(plan.written[cms_id][0]), strict=True))
                | {"row_pk": pks[cms_id]}
                for cms_id in plan.replaced
            ]
            connection.execute(_UPDATE_ARTICLE, rows)
            for chunk in chunks(replaced):
                connection.execute(delete(article_tag).where(article_tag.c.article_pk.in_(chunk)))
                connection.execute(
                    delete(article_topic).where(article_topic.c.article_pk.in_(chunk))
                )
        # Links carry copies of the article's language, status and date: convert those once.
        published = bulk.converter(connection, article_tag, "published_at")
        tag_rows: list[tuple[Any, ...]] = []
        topic_rows: list[tuple[Any, ...]] = []
        tag_pks, topic_pks = self.lookups.tag_pks, self.lookups.topic_pks
        for cms_id, (item, keys) in plan.written.items():
            pk, language, status = pks[cms_id], item.language, _STATUS[item.status]
            date = published(item.published_at)
            tag_rows += [
                (pk, tag_pks[key], position, language, status, date)
                for position, key in enumerate(keys)
            ]
            topic_rows += [
                (pk, topic_pks[slug], position, language, status, date)
                for position, slug in enumerate(item.topics)
            ]
        bulk.insert(connection, article_tag, ("article_pk", "tag_pk", *LINK_COLUMNS), tag_rows)
        bulk.insert(
            connection, article_topic, ("article_pk", "topic_pk", *LINK_COLUMNS), topic_rows
        )
        return pks, old

    def _bulk(
        self,
        table: Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        keys: Sequence[str] = (),
    ) -> None:
        """Convert and send `rows` in one statement; on a conflict over `keys`, update."""
        bulk.insert(
            self.connection,
            table,
            columns,
            bulk.converted(self.connection, table, columns, rows),
            keys=keys,
            update=True,
        )

    def _old_placements(self, plan: BatchPlan, pks: list[int]) -> list[Placement]:
        """Where rewritten stored articles were listed before the batch (feeds they may leave)."""
        tags: dict[int, list[str]] = {pk: [] for pk in pks}
        topics: dict[int, list[str]] = {pk: [] for pk in pks}
        tag_query = select(article_tag.c.article_pk, tag.c.slug).join_from(article_tag, tag)
        for row in self.lookups.rows_in(tag_query, article_tag.c.article_pk, pks):
            tags[row.article_pk].append(row.slug)
        topic_query = select(article_topic.c.article_pk, topic.c.slug).join_from(
            article_topic, topic
        )
        for row in self.lookups.rows_in(topic_query, article_topic.c.article_pk, pks):
            topics[row.article_pk].append(row.slug)
        placements: list[Placement] = []
        for cms_id in plan.replaced:
            old = plan.snapshot.articles[cms_id]
            assert old.pk is not None
            placements.append(
                Placement(old.language, old.section, tuple(tags[old.pk]), tuple(topics[old.pk]))
            )
        return placements


def _article_values(item: Article) -> tuple[Any, ...]:
    """An article's values in the order of ARTICLE_COLUMNS."""
    image = item.image
    return (
        item.url,
        item.title,
        item.summary,
        item.body_html,
        item.published_at,
        item.updated_at,
        _STATUS[item.status],
        item.language,
        item.section,
        list(item.authors),
        None
        if image is None
        else {
            "url": image.url,
            "type": image.type,
            "length": image.length,
            "caption": image.caption,
            "width": image.width,
            "height": image.height,
        },
    )
