"""Planning a batch of ingest records: what each one does, decided in order, in memory.

The plan starts from a `Snapshot` of what the store held for the batch's records when the
batch began, and plays the records over it one at a time, as if each were written before the
next was read: a pick sees the article two lines above it, an older update of an article
changes nothing, a second newer one wins. It decides each record's outcome (stored, unchanged,
or rejected with a reason) and what it changes that a feed may show (see `changes`: values,
not feed keys, which are the feeds' to name), and collects the rows to write; the writer then
sends those with one statement per table.

Planning stays in the store, beside the snapshot it starts from and the writer that sends its
rows: the three share the store's idea of an article (its row, picks and newest views), and
moving planning up to the ingest side would split that idea in two while the writer would
still have to report what it changed. Reporting values keeps the store below the feeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from syndicate.domain.model import Article, Pick, Record, RecordError, Topic, Views, describe
from syndicate.domain.periods import LONGEST_PERIOD
from syndicate.store.changes import Changes, Placement
from syndicate.text.slugs import disambiguated_slug, readable_slug
from syndicate.text.tidy import tag_key

# The longest Most Viewed window, plus a day of slack for builds that run late.
MOST_VIEWED_REACH = LONGEST_PERIOD + timedelta(days=1)


@dataclass
class ArticleState:
    """What the plan knows of one article: its row's key facts, its picks and newest views."""

    pk: int | None  # None until a new article of the batch is inserted
    updated_at: datetime
    language: str
    section: str | None
    picks: dict[datetime, datetime | None] = field(default_factory=dict)  # picked -> unpicked
    newest_view: datetime | None = None


@dataclass
class Snapshot:
    """What the store held for one batch's records when the batch began."""

    articles: dict[str, ArticleState]  # by CMS id, for every article the batch names
    topics: set[str]  # slugs of stored topics the batch names
    topic_texts: dict[tuple[str, str], tuple[str, str]]  # (slug, language) -> name, description
    tag_slugs: dict[str, str]  # tag key -> slug, for stored tags the batch names
    taken_slugs: set[str]  # stored slugs that a new tag of the batch might have wanted
    newest_view: datetime | None  # the newest hour of views in the whole store


@dataclass(frozen=True)
class Outcome:
    """What became of one record: stored, unchanged, or rejected with a reason."""

    changed: bool
    rejection: str | None = None


STORED = Outcome(True)
UNCHANGED = Outcome(False)


