"""Feeds as feed readers and partner sites see them, built from the fixture corpus."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import lxml.html
import pytest
from lxml import etree
from sqlalchemy import Engine

from syndicate.feeds.build import build_feeds
from syndicate.feeds.builder import BuildReport
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.render import ATOM_NS, RSS_NSMAP, FeedItem, FeedRenderer
from syndicate.workers import WorkerProcesses
from tests.support.fixture_corpus import NOW, OIL_GAS_RETRACTION, PERSIAN_UPDATE, ingest_text
from tests.support.json_feed_rules import validate_json_feed


def _build(engine: Engine, config: FeedConfig, now: datetime = NOW, **options: bool) -> BuildReport:
    return build_feeds(engine, config, now=now, **options)


@pytest.fixture
def built(engine: Engine, corpus_text: str, feed_config: FeedConfig) -> Path:
    """The fixture corpus ingested and built as of NOW; returns the feeds folder."""
    _report, messages = ingest_text(engine, corpus_text)
    assert messages == []
    _build(engine, feed_config)
    return Path(feed_config.feeds_dir)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(folder).as_posix(): path.stat().st_mtime_ns
        for path in folder.rglob("*")
        if path.is_file()
    }


def _ids(folder: Path, feed: str) -> list[str]:
    parsed = feedparser.parse((folder / feed).read_bytes())
    return [entry.id.rsplit(":", 1)[-1] for entry in parsed.entries]


def test_every_xml_feed_parses_cleanly_in_feedparser(built: Path) -> None:
    """Every RSS and Atom file is well-formed and recognised, with no bozo flag."""
    feeds = sorted(built.rglob("*.rss")) + sorted(built.rglob("*.atom"))
    assert len(feeds) > 20
    for path in feeds:
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
        assert parsed.version in ("rss20", "atom10"), path


def test_every_json_feed_is_valid_json_feed_1_1(built: Path) -> None:
    """Every .json file is a valid JSON Feed 1.1 document."""
    paths = sorted(built.rglob("*.json"))
    assert paths
    for path in paths:
        validate_json_feed(json.loads(path.read_bytes()))


def test_site_feed_is_newest_first_and_hides_drafts_and_future(built: Path) -> None:
    """The English site feed lists published articles newest first, no draft, nothing scheduled."""
    assert _ids(built, "en/all.rss") == ["cms-1002", "cms-1001", "cms-1007"]
    assert _ids(built, "en/all.atom") == ["cms-1002", "cms-1001", "cms-1007"]
    everything = b"".join(_files(built).values())
    assert b"cms-1005" not in everything
    assert b"cms-1006" not in everything


def test_every_tag_and_topic_has_its_feeds(built: Path) -> None:
    """Each tag and topic of a visible article has RSS, Atom and JSON, titled as editors wrote it."""
    for key in (
        "en/tags/military-withdrawal",
        "en/tags/oil-gas",
        "ar/tags/العراق",
        "fa/topics/kurds",
    ):
        for fmt in ("rss", "atom", "json"):
            assert (built / f"{key}.{fmt}").is_file(), key
    tag = feedparser.parse((built / "en/tags/oil-gas.rss").read_bytes())
    assert tag.feed.title == "Demo News: Oil & Gas"
    assert "Oil & Gas" in tag.feed.description
    topic = feedparser.parse((built / "en/topics/resistance.atom").read_bytes())
    assert topic.feed.title == "Demo News: Resistance"
    assert topic.feed.subtitle.startswith("Movements and armed groups")
    assert not (built / "en/tags/embargoed.rss").exists()  # its only article is scheduled


def test_near_duplicate_tags_share_one_feed(built: Path) -> None:
    """`US` and `us` are one tag: one feed holding both articles."""
    assert _ids(built, "en/tags/us.rss") == ["cms-1001", "cms-1007"]


def test_an_article_keeps_one_id_in_every_feed(built: Path) -> None:
    """The same article has the same id in the site, tag, topic and pick feeds, in all formats."""
    expected = "tag:site.example,2000:article:cms-1001"
    for feed in ("en/all", "en/tags/iraq", "en/topics/resistance", "en/editors-choice"):
        rss = feedparser.parse((built / f"{feed}.rss").read_bytes())
        atom = feedparser.parse((built / f"{feed}.atom").read_bytes())
        data = json.loads((built / f"{feed}.json").read_bytes())
        assert expected in [entry.id for entry in rss.entries]
        assert expected in [entry.id for entry in atom.entries]
        assert expected in [item["id"] for item in data["items"]]


def test_items_carry_dates_authors_categories_and_image(built: Path) -> None:
    """An item has its dates, author, tag and topic categories, and the lead image with size."""
    rss = feedparser.parse((built / "en/all.rss").read_bytes())
    item = next(entry for entry in rss.entries if entry.id.endswith("cms-1001"))
    assert item.published == "Wed, 20 Aug 2025 06:00:00 +0000"
    assert item.author == "Sara Ahmadi"
    assert [tag.term for tag in item.tags] == ["US", "Iraq", "Military Withdrawal", "Resistance"]
    assert item.enclosures[0].href == "https://site.example/img/1001.jpg"
    assert item.enclosures[0].length == "48213"
    assert item.enclosures[0].type == "image/jpeg"
    assert item.media_content[0]["filesize"] == "48213"
    assert item.summary == "Washington and Baghdad set dates."
    atom = feedparser.parse((built / "en/all.atom").read_bytes())
    entry = next(entry for entry in atom.entries if entry.id.endswith("cms-1001"))
    assert entry.updated == "2025-08-20T07:32:00+00:00"
    assert entry.published == "2025-08-20T06:00:00+00:00"
    enclosure = next(link for link in entry.links if link.rel == "enclosure")
    assert (enclosure.href, enclosure.length, enclosure.type) == (
        "https://site.example/img/1001.jpg",
        "48213",
        "image/jpeg",
    )
    alternate = [link for link in entry.links if link.rel == "alternate"]
    assert [link.href for link in alternate] == ["https://site.example/en/news/1001"]


def test_feed_date_is_its_newest_item(built: Path) -> None:
    """A feed's updated date is its newest item's, not the build time."""
    atom = feedparser.parse((built / "en/all.atom").read_bytes())
    assert atom.feed.updated == "2025-08-21T08:00:00+00:00"
    rss = (built / "en/all.rss").read_text()
    assert "<lastBuildDate>Thu, 21 Aug 2025 08:00:00 +0000</lastBuildDate>" in rss


def test_content_is_sanitized_and_links_absolute(built: Path) -> None:
    """Full content keeps ordinary markup and allowed embeds, loses scripts, handlers and forms."""
    data = json.loads((built / "en/all.json").read_bytes())
    contents = {item["id"].rsplit(":", 1)[-1]: item.get("content_html") for item in data["items"]}
    hostile = contents["cms-1001"] + contents["cms-1002"]
    for forbidden in (
        "<script",
        "onclick",
        "onerror",
        "javascript:",
        "<form",
        "<input",
        "evil.example",
        "\x01",
    ):
        assert forbidden not in hostile
    assert '<a href="https://site.example/en/tag/iraq"' in contents["cms-1001"]
    assert '<img src="https://site.example/img/inline.png">' in contents["cms-1002"]
    # Allowed players become links by default: the W3C validator warns about any iframe.
    player = "https://www.youtube.com/embed/abc123"
    assert f'<a href="{player}">{player}</a>' in contents["cms-1002"]
    assert "<iframe" not in contents["cms-1002"]
    assert "<h2>Context</h2>" in contents["cms-1002"]
    rss = feedparser.parse((built / "en/all.rss").read_bytes())
    assert "Second paragraph." in rss.entries[1].content[0].value


def test_embed_frames_keep_allowed_players_as_iframes(
    engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """With `embed_frames` on, an allowed player stays an iframe; others are still dropped."""
    ingest_text(engine, corpus_text)
    _build(engine, replace(feed_config, embed_frames=True))
    data = json.loads(Path(feed_config.feeds_dir, "en/all.json").read_bytes())
    contents = {item["id"].rsplit(":", 1)[-1]: item.get("content_html") for item in data["items"]}
    assert '<iframe src="https://www.youtube.com/embed/abc123"></iframe>' in contents["cms-1002"]
    assert "evil.example" not in contents["cms-1002"]


def test_article_without_body_has_no_empty_content(built: Path) -> None:
    """An empty body leaves out the content element (empty Atom content is invalid)."""
    data = json.loads((built / "en/all.json").read_bytes())
    bodiless = [item for item in data["items"] if "content_html" not in item]
    assert bodiless
    assert all(item["content_text"] == item["summary"] for item in bodiless)
    atom = (built / "en/all.atom").read_text()
    assert '<content type="html"/>' not in atom
    assert "<content:encoded></content:encoded>" not in (built / "en/all.rss").read_text()


def test_rss_description_is_escaped_html(built: Path) -> None:
    """RSS text spells `&` as a hexadecimal reference; a title's markup was dropped on ingest."""
    parsed = feedparser.parse((built / "en/all.rss").read_bytes())
    titles = {entry.id.rsplit(":", 1)[-1]: entry for entry in parsed.entries}
    assert titles["cms-1001"].title == "US & Iraq agree on timetable"
    rss = (built / "en/all.rss").read_text()
    assert "US &#x26; Iraq agree on timetable" in rss
    assert "&amp;" not in rss


