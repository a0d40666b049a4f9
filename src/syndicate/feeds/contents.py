"""Which articles each feed holds, read from the store.

Every query serves both builds: a full build asks for every feed of a kind at once (window
functions rank the articles of each tag, topic or section), an incremental build asks for one.
Only published articles whose time has come ever appear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select, Table, and_, func, or_, select

from syndicate.domain.model import Image, Status
from syndicate.domain.periods import MOST_VIEWED_PERIODS, PERIODS
from syndicate.feeds import layout
from syndicate.feeds.catalog import feed_title
from syndicate.feeds.layout import Kind
from syndicate.feeds.render import FeedItem, Label
from syndicate.store.schema import (
    article,
    article_tag,
    article_topic,
    pick,
    tag,
    topic,
    topic_text,
    view_count,
)


@dataclass(frozen=True, slots=True)
class FeedContent:
    """A feed's identity, title and ordered article keys (primary keys in the store)."""

    key: str
    language: str
    kind: Kind
    title: str
    description: str
    subject: str
    article_pks: tuple[int, ...]


def visible(now: datetime) -> ColumnElement[bool]:
    """The condition for an article to appear anywhere: published, and its time has come."""
    return and_(article.c.status == Status.PUBLISHED.value, article.c.published_at <= now)


def _ranked(
    group_columns: Sequence[ColumnElement[Any]], base: Select[tuple[object, ...]], limit: int
) -> Select[tuple[object, ...]]:
    """Keep the newest `limit` articles of each group of `base`."""
    rank = (
        func.row_number()
        .over(
            partition_by=list(group_columns),
            order_by=[article.c.published_at.desc(), article.c.pk.desc()],
        )
        .label("rank")
    )
    ranked = base.add_columns(rank).subquery()
    return (
        select(*[ranked.c[column.name] for column in group_columns], ranked.c.pk)
        .where(ranked.c.rank <= limit)
        .order_by(*[ranked.c[column.name] for column in group_columns], ranked.c.rank)
    )