class BatchPlan:
    """The records of one batch, played in order over a snapshot of the store."""

    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        """Plan over `snapshot`; a pick counts as current if it is not unpicked by `now`."""
        self.snapshot = snapshot
        self.now = now
        self.articles = {
            key: replace(s, picks=dict(s.picks)) for key, s in snapshot.articles.items()
        }
        self.topics = set(snapshot.topics)
        self.topic_texts = dict(snapshot.topic_texts)
        self.tag_slugs = dict(snapshot.tag_slugs)
        self.taken_slugs = set(snapshot.taken_slugs)
        self.newest_view = snapshot.newest_view
        # What to write: the last applied version of each article (new ones in the order they
        # first appeared, which is the order their rows are inserted), with its tags' keys.
        self.written: dict[str, tuple[Article, list[str]]] = {}
        self.new_topics: list[str] = []
        self.new_texts: dict[tuple[str, str], tuple[str, str]] = {}
        self.new_tags: dict[str, tuple[str, str]] = {}  # key -> name, slug
        self.picks: dict[tuple[str, datetime], tuple[int, datetime | None]] = {}
        self.views: dict[tuple[str, datetime], int] = {}
        # What changed that a feed may show (see `changes`).
        self.placements: set[Placement] = set()
        self.picked: set[str] = set()  # languages
        self.viewed: set[str] = set()  # languages
        self.retitled: set[str] = set()  # topic slugs

    def play(self, record: Record) -> Outcome:
        """Apply one record to the plan; a rejected record leaves no trace in it."""
        try:
            match record:
                case Views():  # most records are, so they are matched first
                    changed = self._views(record)
                case Article():
                    changed = self._article(record)
                case Pick():
                    changed = self._pick(record)
                case Topic():
                    changed = self._topic(record)
                case _:
                    raise AssertionError(f"unhandled record {type(record).__name__}")
        except RecordError as error:
            return Outcome(False, f"{describe(record)}: {error}")
        return STORED if changed else UNCHANGED

    def changes(self, old: Iterable[Placement] = ()) -> Changes:
        """What the played records changed, with `old`: where rewritten articles were."""
        return Changes(
            placements=frozenset(self.placements.union(old)),
            picks=frozenset(self.picked),
            views=frozenset(self.viewed),
            topics=frozenset(self.retitled),
        )

    @property
    def replaced(self) -> list[str]:
        """CMS ids of stored articles that the batch rewrites (their old links go)."""
        return [
            cms_id
            for cms_id in self.written
            if (stored := self.snapshot.articles.get(cms_id)) is not None and stored.pk is not None
        ]

    def _article(self, item: Article) -> bool:
        old = self.articles.get(item.id)
        if old is not None and item.updated_at <= old.updated_at:
            return False
        for slug in item.topics:
            if slug not in self.topics:
                raise RecordError(f"topics: no topic {slug!r} is stored")
        tags = [self._tag(name) for name in item.tags]
        languages = {item.language} | ({old.language} if old else set())
        # Editor's Choice and Most Viewed change with an article only if it is in them.
        if old is not None and any(
            unpicked is None or unpicked > self.now for unpicked in old.picks.values()
        ):
            self.picked |= languages
        # "Recent" is measured from the newest hour of views the store holds, not from this
        # machine's clock, so replaying an old archive marks what a build of it will show.
        if (
            old is not None
            and old.newest_view is not None
            and self.newest_view is not None
            and old.newest_view > self.newest_view - MOST_VIEWED_REACH
        ):
            self.viewed |= languages
        slugs = tuple([slug for _, slug in tags])  # a list is built faster than a generator
        self.placements.add(Placement(item.language, item.section, slugs, item.topics))
        self.articles[item.id] = ArticleState(
            pk=old.pk if old else None,
            updated_at=item.updated_at,
            language=item.language,
            section=item.section,
            picks=old.picks if old else {},
            newest_view=old.newest_view if old else None,
        )
        self.written[item.id] = (item, [key for key, _ in tags])
        return True

    def _tag(self, name: str) -> tuple[str, str]:
        """The tag's key and slug, registering it on first use."""
        key = tag_key(name)
        slug = self.tag_slugs.get(key)
        if slug is None:
            slug = readable_slug(name)
            if slug in self.taken_slugs:
                slug = disambiguated_slug(name, key)
            self.taken_slugs.add(slug)
            self.tag_slugs[key] = slug
            self.new_tags[key] = (name, slug)
        return key, slug

    def _topic(self, item: Topic) -> bool:
        text = (item.name, item.description)
        if self.topic_texts.get((item.slug, item.language)) == text:
            return False
        if item.slug not in self.topics:
            self.topics.add(item.slug)
            self.new_topics.append(item.slug)
        self.topic_texts[(item.slug, item.language)] = text
        self.new_texts[(item.slug, item.language)] = text
        self.retitled.add(item.slug)
        return True

    def _pick(self, item: Pick) -> bool:
        state = self._article_of(item.article_id)
        state.picks[item.picked_at] = item.unpicked_at
        self.picks[(item.article_id, item.picked_at)] = (item.position, item.unpicked_at)
        self.picked.add(state.language)
        return True

    def _views(self, item: Views) -> bool:
        state = self._article_of(item.article_id)
        if state.newest_view is None or item.hour > state.newest_view:
            state.newest_view = item.hour
        if self.newest_view is None or item.hour > self.newest_view:
            self.newest_view = item.hour
        self.views[(item.article_id, item.hour)] = item.count
        self.viewed.add(state.language)
        return True

    def _article_of(self, cms_id: str) -> ArticleState:
        state = self.articles.get(cms_id)
        if state is None:
            raise RecordError(f"article_id: no article {cms_id!r} is stored")
        return state
