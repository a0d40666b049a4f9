"""The WordPress source reads a real HTTP server answering with recorded REST API responses."""

from __future__ import annotations

import copy
import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import AnyHttpUrl
from sqlalchemy import Engine, select

from syndicate.observe import metrics
from syndicate.settings import IngestSettings, Settings, SourceSettings, WordPressSettings
from syndicate.sources.polling import poll_sources
from syndicate.sources.report import SourceError, SourceReport
from syndicate.sources.wordpress import CURSOR_STATE, poll_wordpress, read_cursor, save_cursor
from syndicate.sources.wordpress_posts import Vocabulary, article_record
from syndicate.store.schema import article, article_tag, article_topic, state, tag, topic
from tests.support.fixture_corpus import LANGUAGES, ingest_text

DATA = Path(__file__).parent / "data" / "wordpress"
VOCABULARY = Vocabulary(
    "en", frozenset({"news", "report", "analysis"}), {"en": frozenset({"resistance"})}
)
TOPIC = '{"type": "topic", "slug": "resistance", "name": "Resistance", "language": "en"}'


def _recorded(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _posts() -> list[dict[str, Any]]:
    return [*_recorded("posts-page-1.json"), *_recorded("posts-page-2.json")]


class FakeWordPress:
    """WordPress's /wp/v2/posts: filters by modified_after, orders, pages, and records requests."""

    def __init__(self) -> None:
        """The recorded posts, no failure, no requests yet."""
        self.posts = _posts()
        self.requests: list[dict[str, str]] = []
        self.user_agents: list[str] = []
        self.fail: str | None = None  # "500", "slow", "bad-json", "not-a-list"
        self.fail_page = 1
        self.after_page: Callable[[int], None] | None = None
        self.release = threading.Event()
        self.url = ""

    def edit(self, post_id: int, modified_gmt: str, **fields: Any) -> None:
        """Change a post as an editor saving it would (which moves its modified_gmt)."""
        post = next(post for post in self.posts if post["id"] == post_id)
        post.update(fields, modified_gmt=modified_gmt)

    def modified_requests(self) -> list[dict[str, str]]:
        """The requests of the incremental (orderby=modified) pass."""
        return [request for request in self.requests if request.get("orderby") == "modified"]

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one GET."""
        parts = urlsplit(path)
        params = dict(parse_qsl(parts.query))
        if parts.path != "/wp-json/wp/v2/posts":
            return _json(404, {"code": "rest_no_route", "message": "No route was found."})
        self.requests.append(params)
        page, per_page = int(params.get("page", "1")), int(params.get("per_page", "10"))
        if self.fail is not None and page == self.fail_page:
            if self.fail == "500":
                return _json(500, _recorded("error-500.json"))
            if self.fail == "slow":
                self.release.wait(5)
            if self.fail == "bad-json":
                return 200, {"Content-Type": "application/json"}, b'[{"id": 101, "title":'
            if self.fail == "not-a-list":
                return _json(200, {"id": 101, "title": {"rendered": "One post, not a page"}})
        posts = self._select(params)
        pages = math.ceil(len(posts) / per_page)
        if page > max(pages, 1):
            return _json(400, {"code": "rest_post_invalid_page_number", "message": "..."})
        chosen = posts[(page - 1) * per_page : page * per_page]
        status, headers, body = _json(200, chosen)
        headers.update({"X-WP-Total": str(len(posts)), "X-WP-TotalPages": str(pages)})
        if self.after_page is not None:  # before the answer leaves, so no request overtakes it
            self.after_page(page)
        return status, headers, body

    def _select(self, params: dict[str, str]) -> list[dict[str, Any]]:
        posts = copy.deepcopy(self.posts)
        if params.get("orderby") == "date":
            return sorted(
                posts, key=lambda post: post["date_gmt"], reverse=params["order"] == "desc"
            )
        if "modified_after" in params:
            after = datetime.fromisoformat(params["modified_after"])
            posts = [post for post in posts if _utc(post["modified_gmt"]) > after]
        return sorted(posts, key=lambda post: (post["modified_gmt"], post["id"]))


def _utc(gmt: str) -> datetime:
    return datetime.fromisoformat(gmt + "+00:00")


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: FakeWordPress

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the timeout test) is expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        site = self.server.site
        site.user_agents.append(self.headers.get("User-Agent", ""))
        status, headers, body = site.answer(self.path)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's standard error."""


@pytest.fixture
def wordpress() -> Iterator[FakeWordPress]:
    """A fake WordPress site on a free loopback port."""
    site = FakeWordPress()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.site = site
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield site
    site.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def _settings(url: str, timeout: float = 5) -> WordPressSettings:
    return WordPressSettings(url=AnyHttpUrl(url), per_page=2, timeout=timeout)


def _poll(engine: Engine, site: FakeWordPress, timeout: float = 5) -> SourceReport:
    return poll_wordpress(engine, _settings(site.url, timeout), LANGUAGES)


def _cursor(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(state.c.value).where(state.c.name == CURSOR_STATE))


def _titles(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return {
            cms_id: title
            for cms_id, title in connection.execute(select(article.c.cms_id, article.c.title))
        }


# -- mapping a post ----------------------------------------------------------------------


def test_post_becomes_an_article_record() -> None:
    """Title and excerpt are plain text, *_gmt times get +00:00, terms become section/topics/tags."""
    record = article_record(_posts()[0], VOCABULARY)
    assert record == {
        "type": "article",
        "id": "wp-101",
        "url": "https://wp.example/en/2025/08/20/iraqs-pmf-and-the-us-withdrawal/",
        "title": "Iraq’s PMF & the US withdrawal",
        "summary": "Baghdad’s government says the drawdown is on schedule & analysts doubt it…",
        "body_html": _posts()[0]["content"]["rendered"],
        "published_at": "2025-08-20T09:30:00+00:00",
        "updated_at": "2025-08-20T11:02:10+00:00",
        "status": "published",
        "language": "en",
        "section": "analysis",
        "authors": ["Sara Ahmadi"],
        "tags": ["Iraq", "PMF", "US & Allies"],
        "topics": ["resistance"],
        "image": {
            "url": "https://wp.example/wp-content/uploads/2025/08/pmf.jpg",
            "type": "image/jpeg",
            "length": 48213,
            "caption": "Fighters near “Camp Taji”, north of Baghdad",
            "width": 1200,
            "height": 675,
        },
    }


def test_polylang_language_wins_and_topics_match_that_language() -> None:
    """An Arabic post is Arabic; an image without a recorded file size has length 0."""
    record = article_record(_posts()[1], VOCABULARY)
    assert record["language"] == "ar"
    assert record["title"] == "العراق: الحشد الشعبي “جاهز” للانسحاب"
    assert record["section"] == "news"
    assert record["topics"] == []
    assert record["image"] == {
        "url": "https://wp.example/wp-content/uploads/2025/08/baghdad.webp",
        "type": "image/webp",
        "length": 0,
        "caption": "",
        "width": 1600,
        "height": 900,
    }


def test_more_link_is_not_part_of_the_summary_and_forbidden_media_is_no_image() -> None:
    """A theme's "Continue reading" link is dropped; an embedded error object is not an image."""
    record = article_record(_posts()[2], VOCABULARY)
    assert record["summary"] == "Allies met in Brussels."
    assert record["title"] == "NATO summit: “Burden sharing” – a report"
    assert record["section"] == "report"
    assert "image" not in record


@pytest.mark.parametrize(
    ("wordpress_status", "status"),
    [
        ("publish", "published"),
        ("future", "published"),
        ("draft", "draft"),
        ("pending", "draft"),
        ("private", "draft"),
        ("trash", "retracted"),
        ("some-plugin-status", "draft"),
    ],
)
def test_statuses(wordpress_status: str, status: str) -> None:
    """WordPress statuses map onto published, draft and retracted."""
    post = {**_posts()[0], "status": wordpress_status}
    assert article_record(post, VOCABULARY)["status"] == status


def test_a_draft_without_a_date_takes_its_modification_time() -> None:
    """A never-dated draft still has a published_at (it is never shown)."""
    post = {**_posts()[0], "status": "draft", "date_gmt": None}
    assert article_record(post, VOCABULARY)["published_at"] == "2025-08-20T11:02:10+00:00"


# -- polling a site ----------------------------------------------------------------------


def test_first_poll_follows_pages_and_stores_every_post(
    engine: Engine, wordpress: FakeWordPress
) -> None:
    """Without a cursor every post is read, page after page, and the newest modified_gmt kept."""
    ingest_text(engine, TOPIC)
    report = _poll(engine, wordpress)
    assert (report.read, report.stored, report.rejected) == (3, 3, 0)
    assert [(r["page"], r["per_page"], r["_embed"]) for r in wordpress.requests] == [
        ("1", "2", "1"),
        ("2", "2", "1"),
    ]
    assert all(r["orderby"] == "modified" and r["order"] == "asc" for r in wordpress.requests)
    assert not any("modified_after" in r for r in wordpress.requests)
    assert all(agent.startswith("Syndicate/") for agent in wordpress.user_agents)
    assert _cursor(engine) == "2025-08-20T12:15:00+00:00"
    with engine.connect() as connection:
        rows = {
            row.cms_id: row
            for row in connection.execute(
                select(article.c.cms_id, article.c.title, article.c.language, article.c.section,
                       article.c.published_at, article.c.image)
            )
        }  # fmt: skip
        tags = connection.scalars(
            select(tag.c.name)
            .join(article_tag, article_tag.c.tag_pk == tag.c.pk)
            .join(article, article.c.pk == article_tag.c.article_pk)
            .where(article.c.cms_id == "wp-101")
        ).all()
        topics = connection.scalars(
            select(topic.c.slug)
            .join(article_topic, article_topic.c.topic_pk == topic.c.pk)
            .join(article, article.c.pk == article_topic.c.article_pk)
            .where(article.c.cms_id == "wp-101")
        ).all()
    assert rows["wp-101"].title == "Iraq’s PMF & the US withdrawal"
    assert rows["wp-101"].published_at.isoformat() == "2025-08-20T09:30:00+00:00"
    assert rows["wp-101"].image["length"] == 48213
    assert (rows["wp-102"].language, rows["wp-102"].section) == ("ar", "news")
    assert rows["wp-103"].section == "report"
    assert sorted(tags) == ["Iraq", "PMF", "US & Allies"]
    assert topics == ["resistance"]


def test_next_poll_asks_for_posts_modified_after_the_stored_cursor(
    engine: Engine, wordpress: FakeWordPress
) -> None:
    """The second poll sends modified_after equal to the cursor, and stores just the edit."""
    _poll(engine, wordpress)
    cursor = _cursor(engine)
    wordpress.requests.clear()
    wordpress.edit(101, "2025-08-20T13:00:00", title={"rendered": "Iraq&#8217;s PMF, updated"})
    report = _poll(engine, wordpress)
    assert [r["modified_after"] for r in wordpress.modified_requests()] == [cursor]
    assert (report.read, report.stored) == (1, 1)
    assert _titles(engine)["wp-101"] == "Iraq’s PMF, updated"
    assert _cursor(engine) == "2025-08-20T13:00:00+00:00"
    assert read_cursor(engine, wordpress.url) == datetime.fromisoformat("2025-08-20T13:00:00+00:00")


def test_nothing_new_changes_nothing(engine: Engine, wordpress: FakeWordPress) -> None:
    """A poll with no modified post stores nothing and keeps the cursor."""
    _poll(engine, wordpress)
    report = _poll(engine, wordpress)
    assert (report.read, report.stored) == (0, 0)
    assert _cursor(engine) == "2025-08-20T12:15:00+00:00"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("500", "HTTP 500 for page 2 of http://127.0.0.1:"),
        ("slow", "timed out after 0.3 s waiting for page 2"),
        ("bad-json", "/wp-json/wp/v2/posts is not valid JSON"),
        ("not-a-list", "is not a list of posts but a JSON object"),
    ],
)
def test_a_failed_page_stores_nothing_and_keeps_the_cursor(
    engine: Engine, wordpress: FakeWordPress, failure: str, reason: str
) -> None:
    """Page 1 arrived, page 2 failed: page 1's posts are not stored and the cursor stays."""
    _poll(engine, wordpress)
    before, cursor = _titles(engine), _cursor(engine)
    for number, minute in ((101, "01"), (102, "02"), (103, "03")):
        wordpress.edit(number, f"2025-08-20T14:{minute}:00", title={"rendered": f"Edited {number}"})
    wordpress.fail, wordpress.fail_page = failure, 2
    with pytest.raises(SourceError) as raised:
        _poll(engine, wordpress, timeout=0.3)
    assert raised.value.source == "wordpress"
    assert reason in raised.value.reason
    assert str(raised.value).startswith("wordpress: ")
    assert _titles(engine) == before
    assert _cursor(engine) == cursor
    wordpress.fail = None
    assert _poll(engine, wordpress).stored == 3


