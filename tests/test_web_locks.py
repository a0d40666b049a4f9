"""The site under a busy SQLite store: a request that cannot write in time gets a 503, never a 500.

A real uvicorn server on a loopback port serves the site as `syndicate serve` wires it; another
connection holds the store's write lock (BEGIN IMMEDIATE) for as long as a test says.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, event, insert
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from syndicate.store import open_database
from syndicate.store.database import with_lock_timeout
from syndicate.store.schema import topic
from syndicate.subscribers import registry
from syndicate.subscribers.links import SubscriptionLinks
from syndicate.subscribers.registry import Choices, Preferences, Subscriber
from syndicate.subscribers.tokens import Tokens
from syndicate.web.app import create_app
from syndicate.web.site import create_site
from tests.support.cli import start_process
from tests.support.newsroom import Newsroom
from tests.support.ports import free_port
from tests.support.sites import SECRET, site_settings
from tests.support.smtp_server import Serve
from tests.support.sqlite_lock import LockHolder
from tests.support.waiting import wait_for
from tests.support.web_server import serve_in_thread

CHOICES = Choices(("en", "ar", "fa"), ("daily", "weekly", "monthly"))
# What the busy page says, in each language.
BUSY_TITLES = {
    "en": "Please try again in a moment",
    "ar": "يُرجى المحاولة مرة أخرى بعد قليل",
    "fa": "لطفاً کمی بعد دوباره تلاش کنید",
}
WAIT = 60.0  # seconds any one step may take on a loaded machine before the test fails


@dataclass
class BusySite:
    """The site on a loopback port, its store, and a connection that can lock the store."""

    url: str
    engine: Engine
    lock: LockHolder
    links: SubscriptionLinks
    writes_begun: threading.Event  # set whenever a write transaction asks for the lock

    def client(self) -> httpx.Client:
        """A client that keeps cookies, like a browser."""
        return httpx.Client(base_url=self.url, timeout=WAIT)


SiteFactory = Callable[..., BusySite]


@pytest.fixture
def busy_site(tmp_path: Path) -> Iterator[SiteFactory]:
    """Start the site with a given [web] lock_timeout (once per test)."""
    stops: list[Callable[[], None]] = []

    def start_site(lock_timeout: float, folder: Path = tmp_path) -> BusySite:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = site_settings(
            folder,
            f"{url}/",
            site={"title": "Demo News"},
            web={"lock_timeout": lock_timeout},
            subscribers={"subscribe_per_hour": 100_000},
        )
        engine = open_database(settings.database.url)
        begun = threading.Event()

        def asking(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement == "BEGIN IMMEDIATE":
                begun.set()

        event.listen(engine, "before_cursor_execute", asking)
        serving = serve_in_thread(create_site(engine, settings), port)
        next(serving)
        lock = LockHolder(folder / "store.db")

        def stop() -> None:
            lock.close()
            next(serving, None)
            engine.dispose()

        stops.append(stop)
        return BusySite(url, engine, lock, SubscriptionLinks(Tokens(SECRET), url), begun)

    yield start_site
    for stop in stops:
        stop()


def csrf(html: str) -> str:
    """The CSRF token of the page's form."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a CSRF field"
    return found.group(1)


def subscribe_form(browser: httpx.Client, email: str, language: str) -> dict[str, Any]:
    """The subscribe form filled in, with the browser's CSRF token."""
    page = browser.get(f"/subscribe/?lang={language}")
    assert page.status_code == 200
    return {
        "csrf": csrf(page.text),
        "lang": language,
        "email": email,
        "name": "",
        "language": language,
        "digests": ["daily"],
    }