def _one_item(summary: str, body_html: str) -> FeedItem:
    """An English item with this summary and body, and nothing else of note."""
    return FeedItem(
        cms_id="1",
        url="https://site.example/1",
        title="T",
        summary=summary,
        body_html=body_html,
        published_at=NOW,
        updated_at=NOW,
        language="en",
    )


RENDERER = FeedRenderer(site_url="https://site.example/", feeds_url="https://f.example/")


def test_plain_text_summary_is_html_escaped_in_rss_only() -> None:
    """A summary with `<` and `&` is escaped as HTML in RSS, and stays plain text in Atom."""
    item = _one_item("Why 3 < 4 & entities matter", "")
    fragments = RENDERER.fragments(item)
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in RSS_NSMAP.items())
    channel = etree.fromstring(f"<channel {namespaces}>".encode() + fragments.rss + b"</channel>")
    assert channel.findtext("item/description") == "Why 3 &lt; 4 &amp; entities matter"
    feed = etree.fromstring(f'<feed xmlns="{ATOM_NS}">'.encode() + fragments.atom + b"</feed>")
    assert feed.findtext(f"{{{ATOM_NS}}}entry/{{{ATOM_NS}}}summary") == item.summary


def test_markup_pasted_into_a_summary_is_dropped() -> None:
    """Summaries are plain text: tags an editor pasted in are removed, their words kept."""
    item = _one_item("Lead with <b>markup</b> &amp; more\ufffd", "<p>x&#0;y</p>")
    data = json.loads(RENDERER.fragments(item).json)
    assert data["summary"] == "Lead with markup & more"
    assert data["content_html"] == "<p>xy</p>"


