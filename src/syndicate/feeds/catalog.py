"""What each feed is called and says about itself, in its own language."""

from __future__ import annotations

from dataclasses import dataclass

from syndicate.domain.periods import MOST_VIEWED_PERIODS
from syndicate.feeds.layout import Kind, split_key
from syndicate.i18n.catalogs import N_, gettext

# Section slugs the site uses, with their English names (msgids for translation).
SECTION_NAMES = {
    "news": N_("News"),
    "report": N_("Report"),
    "analysis": N_("Analysis"),
    "interview": N_("Interview"),
    "photo-gallery": N_("Photo gallery"),
    "film": N_("Film"),
}


@dataclass(frozen=True, slots=True)
class FeedTitle:
    """A feed's title, its one-line description, and the name of its subject alone."""

    title: str
    description: str
    subject: str


def section_name(language: str, section: str) -> str:
    """A section's name in `language` (unknown sections are named after their slug)."""
    english = SECTION_NAMES.get(section)
    if english is None:
        return section.replace("-", " ").capitalize()
    return gettext(language, english)


def feed_title(key: str, site: str, name: str | None = None, about: str = "") -> FeedTitle:
    """Title and description of the feed `key` of the site called `site`.

    `name` is the tag as editors wrote it or the topic's name; `about` is a topic's description.
    """
    language, kind, param = split_key(key)

    def _(message: str) -> str:
        return gettext(language, message)

    match kind:
        case Kind.ALL:
            subject = _("Latest articles")
            return FeedTitle(site, _("The latest articles from {site}.").format(site=site), subject)
        case Kind.SECTION:
            subject = section_name(language, param or "")
            description = _("The latest articles in {section} from {site}.")
            return FeedTitle(
                f"{site}: {subject}", description.format(section=subject, site=site), subject
            )
        case Kind.TAG:
            subject = name or param or ""
            description = _("Articles tagged “{tag}” from {site}.")
            return FeedTitle(
                f"{site}: {subject}", description.format(tag=subject, site=site), subject
            )
        case Kind.TOPIC:
            subject = name or param or ""
            description = about or _("Articles about {topic} from {site}.").format(
                topic=subject, site=site
            )
            return FeedTitle(f"{site}: {subject}", description, subject)
        case Kind.EDITORS_CHOICE:
            subject = _("Editor's Choice")
            description = _("Articles picked by the editors of {site}.")
            return FeedTitle(f"{site}: {subject}", description.format(site=site), subject)
        case Kind.MOST_VIEWED:
            period = MOST_VIEWED_PERIODS[param or "day"]
            subject = _(period.title)
            description = _(period.description)
            return FeedTitle(f"{site}: {subject}", description.format(site=site), subject)
    raise AssertionError(f"unhandled feed kind {kind}")
