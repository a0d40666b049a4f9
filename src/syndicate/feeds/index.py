"""The feeds folder's front door: `index.opml` for feed readers, `index.html` for people."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from urllib.parse import quote

from babel.numbers import format_decimal

from syndicate.domain.periods import PERIODS
from syndicate.feeds.layout import FORMATS, Kind, split_key
from syndicate.i18n.catalogs import N_, gettext, language_name
from syndicate.i18n.templating import environment

KIND_ORDER = list(Kind)
PERIOD_ORDER = {name: rank for rank, name in enumerate(PERIODS)}
KIND_HEADINGS = {
    Kind.ALL: N_("Whole site"),
    Kind.EDITORS_CHOICE: N_("Editor's Choice"),
    Kind.MOST_VIEWED: N_("Most viewed"),
    Kind.SECTION: N_("Sections"),
    Kind.TOPIC: N_("Topics"),
    Kind.TAG: N_("Tags"),
}
# What opens a long list (the index folds one of more than a dozen feeds): the count alone
# told a reader nothing. The count comes after the words, so no language needs plural forms.
SHOW_ALL = {
    Kind.TOPIC: N_("Show all topics ({count})"),
    Kind.TAG: N_("Show all tags ({count})"),
}
SHOW_ALL_FEEDS = N_("Show all feeds ({count})")


@dataclass(frozen=True, slots=True)
class ListedFeed:
    """One feed as the index lists it."""

    key: str
    language: str
    kind: Kind
    title: str
    subject: str
    items: int
    updated_at: datetime

    @property
    def href(self) -> str:
        """The feed's path relative to the index, without a format suffix."""
        return quote(self.key)

    @property
    def page_href(self) -> str | None:
        """The web page of a tag or topic feed, relative to the index (served beside /feeds/)."""
        if self.kind not in (Kind.TAG, Kind.TOPIC):
            return None
        return f"../{quote(self.key)}/"


@dataclass(frozen=True, slots=True)
class LanguageGroup:
    """The feeds of one language, by kind."""

    language: str
    name: str
    kinds: list[tuple[Kind, str, list[ListedFeed], str]]  # kind, heading, feeds, "show all"


def _sort_key(feed: ListedFeed) -> tuple[object, ...]:
    # Periods in time order, everything else alphabetically by what readers see.
    _, kind, param = split_key(feed.key)
    period = PERIOD_ORDER.get(param or "", 0)
    return (KIND_ORDER.index(kind), period, feed.subject.casefold(), feed.key)


def group_feeds(feeds: Iterable[ListedFeed], languages: Sequence[str]) -> list[LanguageGroup]:
    """Feeds grouped by language (in the configured order) and kind (in index order)."""
    by_language: dict[str, list[ListedFeed]] = {language: [] for language in languages}
    for feed in feeds:
        by_language.setdefault(feed.language, []).append(feed)
    groups = []
    for language, members in by_language.items():
        if not members:
            continue
        members.sort(key=_sort_key)
        kinds = []
        for kind, of_kind in groupby(members, key=lambda feed: feed.kind):
            listed = list(of_kind)
            heading = gettext(language, KIND_HEADINGS[kind])
            kinds.append((kind, heading, listed, show_all(kind, len(listed), language)))
        groups.append(LanguageGroup(language, language_name(language), kinds))
    return groups


def show_all(kind: Kind, count: int, language: str) -> str:
    """The label that unfolds a list of `count` feeds of `kind`, in `language`."""
    label = gettext(language, SHOW_ALL.get(kind, SHOW_ALL_FEEDS))
    return label.format(count=format_decimal(count, locale=language))


def render_opml(groups: Sequence[LanguageGroup], *, site_title: str, feeds_url: str) -> bytes:
    """The OPML 2.0 subscription list: one outline per feed (its RSS), by language and kind."""
    text = (
        environment()
        .get_template("feeds/index.opml")
        .render(groups=groups, site_title=site_title, feeds_url=feeds_url)
    )
    return text.encode()


def render_html(groups: Sequence[LanguageGroup], *, site_title: str, feeds_url: str) -> bytes:
    """The human index: every feed with links to its RSS, Atom and JSON versions."""
    text = (
        environment()
        .get_template("feeds/index.html")
        .render(groups=groups, site_title=site_title, feeds_url=feeds_url, formats=FORMATS)
    )
    return text.encode()