def test_summary_falls_back_to_body_text(built: Path) -> None:
    """An article without a summary gets a plain-text lead from its body."""
    data = json.loads((built / "en/all.json").read_bytes())
    assert data["items"][0]["summary"].startswith("Context The PMF grew after 2014.")


def test_arabic_and_persian_feeds_are_marked_right_to_left(built: Path) -> None:
    """Arabic feeds declare their language everywhere and wrap content right-to-left."""
    rss = etree.parse(built / "ar/all.rss")
    assert rss.findtext("channel/language") == "ar"
    content = rss.findtext("channel/item/{http://purl.org/rss/1.0/modules/content/}encoded")
    assert content.startswith('<div dir="rtl" lang="ar">')
    atom = (built / "ar/all.atom").read_text()
    assert '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar">' in atom
    data = json.loads((built / "fa/all.json").read_bytes())
    assert data["language"] == "fa"
    assert data["items"][0]["content_html"].startswith('<div dir="rtl" lang="fa">')
    assert data["title"] == "اخبار آزمایشی"


def test_composed_titles_are_in_the_feed_language(built: Path) -> None:
    """An Arabic reader never meets an English heading in titles Syndicate composes."""
    ar = feedparser.parse((built / "ar/editors-choice.rss").read_bytes())
    assert ar.feed.title == "أخبار تجريبية: اختيارات المحرر"
    fa = feedparser.parse((built / "fa/most-viewed/week.atom").read_bytes())
    assert fa.feed.title == "اخبار آزمایشی: پربازدیدترین‌های این هفته"
    section = feedparser.parse((built / "ar/sections/news.rss").read_bytes())
    assert section.feed.title == "أخبار تجريبية: أخبار"
    topic = feedparser.parse((built / "ar/topics/resistance.rss").read_bytes())
    assert topic.feed.title == "أخبار تجريبية: المقاومة"


