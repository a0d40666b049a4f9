"""Digest editions: windows, what an edition gathers, frozen content and skipping (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from syndicate.digests.editions import (
    DigestConfig,
    build_edition,
    edition_window,
    load_edition,
)
from syndicate.digests.frozen import edition_from_json, edition_to_json
from syndicate.domain.periods import Kind
from syndicate.settings import Settings
from syndicate.store.schema import edition as edition_table
from tests.support.digest_corpus import (
    CONFIG,
    NOW,
    SITE_TITLES,
    TODAY,
    article,
    build,
    digest_corpus,
    ingest,
    picked,
    viewed,
)


def ids(items: Any) -> list[str]:
    """The CMS ids of digest items."""
    return [item.cms_id for item in items]


# -- windows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reach"),
    [
        ("daily", timedelta(hours=24)),
        ("weekly", timedelta(days=7)),
        ("monthly", timedelta(days=30)),
    ],
)
def test_window_of_today_ends_at_the_build(kind: Kind, reach: timedelta) -> None:
    """Today's edition covers the last 24 hours, 7 days or 30 days up to the moment it is built."""
    assert edition_window(kind, TODAY, ZoneInfo("UTC"), NOW) == (NOW - reach, NOW)


def test_window_of_a_past_date_ends_at_its_midnight_in_the_schedule_zone() -> None:
    """A past date's edition ends at the end of that day in the configured zone."""
    start, end = edition_window("weekly", date(2026, 11, 20), ZoneInfo("Asia/Tehran"), NOW)
    assert end == datetime(2026, 11, 20, 20, 30, tzinfo=UTC)  # midnight at +03:30
    assert start == end - timedelta(days=7)


def test_today_is_the_date_in_the_schedule_zone() -> None:
    """At 22:00 UTC it is already tomorrow in Tehran, and that is the edition's date."""
    late = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    assert edition_window("daily", date(2026, 11, 24), ZoneInfo("Asia/Tehran"), late)[1] == late


def test_an_edition_of_a_future_date_is_refused() -> None:
    """Nobody can build tomorrow's edition today."""
    with pytest.raises(ValueError, match="future"):
        edition_window("daily", TODAY + timedelta(days=1), ZoneInfo("UTC"), NOW)


# -- what an edition holds ---------------------------------------------------------------


def test_edition_ids_name_kind_language_and_date(engine: Engine) -> None:
    """Editions are stored as kind-language-date, today's by default, or the date asked for."""
    ingest(engine, *digest_corpus())
    assert (
        build_edition(engine, CONFIG, "daily", "en", None, NOW).edition_id == "daily-en-2026-11-23"
    )
    past = build_edition(engine, CONFIG, "weekly", "en", date(2026, 11, 22), NOW)
    assert past.edition_id == "weekly-en-2026-11-22"
    assert past.created


def test_picks_of_the_window_in_position_order(engine: Engine) -> None:
    """Picks active during the window come in position order; drafts and unpicked ones do not."""
    ingest(engine, *digest_corpus())
    daily = build(engine)
    assert ids(daily.picks) == ["cms-1", "cms-2"]  # cms-3 was unpicked 30 hours ago; cms-7 a draft
    weekly = build(engine, "weekly")
    assert ids(weekly.picks) == ["cms-1", "cms-2", "cms-3"]


def test_picks_are_capped(engine: Engine) -> None:
    """An edition carries at most [digests] picks Editor's Choice items."""
    ingest(engine, *digest_corpus())
    edition = build(engine, "weekly", config=DigestConfig(picks=1, site_titles=SITE_TITLES))
    assert ids(edition.picks) == ["cms-1"]


def test_most_viewed_ranks_the_window_without_repeating_picks(engine: Engine) -> None:
    """Most Viewed sums the window's hourly views and leaves out articles already picked."""
    ingest(engine, *digest_corpus())
    daily = build(engine)
    assert ids(daily.most_viewed) == ["cms-4", "cms-5", "cms-6"]  # cms-1 (900) is a pick
    assert [item.views for item in daily.most_viewed] == [
        500,
        320,
        50,
    ]  # 800 views of cms-6 are older
    weekly = build(engine, "weekly")
    assert ids(weekly.most_viewed) == ["cms-6", "cms-4", "cms-5"]
    assert not set(ids(weekly.picks)) & set(ids(weekly.most_viewed))