def path_of(url: str) -> str:
    """The path and query of a link, for a client with a base URL."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def assert_busy_page(answer: httpx.Response, language: str) -> None:
    """A 503 a person can read, in their language, saying when to try again."""
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<html lang="{language}"' in answer.text
    assert BUSY_TITLES[language] in answer.text
    assert "Traceback" not in answer.text
    assert "database is locked" not in answer.text


@pytest.mark.parametrize("language", ["en", "ar", "fa"])
def test_a_subscribe_that_cannot_write_in_time_gets_a_503_and_stores_nothing(
    busy_site: SiteFactory, language: str, caplog: pytest.LogCaptureFixture
) -> None:
    """While another process holds the write lock past [web] lock_timeout: 503, Retry-After."""
    site = busy_site(lock_timeout=0.2)
    caplog.set_level(logging.WARNING)
    with site.client() as browser:
        form = subscribe_form(browser, "reader@example.org", language)
        site.lock.hold()
        try:
            answer = browser.post("/subscribe/", data=form)
        finally:
            site.lock.release()
        assert_busy_page(answer, language)
        assert any("database busy" in record.getMessage() for record in caplog.records)
        assert registry.find_by_email(site.engine, "reader@example.org") is None
        again = browser.post("/subscribe/", data=form)
    assert again.status_code == 200
    stored = registry.find_by_email(site.engine, "reader@example.org")
    assert stored is not None
    assert stored.status == "pending"


def test_a_subscribe_waits_for_a_lock_released_within_the_bound(busy_site: SiteFactory) -> None:
    """A request that finds the store locked waits its turn and succeeds once the lock is free."""
    site = busy_site(lock_timeout=WAIT)
    with site.client() as browser, ThreadPoolExecutor(1) as pool:
        form = subscribe_form(browser, "patient@example.org", "en")
        site.lock.hold()
        try:
            site.writes_begun.clear()
            answer = pool.submit(browser.post, "/subscribe/", data=form)
            assert site.writes_begun.wait(WAIT), "the request never asked for the lock"
            assert not answer.done(), "the request wrote while another held the lock"
        finally:
            site.lock.release()
        assert answer.result(timeout=WAIT).status_code == 200
    stored = registry.find_by_email(site.engine, "patient@example.org")
    assert stored is not None
    assert stored.status == "pending"


def _pending(site: BusySite, email: str, language: str) -> Subscriber:
    made = registry.subscribe(site.engine, email, Preferences(language, ("daily",)), CHOICES)
    assert made is not None
    found = registry.find(site.engine, made.pk)
    assert found is not None
    return found


def _confirmed(site: BusySite, email: str, language: str) -> Subscriber:
    confirmed = registry.confirm(site.engine, _pending(site, email, language).pk)
    assert confirmed is not None
    return confirmed


def _confirm(
    site: BusySite, browser: httpx.Client, language: str, email: str
) -> Callable[[], httpx.Response]:
    holder = _pending(site, email, language)
    link = path_of(site.links.confirm(holder.pk, holder.email, language))
    return lambda: browser.get(link)


def _preferences(
    site: BusySite, browser: httpx.Client, language: str, email: str
) -> Callable[[], httpx.Response]:
    holder = _confirmed(site, email, language)
    link = path_of(site.links.preferences(holder.pk, holder.email, language))
    page = browser.get(link)  # a page that only reads: never held up by a writer
    data = {"csrf": csrf(page.text), "name": "Leila", "language": language, "digests": ["weekly"]}
    return lambda: browser.post(link, data=data)


def _unsubscribe(
    site: BusySite, browser: httpx.Client, language: str, email: str
) -> Callable[[], httpx.Response]:
    holder = _confirmed(site, email, language)
    link = path_of(site.links.unsubscribe(holder.pk, holder.email, language))
    page = browser.get(link)
    return lambda: browser.post(link, data={"csrf": csrf(page.text)})


def _one_click(
    site: BusySite, browser: httpx.Client, language: str, email: str
) -> Callable[[], httpx.Response]:
    holder = _confirmed(site, email, language)
    link = path_of(site.links.unsubscribe(holder.pk, holder.email, language))
    return lambda: browser.post(link, data={"List-Unsubscribe": "One-Click"})


# Each page that reads a subscriber, then writes: what it changes once it can.
READ_THEN_WRITE: dict[str, tuple[Any, Callable[[Subscriber], object]]] = {
    "confirm": (_confirm, lambda found: found.status == "confirmed"),
    "preferences": (_preferences, lambda found: found.digests == ("weekly",)),
    "unsubscribe": (_unsubscribe, lambda found: found.status == "unsubscribed"),
    "one-click": (_one_click, lambda found: found.status == "unsubscribed"),
}


@pytest.mark.parametrize("page", list(READ_THEN_WRITE))
@pytest.mark.parametrize("language", ["en", "fa"])
def test_token_pages_that_cannot_write_get_a_503_and_change_nothing(
    busy_site: SiteFactory, page: str, language: str
) -> None:
    """Confirm, preferences and unsubscribe: 503 in the link's language, then done on retry."""
    site = busy_site(lock_timeout=0.2)
    prepare, changed = READ_THEN_WRITE[page]
    with site.client() as browser:
        email = f"{page}-{language}@example.org"
        act = prepare(site, browser, language, email)
        before = registry.find_by_email(site.engine, email)
        site.lock.hold()
        try:
            answer = act()
        finally:
            site.lock.release()
        assert_busy_page(answer, language)
        assert registry.find_by_email(site.engine, email) == before, "the 503 changed something"
        assert act().status_code == 200
    after = registry.find_by_email(site.engine, email)
    assert after is not None
    assert changed(after)


