"""A deterministic demo corpus in the ingest format: same arguments, same records, same bytes.

The stream reads like a real site's export: the In Focus topics first (in every language), then
90 days of articles oldest first, each followed by its hourly views, and at the end of each day
the Editor's Choice picks for that day. It is generated lazily, so a corpus of any size costs
the same memory: only one day's articles are remembered, for the picks.
"""

from __future__ import annotations

import html
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from syndicate.demo import vocabulary as words
from syndicate.domain.periods import LONGEST_PERIOD
from syndicate.text.tidy import tag_key

Record = dict[str, Any]

SPAN = timedelta(days=90)
SITE = "https://site.example"
# Shares of articles that are not simply published in the past.
DRAFT_SHARE = 0.02
RETRACTED_SHARE = 0.005
SCHEDULED_SHARE = 0.004
UPDATED_SHARE = 0.2
# Hours after publication at which an article's views are recorded (views thin out with age).
VIEW_HOURS = (1, 2, 3, 5, 8, 12, 24, 48, 96, 168, 336, 672)
# Views of older articles count for no Most Viewed period (the longest, and a day of slack).
VIEW_REACH = LONGEST_PERIOD + timedelta(days=1)
PICKS_PER_DAY = {"en": 6, "ar": 4, "fa": 4}
PICK_HOUR = 18  # the day's picks go up at 18:00 UTC and stay a day
# Zipf exponent of tag popularity: a few tags on everything, a long tail used a handful of times.
TAG_SKEW = 0.9


def generate_corpus(
    *, now: datetime, articles: int = 3000, tags: int = 2000, seed: int = 1
) -> Iterator[Record]:
    """Topics, then `articles` articles over the 90 days before `now`, with views and picks."""
    rng = random.Random(seed)
    vocabulary = TagVocabulary.build(tags, random.Random(f"tags-{seed}"))
    yield from topic_records()
    writer = _ArticleWriter(rng, vocabulary, now)
    picks = _PickDesk(rng, now)
    start = now - SPAN
    for number in range(articles):
        # Spread evenly over the span, with jitter, so the stream stays in time order.
        moment = start + SPAN * ((number + rng.random()) / articles)
        if picks.day is not None and moment.date() != picks.day:
            yield from picks.close_day()
        record = writer.article(number, moment)
        yield record
        yield from writer.views(record)
        picks.consider(record, moment.date())
    yield from picks.close_day()


def topic_records() -> Iterator[Record]:
    """Every In Focus topic, named and described in every language."""
    for slug, texts in words.TOPICS.items():
        for language, (name, description) in texts.items():
            yield {
                "type": "topic",
                "slug": slug,
                "name": name,
                "language": language,
                "description": description,
            }


