"""The two stages of building feeds, as functions a worker process can run on a share of the work.

Rendering turns articles into fragments; publishing turns a feed's fragments into files. Both
take everything they need as arguments, so a build can run them in-process or in a pool.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from syndicate.feeds.contents import ContentReader, FeedContent
from syndicate.feeds.files import feed_file
from syndicate.feeds.index import ListedFeed
from syndicate.feeds.layout import FORMATS
from syndicate.feeds.render import EPOCH, FeedHead, FeedRenderer
from syndicate.feeds.spool import SpoolReader
from syndicate.feeds.targets import FeedTarget

log = logging.getLogger(__name__)


@dataclass
class Rendered:
    """Fragments of a share of articles, and the ids of any that failed to render."""

    fragments: list[tuple[int, bytes, bytes, bytes, datetime]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class Published:
    """What publishing a share of feeds did."""

    listed: list[ListedFeed] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    changed_keys: list[str] = field(default_factory=list)


def render_articles(reader: ContentReader, renderer: FeedRenderer, pks: Sequence[int]) -> Rendered:
    """Render the given articles; one that fails is logged and left out, never fatal."""
    result = Rendered()
    for pk, item in reader.items(pks).items():
        try:
            fragments = renderer.fragments(item)
        except Exception:
            log.exception("article failed to render article=%s", item.cms_id)
            result.failed.append(item.cms_id)
            continue
        updated = max(item.updated_at, item.published_at)
        result.fragments.append((pk, fragments.rss, fragments.atom, fragments.json, updated))
    return result


@dataclass(frozen=True)
class Publisher:
    """Writes feeds: a renderer, a target, the site's names and front pages per language."""

    renderer: FeedRenderer
    target: FeedTarget
    site_titles: dict[str, str]
    home_urls: dict[str, str]

    def publish(self, contents: Sequence[FeedContent], spool: SpoolReader) -> Published:
        """Write every format of each feed from spooled fragments; unchanged files stay put."""
        result = Published()
        for content in contents:
            pks = [pk for pk in content.article_pks if pk in spool.slots]
            updated = max((spool.updated(pk) for pk in pks), default=EPOCH)
            head = FeedHead(
                key=content.key,
                language=content.language,
                title=content.title,
                description=content.description,
                home_url=self.home_urls[content.language],
                updated=updated,
                site_title=self.site_titles[content.language],
            )
            fragments = {fmt: [spool.fragment(pk, fmt) for pk in pks] for fmt in FORMATS}
            changed = False
            for fmt, document in self.renderer.documents(head, fragments).items():
                if self.target.write(feed_file(content.key, fmt), document):
                    result.written += 1
                    changed = True
                else:
                    result.unchanged += 1
            if changed:
                result.changed_keys.append(content.key)
            result.listed.append(
                ListedFeed(
                    content.key,
                    content.language,
                    content.kind,
                    content.title,
                    content.subject,
                    len(pks),
                    updated,
                )
            )
        return result
