"""Which feeds a change to the store touches: the store reports what changed, this names feeds.

The store knows articles, picks, views and topics; only the feeds know which feed lists what.
Ingest hands a batch's `Changes` here and the keys back to the store, to be marked dirty for
the next build in the batch's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from syndicate.domain.periods import PERIODS
from syndicate.feeds import layout
from syndicate.store.changes import Changes


def dirty_keys(changes: Changes, languages: Iterable[str]) -> set[str]:
    """The keys of the feeds that `changes` touch, among the site's `languages`."""
    keys: set[str] = set()
    for place in changes.placements:
        keys |= layout.article_keys(
            place.language, place.section, place.tag_slugs, place.topic_slugs
        )
    keys.update(layout.editors_choice_key(language) for language in changes.picks)
    keys.update(
        layout.most_viewed_key(language, period) for language in changes.views for period in PERIODS
    )
    # Every language's feed of a topic may fall back to a changed text for its title.
    keys.update(
        layout.topic_key(language, slug) for language in languages for slug in changes.topics
    )
    return keys