def test_most_viewed_is_capped(engine: Engine) -> None:
    """An edition carries at most [digests] most_viewed Most Viewed items."""
    ingest(engine, *digest_corpus())
    config = DigestConfig(most_viewed=1, site_titles=SITE_TITLES)
    assert ids(build(engine, config=config).most_viewed) == ["cms-4"]


def test_each_language_gets_its_own_articles(engine: Engine) -> None:
    """An Arabic edition holds Arabic articles only."""
    ingest(engine, *digest_corpus())
    arabic = build(engine, language="ar")
    assert ids(arabic.picks) == ["cms-21"]
    assert ids(arabic.most_viewed) == ["cms-22"]
    assert arabic.language == "ar"


def test_topic_sections_hold_the_newest_articles_not_shown_above(engine: Engine) -> None:
    """Each topic lists its newest articles of the window, capped, skipping picks and Most Viewed."""
    ingest(engine, *digest_corpus())
    daily = build(engine)
    sections = {section.slug: ids(section.items) for section in daily.topics}
    # cms-4 is Most Viewed and cms-1 a pick; cms-9 is not published yet.
    assert sections == {"kurds": ["cms-8"], "resistance": ["cms-10"]}
    capped = build(engine, "weekly", config=DigestConfig(topic_items=1, site_titles=SITE_TITLES))
    assert all(len(section.items) <= 1 for section in capped.topics)


def test_topic_names_fall_back_to_english(engine: Engine) -> None:
    """A topic without a name in the edition's language is named in English."""
    ingest(engine, *digest_corpus())
    names = {section.slug: section.name for section in build(engine, language="ar").topics}
    assert names == {"kurds": "Kurds"}  # the only Arabic "resistance" article is a pick


def test_topic_name_in_the_editions_language(engine: Engine) -> None:
    """A topic named in the edition's language uses that name."""
    ingest(
        engine,
        *digest_corpus(),
        article(24, "المقاومة ترد", 1, language="ar", topics=("resistance",)),
    )
    names = {section.slug: section.name for section in build(engine, language="ar").topics}
    assert names == {"kurds": "Kurds", "resistance": "المقاومة"}


def test_items_carry_image_alt_text_and_a_plain_summary(engine: Engine) -> None:
    """Images are described by their caption, else by the title; summaries are plain text."""
    ingest(engine, *digest_corpus())
    daily = build(engine)
    first, second = daily.picks
    assert (first.image_url, first.image_alt) == (
        "https://site.example/img/1.jpg",
        "Talks in Baghdad",
    )
    assert (second.image_url, second.image_alt) == (None, "")
    assert (
        second.summary
        == "The Popular Mobilization Forces grew after 2014. They now sit in parliament."
    )
    interview = daily.most_viewed[1]
    assert interview.image_alt == "Interview: the minister on elections"  # empty caption


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("en", "Demo News: your daily digest for November 23, 2026"),
        ("ar", "أخبار تجريبية: نشرتك اليومية، 23 نوفمبر 2026"),
        ("fa", "اخبار آزمایشی: خبرنامهٔ روزانهٔ شما، ۲۳ نوامبر ۲۰۲۶"),
    ],
)
def test_subject_is_translated_with_a_local_date(
    engine: Engine, language: str, subject: str
) -> None:
    """The subject line names the site and the date as readers of the language write them."""
    ingest(engine, *digest_corpus())
    assert build(engine, language=language).subject == subject


# -- frozen, idempotent ------------------------------------------------------------------


def test_an_edition_is_frozen_at_its_first_build(engine: Engine) -> None:
    """Building again returns the same id and the same content, whatever happened since."""
    ingest(engine, *digest_corpus())
    first = build_edition(engine, CONFIG, "daily", "en", None, NOW)
    frozen = load_edition(engine, "daily-en-2026-11-23")
    ingest(engine, viewed(6, 1, 5000), picked(8, 1, 1), article(11, "Breaking", 1))
    again = build_edition(engine, CONFIG, "daily", "en", None, NOW + timedelta(hours=3))
    assert (first.created, again.created) == (True, False)
    assert again.edition_id == first.edition_id
    assert load_edition(engine, "daily-en-2026-11-23") == frozen
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(edition_table)) == 1