def test_wordpress_error_message_is_part_of_the_reason(
    engine: Engine, wordpress: FakeWordPress
) -> None:
    """An HTTP error names WordPress's own code and message, as plain text."""
    wordpress.fail = "500"
    with pytest.raises(SourceError, match="internal_server_error: There has been a critical error"):
        _poll(engine, wordpress)
    assert _cursor(engine) is None


def test_connection_refused_is_a_clear_error(engine: Engine) -> None:
    """Nothing listening on the port: the reason says the page could not be fetched."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match=r"cannot fetch page 1 of .*Connection refused"):
        poll_wordpress(engine, _settings(f"http://127.0.0.1:{port}"), LANGUAGES)


def test_an_edit_while_paging_does_not_skip_a_post(
    engine: Engine, wordpress: FakeWordPress
) -> None:
    """A post edited between pages moves to the end; the post that moved up is read next time."""

    def edit_after_first_page(page: int) -> None:
        if page == 1:
            wordpress.after_page = None
            wordpress.edit(101, "2025-08-20T13:00:00")

    wordpress.after_page = edit_after_first_page
    _poll(engine, wordpress)
    # Page 2 now starts one place later: wp-103 was skipped, wp-101 read twice.
    assert "wp-103" not in _titles(engine)
    assert _cursor(engine) == "2025-08-20T11:39:59+00:00"  # page 1's newest, minus a second
    _poll(engine, wordpress)
    assert "wp-103" in _titles(engine)
    assert _cursor(engine) == "2025-08-20T13:00:00+00:00"


def test_a_scheduled_post_published_by_wordpress_is_found(
    engine: Engine, wordpress: FakeWordPress
) -> None:
    """WordPress publishes a scheduled post without touching modified_gmt; the date sweep finds it."""
    _poll(engine, wordpress)
    wordpress.posts.append(_recorded("scheduled-post.json"))
    report = _poll(engine, wordpress)
    assert (report.read, report.stored) == (1, 1)
    assert "wp-104" in _titles(engine)
    assert _cursor(engine) == "2025-08-20T12:15:00+00:00"
    sweep = [r for r in wordpress.requests if r.get("orderby") == "date"]
    assert sweep[-1] == {
        "_embed": "1",
        "per_page": "2",
        "page": "1",
        "orderby": "date",
        "order": "desc",
    }
    assert _poll(engine, wordpress).read == 0  # stored now: not read again


def test_a_rejected_post_is_named_and_the_others_stored(
    engine: Engine, wordpress: FakeWordPress, caplog: pytest.LogCaptureFixture
) -> None:
    """A post in a language the site does not have is rejected by id; the poll still succeeds."""
    german = {**_posts()[2], "id": 105, "lang": "de", "modified_gmt": "2025-08-20T12:30:00"}
    wordpress.posts.append(german)
    with caplog.at_level(logging.WARNING, logger="syndicate.sources"):
        report = _poll(engine, wordpress)
    assert (report.stored, report.rejected) == (3, 1)
    assert "source rejected source=wordpress post=wp-105" in caplog.text
    assert "'de' is not one of en, ar, fa" in caplog.text
    assert _cursor(engine) == "2025-08-20T12:30:00+00:00"  # it will not get better by rereading


def test_a_cursor_belongs_to_its_site(engine: Engine) -> None:
    """Pointing Syndicate at another WordPress site starts from the beginning."""
    save_cursor(engine, "https://old.example", datetime.fromisoformat("2025-08-20T12:00:00+00:00"))
    assert read_cursor(engine, "https://old.example") is not None
    assert read_cursor(engine, "https://new.example") is None


# -- the scheduler's entry point ---------------------------------------------------------


def _sample(name: str, labels: dict[str, str]) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_poll_sources_reports_a_failing_site_and_still_reads_the_inbox(
    engine: Engine, wordpress: FakeWordPress, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """WordPress answering 500 is reported (log line, counter), never raised; the inbox is read."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(
        '{"type": "article", "id": "cms-1", "url": "https://site.example/1", "title": "T", '
        '"published_at": "2025-08-20T09:30:00Z", "status": "published", "language": "en"}\n',
        encoding="utf-8",
    )
    settings = Settings(
        sources=SourceSettings(
            inbox_dir=inbox, settle_seconds=0, wordpress=_settings(wordpress.url)
        )
    )
    failures = _sample("syndicate_source_failures_total", {"source": "wordpress"})
    accepted = _sample("syndicate_ingest_records_total", {"source": "inbox", "outcome": "accepted"})
    wordpress.fail = "500"
    with caplog.at_level(logging.INFO, logger="syndicate.sources"):
        report = poll_sources(engine, settings)
    assert report.failed
    assert report.changed
    assert report["inbox"].stored == 1
    assert (inbox / "processed" / "a.jsonl").exists()
    assert "HTTP 500" in report.errors["wordpress"]
    assert "wordpress: 0 posts read" in report.summary()
    assert '"' not in report.summary()
    assert 'source failed source=wordpress error="HTTP 500 for page 1' in caplog.text
    assert _sample("syndicate_source_failures_total", {"source": "wordpress"}) == failures + 1
    assert (
        _sample("syndicate_ingest_records_total", {"source": "inbox", "outcome": "accepted"})
        == accepted + 1
    )