class ContentReader:
    """Reads feed contents for one build: one clock, one item count, one site title."""

    def __init__(
        self,
        connection: Connection,
        *,
        now: datetime,
        limit: int,
        site_titles: dict[str, str],
        languages: Sequence[str],
    ) -> None:
        """Read through `connection` as of `now`, `limit` items a feed."""
        self.connection = connection
        self.now = now
        self.limit = limit
        self.site_titles = site_titles
        self.languages = tuple(languages)

    def _content(
        self, key: str, pks: Iterable[int], name: str | None = None, about: str = ""
    ) -> FeedContent:
        language, kind, _ = layout.split_key(key)
        title = feed_title(key, self.site_titles[language], name, about)
        return FeedContent(
            key, language, kind, title.title, title.description, title.subject, tuple(pks)
        )

    # -- each kind, all at once or just one ----------------------------------------------

    def latest(self, language: str | None = None) -> Iterator[FeedContent]:
        """The whole-site feed of each language (or of one)."""
        for lang in [language] if language else self.languages:
            query = select(article.c.pk).where(visible(self.now), article.c.language == lang)
            yield self._content(layout.all_key(lang), self._newest(query))

    def _newest(self, query: Select[tuple[int]]) -> list[int]:
        """The newest `limit` articles a query selects (served by the indexes, no sorting)."""
        ordered = query.order_by(article.c.published_at.desc(), article.c.pk.desc())
        return list(self.connection.scalars(ordered.limit(self.limit)))

    def _newest_linked(
        self, links: Table, owner: Column[int], owner_pk: int, language: str
    ) -> list[int]:
        """The newest articles linked to one tag or topic, from the link table's own copies."""
        query = (
            select(links.c.article_pk)
            .where(
                owner == owner_pk,
                links.c.language == language,
                links.c.status == Status.PUBLISHED.value,
                links.c.published_at <= self.now,
            )
            .order_by(links.c.published_at.desc(), links.c.article_pk.desc())
            .limit(self.limit)
        )
        return list(self.connection.scalars(query))

    def sections(
        self, language: str | None = None, section: str | None = None
    ) -> Iterator[FeedContent]:
        """Section feeds with at least one article."""
        if language and section:
            query = select(article.c.pk).where(
                visible(self.now), article.c.language == language, article.c.section == section
            )
            if pks := self._newest(query):
                yield self._content(layout.section_key(language, section), pks)
            return
        base = select(
            article.c.pk, article.c.language, article.c.section, article.c.published_at
        ).where(visible(self.now), article.c.section.is_not(None))
        if language:
            base = base.where(article.c.language == language)
        if section:
            base = base.where(article.c.section == section)
        rows = self.connection.execute(
            _ranked([article.c.language, article.c.section], base, self.limit)
        )
        for (lang, name), pks in self._grouped(rows).items():
            yield self._content(layout.section_key(str(lang), str(name)), pks)

    def tags(self, language: str | None = None, slug: str | None = None) -> Iterator[FeedContent]:
        """Tag feeds with at least one article."""
        if language and slug:
            found = self.connection.execute(
                select(tag.c.pk, tag.c.name).where(tag.c.slug == slug)
            ).first()
            if found and (
                pks := self._newest_linked(article_tag, article_tag.c.tag_pk, found.pk, language)
            ):
                yield self._content(layout.tag_key(language, slug), pks, found.name)
            return
        base = (
            select(article.c.pk, article.c.language, article_tag.c.tag_pk, article.c.published_at)
            .join(article_tag, article_tag.c.article_pk == article.c.pk)
            .where(visible(self.now))
        )
        names = select(tag.c.pk, tag.c.slug, tag.c.name)
        if language:
            base = base.where(article.c.language == language)
        if slug:
            tag_pk = self.connection.scalar(select(tag.c.pk).where(tag.c.slug == slug))
            base = base.where(article_tag.c.tag_pk == tag_pk)
            names = names.where(tag.c.pk == tag_pk)
        rows = self.connection.execute(
            _ranked([article.c.language, article_tag.c.tag_pk], base, self.limit)
        )
        groups = self._grouped(rows)
        known = {row.pk: (row.slug, row.name) for row in self.connection.execute(names)}
        for (lang, tag_pk), pks in groups.items():
            tag_slug, name = known[int(tag_pk)]  # type: ignore[call-overload]
            yield self._content(layout.tag_key(str(lang), tag_slug), pks, name)

    def topics(self, language: str | None = None, slug: str | None = None) -> Iterator[FeedContent]:
        """Topic feeds with at least one article."""
        if language and slug:
            topic_pk = self.connection.scalar(select(topic.c.pk).where(topic.c.slug == slug))
            if topic_pk is not None and (
                pks := self._newest_linked(
                    article_topic, article_topic.c.topic_pk, topic_pk, language
                )
            ):
                name, about = _in_language(self._topic_texts()[topic_pk][1], language)
                yield self._content(layout.topic_key(language, slug), pks, name, about)
            return
        base = (
            select(
                article.c.pk, article.c.language, article_topic.c.topic_pk, article.c.published_at
            )
            .join(article_topic, article_topic.c.article_pk == article.c.pk)
            .where(visible(self.now))
        )
        if language:
            base = base.where(article.c.language == language)
        if slug:
            topic_pk = self.connection.scalar(select(topic.c.pk).where(topic.c.slug == slug))
            base = base.where(article_topic.c.topic_pk == topic_pk)
        rows = self.connection.execute(
            _ranked([article.c.language, article_topic.c.topic_pk], base, self.limit)
        )
        texts = self._topic_texts()
        for (lang, topic_pk), pks in self._grouped(rows).items():
            topic_slug, by_language = texts[int(topic_pk)]  # type: ignore[call-overload]
            name, about = _in_language(by_language, str(lang))
            yield self._content(layout.topic_key(str(lang), topic_slug), pks, name, about)

    def editors_choice(self, language: str | None = None) -> Iterator[FeedContent]:
        """The current picks of each language, the most recently picked first."""
        rows = self.connection.execute(
            select(article.c.language, article.c.pk)
            .join(pick, pick.c.article_pk == article.c.pk)
            .where(
                visible(self.now),
                pick.c.picked_at <= self.now,
                or_(pick.c.unpicked_at.is_(None), pick.c.unpicked_at > self.now),
            )
            .order_by(pick.c.picked_at.desc(), pick.c.position, article.c.pk)
        )
        groups: dict[str, list[int]] = defaultdict(list)
        for lang, pk in rows:
            if pk not in groups[lang] and len(groups[lang]) < self.limit:
                groups[lang].append(pk)
        for lang in [language] if language else self.languages:
            yield self._content(layout.editors_choice_key(lang), groups.get(lang, []))

    def most_viewed(
        self, language: str | None = None, period: str | None = None
    ) -> Iterator[FeedContent]:
        """The most read articles of each language over the last day, week and month."""
        for window_name in [period] if period else PERIODS:
            total = func.sum(view_count.c.count).label("total")
            rows = self.connection.execute(
                select(article.c.language, article.c.pk, total)
                .join(view_count, view_count.c.article_pk == article.c.pk)
                .where(
                    visible(self.now),
                    view_count.c.hour > self.now - MOST_VIEWED_PERIODS[window_name].reach,
                    view_count.c.hour <= self.now,
                    article.c.language.in_([language] if language else self.languages),
                )
                .group_by(article.c.language, article.c.pk, article.c.published_at)
                .order_by(total.desc(), article.c.published_at.desc(), article.c.pk.desc())
            )
            groups: dict[str, list[int]] = defaultdict(list)
            for lang, pk, _total in rows:
                if len(groups[lang]) < self.limit:
                    groups[lang].append(pk)
            for lang in [language] if language else self.languages:
                yield self._content(layout.most_viewed_key(lang, window_name), groups.get(lang, []))

    # -- dispatch ------------------------------------------------------------------------

    def everything(self) -> Iterator[FeedContent]:
        """Every feed the site has, in index order."""
        yield from self.latest()
        yield from self.editors_choice()
        yield from self.most_viewed()
        yield from self.sections()
        yield from self.topics()
        yield from self.tags()

    def one(self, key: str) -> FeedContent | None:
        """The current content of feed `key`, or None if its kind of feed cannot exist."""
        language, kind, param = layout.split_key(key)
        if language not in self.languages:
            return None
        found: Iterator[FeedContent]
        match kind:
            case Kind.ALL:
                found = self.latest(language)
            case Kind.EDITORS_CHOICE:
                found = self.editors_choice(language)
            case Kind.MOST_VIEWED:
                if param not in MOST_VIEWED_PERIODS:
                    return None
                found = self.most_viewed(language, param)
            case Kind.SECTION:
                found = self.sections(language, param)
            case Kind.TOPIC:
                found = self.topics(language, param)
            case Kind.TAG:
                found = self.tags(language, param)
        return next(found, None) or self._content(key, [])

    # -- articles ------------------------------------------------------------------------

    def items(self, pks: Sequence[int]) -> dict[int, FeedItem]:
        """The feed items of the given articles, with their tags and topics."""
        if not pks:
            return {}
        tags: dict[int, list[Label]] = defaultdict(list)
        for row in self.connection.execute(
            select(article_tag.c.article_pk, tag.c.name, tag.c.slug)
            .join(tag, tag.c.pk == article_tag.c.tag_pk)
            .where(article_tag.c.article_pk.in_(pks))
            .order_by(article_tag.c.article_pk, article_tag.c.position)
        ):
            tags[row.article_pk].append(Label(row.name, row.slug))
        texts = self._topic_texts()
        topics: dict[int, list[Label]] = defaultdict(list)
        rows = self.connection.execute(
            select(article.c.pk, article.c.language, article_topic.c.topic_pk)
            .join(article_topic, article_topic.c.article_pk == article.c.pk)
            .where(article.c.pk.in_(pks))
            .order_by(article.c.pk, article_topic.c.position)
        )
        for pk, lang, topic_pk in rows:
            topic_slug, by_language = texts[topic_pk]
            topics[pk].append(Label(_in_language(by_language, lang)[0], topic_slug))
        items = {}
        for row in self.connection.execute(select(article).where(article.c.pk.in_(pks))):
            items[row.pk] = FeedItem(
                cms_id=row.cms_id,
                url=row.url,
                title=row.title,
                summary=row.summary,
                body_html=row.body_html,
                published_at=row.published_at,
                # An update stamped in the future (a CMS clock running ahead) must not date a
                # feed in the future; publication is the latest moment known to have come.
                updated_at=row.updated_at if row.updated_at <= self.now else row.published_at,
                language=row.language,
                authors=tuple(row.authors),
                tags=tuple(tags.get(row.pk, ())),
                topics=tuple(topics.get(row.pk, ())),
                image=Image(**row.image) if row.image else None,
            )
        return items

    def _topic_texts(self) -> dict[int, tuple[str, dict[str, tuple[str, str]]]]:
        if not hasattr(self, "_texts"):
            texts: dict[int, tuple[str, dict[str, tuple[str, str]]]] = {}
            rows = self.connection.execute(
                select(
                    topic.c.pk,
                    topic.c.slug,
                    topic_text.c.language,
                    topic_text.c.name,
                    topic_text.c.description,
                )
                .join(topic_text, topic_text.c.topic_pk == topic.c.pk)
                .order_by(topic.c.pk, topic_text.c.language)
            )
            for pk, slug, lang, name, description in rows:
                texts.setdefault(pk, (slug, {}))[1][lang] = (name, description)
            self._texts = texts
        return self._texts

    @staticmethod
    def _grouped(rows: Iterable[Sequence[object]]) -> dict[tuple[object, ...], list[int]]:
        groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for *group, pk in rows:
            groups[tuple(group)].append(pk)  # type: ignore[arg-type]
        return groups


def _in_language(by_language: dict[str, tuple[str, str]], language: str) -> tuple[str, str]:
    """A topic's name and description in `language`, else in English, else in any language."""
    for candidate in (language, "en", *sorted(by_language)):
        if candidate in by_language:
            return by_language[candidate]
    raise LookupError("a topic without any name")