def test_a_past_dates_window_ignores_later_activity(engine: Engine) -> None:
    """Yesterday's edition, built today, holds what yesterday's window held."""
    ingest(engine, *digest_corpus())
    yesterday = build(engine, day=date(2026, 11, 22))
    assert yesterday.window_end == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert ids(yesterday.picks) == ["cms-2", "cms-3"]  # cms-1 was picked at 02:00 today
    assert ids(yesterday.most_viewed) == ["cms-6"]


def test_stored_json_round_trips(engine: Engine) -> None:
    """An edition's frozen JSON reads back as the very same edition."""
    ingest(engine, *digest_corpus())
    edition = build(engine, "weekly", "ar")
    assert edition_from_json(json.loads(json.dumps(edition_to_json(edition)))) == edition


def test_missing_edition_loads_as_none(engine: Engine) -> None:
    """Loading an id that was never built gives nothing."""
    assert load_edition(engine, "daily-en-1999-01-01") is None


# -- skipping ----------------------------------------------------------------------------


def test_an_edition_with_nothing_is_skipped(engine: Engine) -> None:
    """With no picks and no Most Viewed, nothing is stored and the reason is given."""
    ingest(engine, *digest_corpus())
    skipped = build_edition(engine, CONFIG, "daily", "fa", date(2026, 11, 1), NOW)
    assert skipped.edition_id is None
    assert not skipped.created
    assert skipped.skipped
    assert "no Editor's Choice" in skipped.skipped
    assert load_edition(engine, "daily-fa-2026-11-01") is None


def test_an_edition_repeating_the_previous_one_is_skipped(engine: Engine) -> None:
    """When every item was in the previous edition of its kind, the new one is skipped."""
    ingest(engine, article(32, "کهنه", 40, language="fa"), picked(32, 1, 40))
    build(engine, "daily", "fa", date(2026, 11, 22))
    repeat = build_edition(engine, CONFIG, "daily", "fa", None, NOW)
    assert repeat.edition_id is None
    assert repeat.skipped == "every item was already in the previous edition daily-fa-2026-11-22"
    ingest(engine, article(33, "تازه", 1, language="fa"), viewed(33, 1, 3))
    assert build_edition(engine, CONFIG, "daily", "fa", None, NOW).created


def test_skipping_can_be_turned_off(engine: Engine) -> None:
    """With skip_empty off, an empty edition is stored all the same."""
    config = DigestConfig(skip_empty=False, site_titles=SITE_TITLES)
    empty = build(engine, config=config)
    assert (empty.picks, empty.most_viewed, empty.topics) == ((), (), ())


def test_only_enabled_kinds_and_site_languages_build(engine: Engine) -> None:
    """A digest kind that is not enabled, or a language the site lacks, is refused."""
    config = DigestConfig(kinds=("weekly",), site_titles=SITE_TITLES)
    with pytest.raises(ValueError, match=r"digests\.kinds"):
        build_edition(engine, config, "daily", "en", None, NOW)
    with pytest.raises(ValueError, match=r"site\.languages"):
        build_edition(engine, config, "weekly", "de", None, NOW)


def test_config_takes_what_it_needs_from_settings() -> None:
    """The building configuration follows [digests], [schedule] and [site]."""
    settings = Settings.model_validate(
        {
            "digests": {"picks": 2, "most_viewed": 3, "topic_items": 1, "kinds": ["weekly"]},
            "schedule": {"timezone": "Asia/Tehran"},
            "site": {"title": "Demo", "titles": {"fa": "دمو"}, "languages": ["en", "fa"]},
        }
    )
    config = DigestConfig.from_settings(settings)
    assert (config.picks, config.most_viewed, config.topic_items) == (2, 3, 1)
    assert config.kinds == ("weekly",)
    assert config.zone == ZoneInfo("Asia/Tehran")
    assert dict(config.site_titles) == {"en": "Demo", "fa": "دمو"}