def test_editors_choice_lists_current_picks_latest_first(built: Path) -> None:
    """Picks still in place appear, the most recently picked first; an unpicked one does not."""
    assert _ids(built, "en/editors-choice.rss") == ["cms-1002", "cms-1001"]


def test_most_viewed_ranks_by_views_in_each_window(built: Path) -> None:
    """Most Viewed counts the views of the last day, week and month and ranks by them."""
    assert _ids(built, "en/most-viewed/day.rss") == ["cms-1002", "cms-1001"]
    assert _ids(built, "en/most-viewed/week.rss") == ["cms-1007", "cms-1001", "cms-1002"]
    assert _ids(built, "en/most-viewed/month.rss") == ["cms-1007", "cms-1001", "cms-1002"]


def test_self_and_hub_links_when_a_hub_is_configured(
    engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """Every format names its own URL, and the WebSub hub when one is configured."""
    ingest_text(engine, corpus_text)
    _build(engine, replace(feed_config, hub="https://hub.example/"))
    folder = Path(feed_config.feeds_dir)
    rss = feedparser.parse((folder / "en/tags/iraq.rss").read_bytes())
    links = {link.rel: link.href for link in rss.feed.links}
    assert links["self"] == "https://feeds.example/feeds/en/tags/iraq.rss"
    assert links["hub"] == "https://hub.example/"
    atom = feedparser.parse((folder / "ar/tags/العراق.atom").read_bytes())
    links = {link.rel: link.href for link in atom.feed.links}
    assert (
        links["self"]
        == "https://feeds.example/feeds/ar/tags/%D8%A7%D9%84%D8%B9%D8%B1%D8%A7%D9%82.atom"
    )
    assert links["hub"] == "https://hub.example/"
    data = json.loads((folder / "en/all.json").read_bytes())
    assert data["feed_url"] == "https://feeds.example/feeds/en/all.json"
    assert data["hubs"] == [{"type": "WebSub", "url": "https://hub.example/"}]


def test_item_count_is_configurable(
    engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """A feed holds at most the configured number of items, the newest."""
    ingest_text(engine, corpus_text)
    _build(engine, replace(feed_config, items=1))
    assert _ids(Path(feed_config.feeds_dir), "en/all.rss") == ["cms-1002"]


def test_rebuild_with_nothing_changed_rewrites_nothing(
    built: Path, engine: Engine, feed_config: FeedConfig
) -> None:
    """A full rebuild with no change leaves every file's bytes and mtime as they were."""
    before_files, before_times = _files(built), _mtimes(built)
    report = _build(engine, feed_config, now=NOW + timedelta(minutes=5), full=True)
    assert report.written == 0
    assert _files(built) == before_files
    assert _mtimes(built) == before_times


def test_two_builds_of_the_same_content_are_identical(
    engine: Engine, corpus_text: str, feed_config: FeedConfig, tmp_path: Path
) -> None:
    """Output depends only on content: a second folder built from the same store is byte-identical."""
    ingest_text(engine, corpus_text)
    _build(engine, feed_config)
    other = replace(feed_config, feeds_dir=str(tmp_path / "other"))
    _build(engine, other, full=True)
    assert _files(Path(feed_config.feeds_dir)) == _files(tmp_path / "other")


def test_incremental_build_touches_only_the_changed_article_feeds(
    built: Path, engine: Engine, feed_config: FeedConfig
) -> None:
    """After one Persian article changes, only Persian feeds it belongs to are rewritten."""
    before = _mtimes(built)
    update = json.dumps(PERSIAN_UPDATE)
    ingest_text(engine, update)
    report = _build(engine, feed_config, now=NOW + timedelta(minutes=1))
    assert report.mode == "incremental"
    assert report.articles == 1
    after = _mtimes(built)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {
        f"fa/{key}.{fmt}"
        for key in ("all", "sections/report", "tags/کردها", "tags/انتخابات", "topics/kurds")
        for fmt in ("rss", "atom", "json")
    }
    assert feedparser.parse((built / "fa/all.rss").read_bytes()).entries[0].title == "گزارش تازه"


def test_an_article_that_moves_leaves_the_feeds_it_was_in(
    built: Path, engine: Engine, feed_config: FeedConfig
) -> None:
    """An article moved to another section, tag and topic is rebuilt out of its old feeds too."""
    assert "cms-1004" in _ids(built, "fa/tags/کردها.rss")
    before = _mtimes(built)
    update = json.dumps(
        {
            "type": "article",
            "id": "cms-1004",
            "url": "https://site.example/fa/news/1004",
            "title": "گزارش تازه",
            "published_at": "2025-08-22T07:00:00+03:30",
            "updated_at": "2025-08-22T09:00:00+03:30",
            "status": "published",
            "language": "fa",
            "section": "news",
            "tags": ["انتخابات"],
            "topics": ["resistance"],
        }
    )
    ingest_text(engine, update)
    _build(engine, feed_config, now=NOW + timedelta(minutes=1))
    after = _mtimes(built)
    changed = {name.rsplit(".", 1)[0] for name in after if after[name] != before.get(name)}
    gone = {name.rsplit(".", 1)[0] for name in before if name not in after}
    assert changed | gone == {
        "index",  # feeds came and went
        "fa/all",
        "fa/sections/report",
        "fa/sections/news",
        "fa/tags/کردها",
        "fa/tags/انتخابات",
        "fa/topics/kurds",
        "fa/topics/resistance",
    }
    for feed in ("fa/sections/report", "fa/tags/کردها", "fa/topics/kurds"):
        assert not (built / f"{feed}.rss").exists() or "cms-1004" not in _ids(built, f"{feed}.rss")
    assert _ids(built, "fa/topics/resistance.rss") == ["cms-1004"]


def test_a_topic_renamed_in_one_language_rebuilds_its_feeds_in_every_language(
    built: Path, engine: Engine, feed_config: FeedConfig
) -> None:
    """A topic's new English name reaches its Persian feed, which borrows the English title."""
    before = _mtimes(built)
    renamed = {"type": "topic", "slug": "kurds", "language": "en", "name": "The Kurds"}
    ingest_text(engine, json.dumps(renamed))
    _build(engine, feed_config, now=NOW + timedelta(minutes=1))
    after = _mtimes(built)
    changed = {name for name in after if after[name] != before.get(name)}
    # The index names topics too; Arabic has no article on the topic, so no feed of it.
    assert {name.rsplit(".", 1)[0] for name in changed} == {
        "index",
        "en/topics/kurds",
        "fa/topics/kurds",
    }
    assert "The Kurds" in feedparser.parse((built / "fa/topics/kurds.rss").read_bytes()).feed.title


def test_retracted_article_disappears_and_its_lonely_tags_go(
    built: Path, engine: Engine, feed_config: FeedConfig
) -> None:
    """A retraction removes the article everywhere; tags left empty lose their feeds and index entry."""
    retraction = json.dumps(OIL_GAS_RETRACTION)
    ingest_text(engine, retraction)
    report = _build(engine, feed_config, now=NOW + timedelta(minutes=1))
    assert report.removed >= 1
    everything = b"".join(_files(built).values())
    assert b"cms-1007" not in everything
    assert not (built / "en/tags/oil-gas.rss").exists()
    assert not (built / "en/tags/oil-gas.json").exists()
    assert b"oil-gas" not in (built / "index.opml").read_bytes()
    assert b"oil-gas" not in (built / "index.html").read_bytes()
    assert _ids(built, "en/tags/us.rss") == ["cms-1001"]


def test_scheduled_article_appears_when_its_time_comes(
    built: Path, engine: Engine, feed_config: FeedConfig
) -> None:
    """A future article shows up at the first build after its time, with its new tag feed."""
    report = _build(engine, feed_config, now=datetime.fromisoformat("2025-08-23T09:00:01+00:00"))
    assert report.mode == "incremental"
    assert _ids(built, "en/all.rss")[0] == "cms-1006"
    assert (built / "en/tags/embargoed.atom").is_file()
    assert b"en/tags/embargoed.rss" in (built / "index.opml").read_bytes()


def test_one_bad_article_never_breaks_a_feed(
    engine: Engine, corpus_text: str, feed_config: FeedConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An article that fails to render is logged and left out; the feed is still written."""
    ingest_text(engine, corpus_text)
    original = FeedRenderer.fragments

    def failing(self: FeedRenderer, item: object) -> object:
        if getattr(item, "cms_id", None) == "cms-1001":
            raise ValueError("simulated rendering failure")
        return original(self, item)  # type: ignore[arg-type]

    monkeypatch.setattr(FeedRenderer, "fragments", failing)
    report = _build(engine, feed_config)
    assert report.failed == ["cms-1001"]
    assert _ids(Path(feed_config.feeds_dir), "en/all.rss") == ["cms-1002", "cms-1007"]


def test_index_lists_every_feed_with_absolute_urls(built: Path) -> None:
    """index.opml names every feed by absolute URL; index.html links every format of every feed."""
    opml = (built / "index.opml").read_text()
    xml_urls = re.findall(r'xmlUrl="([^"]+)"', opml)
    rss_files = sorted(path.relative_to(built).as_posix() for path in built.rglob("*.rss"))
    from urllib.parse import unquote

    assert (
        sorted(unquote(url.removeprefix("https://feeds.example/feeds/")) for url in xml_urls)
        == rss_files
    )
    html = (built / "index.html").read_text()
    from urllib.parse import quote

    for path in sorted(built.rglob("*.*")):
        name = path.relative_to(built).as_posix()
        if name.endswith((".rss", ".atom", ".json")):
            assert f'href="{quote(name)}"' in html, name
    assert 'lang="ar" dir="rtl"' in html


@pytest.mark.parametrize(
    ("feed", "golden"),
    [
        ("en/topics/resistance.rss", "en-topics-resistance.rss"),
        ("en/topics/resistance.atom", "en-topics-resistance.atom"),
        ("ar/topics/resistance.json", "ar-topics-resistance.json"),
    ],
)
def test_feed_matches_golden_file(built: Path, feed: str, golden: str) -> None:
    """Feeds are byte-for-byte what the reviewed golden files say (UPDATE_GOLDEN=1 rewrites them)."""
    import os

    from tests.support.fixture_corpus import GOLDEN

    actual = (built / feed).read_bytes()
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / golden).write_bytes(actual)
    assert actual == (GOLDEN / golden).read_bytes()


def test_worker_pool_build_matches_in_process_build(
    sqlite_engine: Engine,
    corpus_text: str,
    feed_config: FeedConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large build spread over worker processes writes exactly what one process writes."""
    from syndicate.feeds import builder

    ingest_text(sqlite_engine, corpus_text)
    _build(sqlite_engine, feed_config)
    monkeypatch.setattr(builder, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(builder, "CHUNK", 2)
    monkeypatch.setattr(builder, "FEED_CHUNK", 3)
    pooled = replace(feed_config, feeds_dir=str(tmp_path / "pooled"), workers=2)
    processes = WorkerProcesses.for_engine(sqlite_engine)
    report = build_feeds(sqlite_engine, pooled, now=NOW, full=True, processes=processes)
    assert report.feeds > 20
    assert _files(tmp_path / "pooled") == _files(Path(feed_config.feeds_dir))


# What unfolds a long list in the index, in each section's language.
SHOW_ALL_TAGS = {
    "en": "Show all tags ({count})",
    "ar": "عرض كل الوسوم ({count})",
    "fa": "نمایش همهٔ برچسب‌ها ({count})",
}


def test_index_labels_a_long_tag_list_in_its_language(
    sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """A folded list of tags opens on words in its section's language, not on a bare number."""
    many_tags = [
        json.dumps(
            {
                "type": "article", "id": f"cms-{language}-{number}",
                "url": f"https://site.example/{language}/news/{number}",
                "title": f"Article {number}", "published_at": "2025-08-20T10:00:00Z",
                "status": "published", "language": language, "section": "news",
                "tags": [f"Tag {number}"],
            }
        )
        for language in SHOW_ALL_TAGS
        for number in range(13)
    ]  # fmt: skip
    ingest_text(sqlite_engine, corpus_text + "\n" + "\n".join(many_tags))
    _build(sqlite_engine, feed_config)
    built = Path(feed_config.feeds_dir)
    index = lxml.html.document_fromstring((built / "index.html").read_bytes())
    for language, label in SHOW_ALL_TAGS.items():
        [section] = index.xpath(f"//section[@lang='{language}']")
        [tags] = section.xpath(".//ul[details or ancestor::details]")
        count = len(list((built / language / "tags").glob("*.json")))
        assert count > 12
        [summary] = tags.xpath("ancestor::details/summary")
        assert summary.text_content() == label.format(count=count)
        [heading] = section.xpath(f".//h3[@id='{tags.get('aria-labelledby')}']")
        assert heading.text_content() == {"en": "Tags", "ar": "الوسوم", "fa": "برچسب‌ها"}[language]