def test_any_route_of_the_site_that_cannot_write_gets_a_503(tmp_path: Path) -> None:
    """A route added to the site later (a webhook, say) gets the same 503 page, not a 500."""
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    writer = with_lock_timeout(engine, 0.2)

    def add_topic() -> None:
        with writer.begin() as connection:
            connection.execute(insert(topic).values(slug="nato"))

    async def write(request: Request) -> Response:
        await run_in_threadpool(add_topic)
        return PlainTextResponse("written")

    port = free_port()
    app = create_app(
        tmp_path / "feeds",
        routes=[Route("/ar/write", write, methods=["POST"])],
        public_url=f"http://127.0.0.1:{port}/",
        languages=("en", "ar", "fa"),
    )
    lock = LockHolder(tmp_path / "store.db")
    try:
        for url in serve_in_thread(app, port):
            lock.hold()
            try:
                answer = httpx.post(f"{url}/ar/write", timeout=WAIT)
            finally:
                lock.release()
            assert_busy_page(answer, "ar")
            assert httpx.post(f"{url}/ar/write", timeout=WAIT).text == "written"
    finally:
        lock.close()
        engine.dispose()


POSTERS = 4
POSTS_EACH = 40
NO_ANSWER = 0  # the connection failed without an HTTP answer


def test_subscribes_during_an_ingest_and_a_send_never_get_a_500(
    tmp_path: Path, serve: Serve, busy_site: SiteFactory
) -> None:
    """While `syndicate ingest` and `syndicate digest send` write, every subscribe POST answers.

    Each one either succeeded (200) or was told to come back (503); none failed with a 500.
    """
    smtp, smtp_settings = serve()
    room = Newsroom(tmp_path, smtp_settings.port, 1000)
    site = busy_site(lock_timeout=5.0, folder=tmp_path)
    views = _views_file(tmp_path, room)
    smtp.delay = 0.02  # the send lasts while the POSTs arrive; lifted once they are done
    sending = start_process("digest", "send", room.edition, cwd=tmp_path, env=room.env)
    posting_done = threading.Event()
    ingests: list[int] = []
    ingesting = threading.Thread(
        target=_ingest_until, args=(room, views, posting_done, ingests), daemon=True
    )
    ingesting.start()
    wait_for(lambda: smtp.received or sending.poll() is not None, WAIT, "the send to start")
    statuses: Counter[int] = Counter()
    while_sending = 0
    try:
        with ThreadPoolExecutor(POSTERS) as pool:
            batches = [
                pool.submit(_post_many, site, f"p{n}", sending, time.monotonic() + 4 * WAIT)
                for n in range(POSTERS)
            ]
            for batch in batches:
                answers, overlapped = batch.result()
                statuses.update(answers)
                while_sending += overlapped
    finally:
        posting_done.set()
        smtp.delay = 0
        ingesting.join(timeout=4 * WAIT)
        _, errors = sending.communicate(timeout=4 * WAIT)
    assert sending.returncode == 0, errors
    assert ingests, "no ingest ran"
    assert set(ingests) <= {0}, f"ingest exit codes {ingests}"
    assert while_sending, "no POST was answered while the send ran"
    assert statuses[500] == 0, f"answers: {dict(statuses)}"
    assert set(statuses) <= {200, 503}, f"answers: {dict(statuses)}"
    assert statuses.total() == POSTERS * POSTS_EACH


def _views_file(folder: Path, room: Newsroom) -> Path:
    """A JSON Lines file of view counts for every demo article: an ingest that writes a lot."""
    ids = [
        record["id"]
        for line in (folder / "corpus.jsonl").read_text().splitlines()
        if (record := json.loads(line))["type"] == "article"
    ]
    lines = [
        json.dumps(
            {
                "type": "views",
                "article_id": cms_id,
                "hour": f"2026-11-2{day}T{hour:02d}:00:00Z",
                "count": day * hour + 1,
            }
        )
        for cms_id in ids
        for day in (0, 1)
        for hour in range(0, 24, 2)
    ]
    views = folder / "views.jsonl"
    views.write_text("\n".join(lines) + "\n")
    return views


def _ingest_until(room: Newsroom, views: Path, done: threading.Event, codes: list[int]) -> None:
    """Ingest `views` again and again (each run rewrites every count) until `done`."""
    while not done.is_set():
        ingest = start_process("ingest", str(views), cwd=room.folder, env=room.env)
        ingest.communicate(timeout=4 * WAIT)
        codes.append(ingest.returncode)


def _post_many(
    site: BusySite, name: str, sending: subprocess.Popen[str], deadline: float
) -> tuple[list[int], int]:
    """POSTS_EACH subscribes from one browser: their statuses, how many ended during the send."""
    statuses: list[int] = []
    overlapped = 0
    with site.client() as browser:
        form = subscribe_form(browser, f"{name}-0@example.org", "en")
        for number in range(POSTS_EACH):
            assert time.monotonic() < deadline, "the POSTs took too long"
            form["email"] = f"{name}-{number}@example.org"
            try:
                statuses.append(browser.post("/subscribe/", data=form).status_code)
            except httpx.TransportError:
                statuses.append(NO_ANSWER)
            overlapped += sending.poll() is None
    return statuses, overlapped