def test_poll_sources_reads_wordpress_when_configured(
    engine: Engine, wordpress: FakeWordPress, tmp_path: Path
) -> None:
    """With a url set, the report has both sources, and `changed` says feeds need a build."""
    settings = Settings(
        sources=SourceSettings(inbox_dir=tmp_path / "inbox", wordpress=_settings(wordpress.url))
    )
    report = poll_sources(engine, settings)
    assert [source.source for source in report.sources] == ["inbox", "wordpress"]
    assert not report.failed
    assert report.changed
    assert report["wordpress"].stored == 3
    assert not poll_sources(engine, settings).changed


def test_poll_sources_holds_wordpress_posts_to_the_ingest_limits(
    engine: Engine, wordpress: FakeWordPress, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`[ingest]` limits bind WordPress posts as they bind files: an over-long title is refused."""
    settings = Settings(
        sources=SourceSettings(inbox_dir=tmp_path / "inbox", wordpress=_settings(wordpress.url)),
        ingest=IngestSettings(max_title_chars=10),
    )
    with caplog.at_level(logging.WARNING, logger="syndicate.sources"):
        report = poll_sources(engine, settings)
    assert report["wordpress"].stored < 3
    assert report["wordpress"].rejected >= 1
    assert "([ingest] max_title_chars)" in caplog.text