@dataclass(frozen=True)
class TagVocabulary:
    """The site's tags per language, most used first, and how to draw them by popularity."""

    tags: dict[str, list[str]]
    weights: dict[str, list[float]]

    @classmethod
    def build(cls, count: int, rng: random.Random) -> TagVocabulary:
        """`count` distinct tags shared out between the languages like the articles are."""
        total_share = sum(words.LANGUAGE_SHARES.values())
        quotas = {
            language: max(1, count * share // total_share)
            for language, share in words.LANGUAGE_SHARES.items()
        }
        quotas["en"] += count - sum(quotas.values())
        tags = {language: _tags_for(language, quota, rng) for language, quota in quotas.items()}
        weights = {
            language: list(
                itertools.accumulate(1 / (rank + 1) ** TAG_SKEW for rank in range(len(names)))
            )
            for language, names in tags.items()
        }
        return cls(tags, weights)

    def draw(self, language: str, rng: random.Random, count: int) -> list[str]:
        """`count` tags of `language`, popular ones more often."""
        names = self.tags[language]
        return rng.choices(names, cum_weights=self.weights[language], k=count)


def _tags_for(language: str, quota: int, rng: random.Random) -> list[str]:
    """Core tags, then single places and subjects, then shuffled combinations, messily written."""
    places, subjects = words.PLACES[language], words.SUBJECTS[language]
    core = words.CORE_TAGS[
        language
    ]  # near-duplicates here are deliberate ("Al-Sudani", "al sudani")
    combined = [
        *(f"{place} {subject}" for place in places for subject in subjects),
        *(f"{place} & {other}" for place in places for other in places if place != other),
        *(f"{place}/{other}" for place in places for other in places if place < other),
    ]
    rng.shuffle(combined)
    chosen = list(dict.fromkeys(core))[:quota]
    keys = {tag_key(name) for name in chosen}
    for name in itertools.chain(places, subjects, combined, _numbered(subjects)):
        if len(chosen) >= quota:
            break
        if tag_key(name) in keys:
            continue
        keys.add(tag_key(name))
        chosen.append(_messy(name, rng) if language == "en" else name)
    return chosen


def _numbered(subjects: list[str]) -> Iterator[str]:
    """Endless further tags for corpora larger than the combinations ("Elections 2001")."""
    for year in itertools.count(2001):
        for subject in subjects:
            yield f"{subject} {year}"


def _messy(name: str, rng: random.Random) -> str:
    """Write a tag the way a hurried editor might: lower case, or with a stray space."""
    roll = rng.random()
    if roll < 0.05:
        return name.lower()
    if roll < 0.07:
        return name.replace(" ", "  ", 1) + " "
    return name


class _ArticleWriter:
    """Makes one article record at a time, and the views that follow it."""

    def __init__(self, rng: random.Random, vocabulary: TagVocabulary, now: datetime) -> None:
        """Draw from `rng`; tags from `vocabulary`; nothing is published after `now` but on purpose."""
        self.rng = rng
        self.vocabulary = vocabulary
        self.now = now
        self.languages = list(words.LANGUAGE_SHARES)
        self.language_weights = list(words.LANGUAGE_SHARES.values())
        self.sections = list(words.SECTIONS)
        self.section_weights = list(words.SECTIONS.values())
        self.topics = list(words.TOPICS)

    def article(self, number: int, moment: datetime) -> Record:
        """The article numbered `number`, published around `moment`."""
        rng = self.rng
        language = rng.choices(self.languages, self.language_weights)[0]
        section = rng.choices(self.sections, self.section_weights)[0]
        place, other = rng.sample(words.PLACES[language], 2)
        subject = rng.choice(words.SUBJECTS[language])
        fill = {"place": place, "other": other, "subject": subject}
        status, published = self._status_and_time(moment)
        updated = published
        if published <= self.now and rng.random() < UPDATED_SHARE:
            updated = min(self.now, published + timedelta(minutes=rng.randint(10, 720)))
        cms_number = 100_000 + number
        tags = [place, subject, *self.vocabulary.draw(language, rng, rng.randint(1, 4))]
        record: Record = {
            "type": "article",
            "id": f"cms-{cms_number}",
            "url": f"{SITE}/{language}/{section}/{cms_number}",
            "title": rng.choice(words.TITLES[language]).format(**fill),
            "summary": " ".join(self._sentences(language, fill, 2)),
            "body_html": self._body(language, section, fill, tags),
            "published_at": _stamp(published, language),
            "updated_at": _stamp(updated, language),
            "status": status,
            "language": language,
            "section": section,
            "authors": self._authors(language),
            "tags": list(dict.fromkeys(tags)),
            "topics": self._topics(),
        }
        if rng.random() < 0.9:
            record["image"] = {
                "url": f"{SITE}/img/{cms_number}.jpg",
                "caption": words.CAPTIONS[language].format(place=place),
                "type": "image/jpeg",
                "length": rng.randint(20_000, 250_000),
                "width": 1200,
                "height": 675,
            }
        return record

    def views(self, record: Record) -> Iterator[Record]:
        """Hourly view counts for a recent published article, thinning out as it ages."""
        published = datetime.fromisoformat(record["published_at"])
        if record["status"] != "published" or not self.now - VIEW_REACH < published <= self.now:
            return
        base = {"en": 80, "ar": 40, "fa": 40}[record["language"]]
        popularity = self.rng.lognormvariate(0, 1) * base
        first_hour = published.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for after in VIEW_HOURS:
            hour = first_hour + timedelta(hours=after)
            if hour > self.now:
                break
            yield {
                "type": "views",
                "article_id": record["id"],
                "hour": _stamp(hour, "en"),
                "count": max(1, round(popularity / after**0.7)),
            }

    def _status_and_time(self, moment: datetime) -> tuple[str, datetime]:
        roll = self.rng.random()
        if roll < DRAFT_SHARE:
            return "draft", moment
        if roll < DRAFT_SHARE + RETRACTED_SHARE:
            return "retracted", moment
        if roll < DRAFT_SHARE + RETRACTED_SHARE + SCHEDULED_SHARE:
            # Scheduled: published in the CMS, due within the next two days.
            return "published", self.now + timedelta(minutes=self.rng.randint(15, 48 * 60))
        return "published", moment.replace(microsecond=0)

    def _sentences(self, language: str, fill: dict[str, str], count: int) -> list[str]:
        return [
            sentence.format(**fill)
            for sentence in self.rng.sample(words.SENTENCES[language], count)
        ]

    def _body(self, language: str, section: str, fill: dict[str, str], tags: list[str]) -> str:
        """Several paragraphs of CMS HTML: a heading, a relative tag link, sometimes media."""
        rng = self.rng
        escaped = {key: html.escape(value) for key, value in fill.items()}
        parts = []
        for index in range(rng.randint(3, 6)):
            if index == 2 and rng.random() < 0.5:
                parts.append(f"<h2>{html.escape(rng.choice(words.HEADINGS[language]))}</h2>")
            text = " ".join(self._sentences(language, escaped, rng.randint(2, 4)))
            if index == 0:
                tag = tags[0]
                link = f'<a href="/{language}/tag/{quote(tag)}">{html.escape(tag)}</a>'
                text = f"{link}: {text}"
            parts.append(f"<p>{text}</p>")
        if section == "film":
            video = f"{rng.getrandbits(40):x}"
            parts.insert(1, f'<iframe src="https://www.youtube.com/embed/{video}" width="560" height="315" allowfullscreen></iframe>')  # fmt: skip
        elif section == "photo-gallery":
            for shot in range(rng.randint(2, 4)):
                parts.append(f'<figure><img src="/img/gallery-{shot}.jpg" alt="{escaped["place"]}"><figcaption>{escaped["place"]}</figcaption></figure>')  # fmt: skip
        if rng.random() < 0.01:
            # Embeds pasted from social networks arrive with their scripts; feeds must drop them.
            parts.append('<blockquote class="twitter-tweet"><p>…</p></blockquote><script async src="https://platform.twitter.com/widgets.js"></script>')  # fmt: skip
        return "".join(parts)

    def _authors(self, language: str) -> list[str]:
        roll = self.rng.random()
        if roll < 0.05:
            return []
        return self.rng.sample(words.PEOPLE[language], 2 if roll > 0.85 else 1)

    def _topics(self) -> list[str]:
        roll = self.rng.random()
        if roll < 0.55:
            return []
        return self.rng.sample(self.topics, 2 if roll > 0.85 else 1)


@dataclass
class _PickDesk:
    """Editors choose each day's Editor's Choice from that day's articles."""

    rng: random.Random
    now: datetime
    day: date | None = None  # the date whose articles are being collected
    candidates: dict[str, list[Record]] = field(default_factory=dict)

    def consider(self, record: Record, day: date) -> None:
        """Remember a published article as a candidate for the picks of `day`."""
        self.day = day
        if record["status"] == "published":
            self.candidates.setdefault(record["language"], []).append(record)

    def close_day(self) -> Iterator[Record]:
        """The picks of the day just ended; those still featured now have no `unpicked_at`."""
        if self.day is None:
            return
        picked_at = datetime.combine(self.day, datetime.min.time(), self.now.tzinfo).replace(
            hour=PICK_HOUR
        )
        unpicked_at = picked_at + timedelta(days=1)
        if picked_at <= self.now:
            for language, candidates in sorted(self.candidates.items()):
                records = [
                    record
                    for record in candidates
                    if datetime.fromisoformat(record["published_at"]) < picked_at
                ]
                chosen = self.rng.sample(records, min(len(records), PICKS_PER_DAY[language]))
                for position, record in enumerate(chosen, start=1):
                    yield {
                        "type": "pick",
                        "article_id": record["id"],
                        "position": position,
                        "picked_at": _stamp(picked_at, "en"),
                        "unpicked_at": _stamp(unpicked_at, "en")
                        if unpicked_at <= self.now
                        else None,
                    }
        self.day = None
        self.candidates = {}


def _stamp(moment: datetime, language: str) -> str:
    """RFC 3339 with the offset the language's desk writes (the ingest format demands one)."""
    hours, minutes = words.OFFSETS[language][1:].split(":")
    zone = timezone(timedelta(hours=int(hours), minutes=int(minutes)))
    return moment.astimezone(zone).isoformat()
