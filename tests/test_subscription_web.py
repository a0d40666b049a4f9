"""The subscription pages as readers and mail clients use them, on a real uvicorn server."""

from __future__ import annotations

import itertools
import re
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, delete
from starlette.applications import Starlette
from starlette.routing import Mount

from syndicate.delivery.message import build_message
from syndicate.send.confirmation import confirmation_message
from syndicate.settings import (
    Settings,
)
from syndicate.store.schema import attempt, subscriber
from syndicate.subscribers import registry
from syndicate.subscribers.links import ConfirmationRequest, SubscriptionLinks
from syndicate.subscribers.registry import Preferences, Subscriber
from syndicate.subscribers.tokens import Purpose, Tokens
from syndicate.web.subscriptions.app import create_subscription_app
from tests.support.fixture_corpus import ingest_text
from tests.support.letters import CONFIRMATION_HEADERS, LETTER
from tests.support.letters import HEADERS as LETTER_HEADERS
from tests.support.mail_reader import read_back, shown_name
from tests.support.ports import free_port
from tests.support.sites import SECRET, site_settings
from tests.support.subscribers import CHOICES, confirmed
from tests.support.waiting import PATIENCE, wait_for
from tests.support.web_server import RequestsInFlight, serve_in_thread

SUBSCRIBE_PER_HOUR = 6
TOPICS = "\n".join(
    [
        '{"type": "topic", "slug": "kurds", "name": "Kurds", "language": "en", "description": "."}',
        '{"type": "topic", "slug": "kurds", "name": "الأكراد", "language": "ar", "description": "."}',
        '{"type": "topic", "slug": "nato", "name": "NATO", "language": "en", "description": "."}',
        '{"type": "topic", "slug": "nato", "name": "الناتو", "language": "ar", "description": "."}',
    ]
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class RecordedConfirmations:
    """The mail side's test double: records each confirmation request instead of mailing it."""

    def __init__(self) -> None:
        """Start with nothing recorded and sending not held back."""
        self.requests: list[ConfirmationRequest] = []
        self.released = threading.Event()
        self.released.set()

    def __call__(self, request: ConfirmationRequest) -> None:
        """Record one request (after `released` is set, to imitate a slow mail server)."""
        self.released.wait(timeout=10)
        self.requests.append(request)

    def wait_for(self, count: int) -> list[ConfirmationRequest]:
        """The requests once `count` have arrived (they are sent after the page is answered)."""
        wait_for(lambda: len(self.requests) >= count, PATIENCE, f"{count} confirmations")
        return self.requests


@dataclass
class Site:
    """A running subscription app: its address, its store, and what it asked to mail."""

    url: str
    engine: Engine
    mail: RecordedConfirmations
    requests: RequestsInFlight
    links: SubscriptionLinks = field(init=False)

    def __post_init__(self) -> None:
        """Mint links as delivery would."""
        self.links = SubscriptionLinks(Tokens(SECRET), self.url)

    def idle(self) -> None:
        """Wait until every answered request is done, its confirmation mail (if any) included."""
        self.requests.wait_idle()


@pytest.fixture
def site(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Site]:
    """The subscription app mounted at /subscribe as the server mounts it, on a loopback port."""
    site = {"title": "Demo News", "titles": {"ar": "أخبار تجريبية"}}
    for url, mail, requests in _served(sqlite_engine, tmp_path, SUBSCRIBE_PER_HOUR, site):
        try:
            yield Site(url, sqlite_engine, mail, requests)
        finally:
            mail.released.set()


def _served(
    engine: Engine, folder: Path, per_hour: int, site: dict[str, Any] | None = None
) -> Iterator[tuple[str, RecordedConfirmations, RequestsInFlight]]:
    """The subscription app mounted at /subscribe as the server mounts it, on a loopback port."""
    ingest_text(engine, TOPICS)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = site_settings(
        folder, f"{url}/", site=site or {}, subscribers={"subscribe_per_hour": per_hour}
    )
    mail = RecordedConfirmations()
    app = create_subscription_app(
        engine,
        site=settings.site,
        web=settings.web,
        subscribers=settings.subscribers,
        digests=settings.digests,
        secret_key=settings.security.secret_key.get_secret_value(),
        send_confirmation=mail,
    )
    requests = RequestsInFlight(Starlette(routes=[Mount("/subscribe", app=app)]))
    for _ in serve_in_thread(requests, port):
        yield url, mail, requests


@pytest.fixture
def browser(site: Site) -> Iterator[httpx.Client]:
    """A client that keeps cookies, like a browser."""
    with httpx.Client(base_url=site.url) as client:
        yield client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a CSRF field"
    return found.group(1)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _link(html: str, label: str) -> str:
    found = re.search(r'href="([^"]+)"[^>]*>' + re.escape(label) + "<", html)
    assert found, f"the page links {label!r}"
    return _path(found.group(1).replace("&amp;", "&"))


def _subscribe(
    browser: httpx.Client,
    email: str,
    *,
    language: str = "en",
    digests: tuple[str, ...] = ("daily",),
) -> httpx.Response:
    form = browser.get(f"/subscribe/?lang={language}")
    data = {
        "csrf": _csrf(form.text),
        "lang": language,
        "email": email,
        "name": "",
        "language": language,
        "digests": list(digests),
    }
    return browser.post("/subscribe/", data=data)


def _confirmed(site: Site, email: str) -> Subscriber:
    return confirmed(site.engine, email)


def _stored(site: Site, email: str) -> Subscriber | None:
    return registry.find_by_email(site.engine, email)


def _is_human_page(response: httpx.Response, language: str = "en") -> None:
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<html lang="{language}"' in response.text
    assert "<h1>" in response.text


def test_subscribe_confirm_preferences_unsubscribe(site: Site, browser: httpx.Client) -> None:
    """A reader subscribes, confirms from the mail, changes preferences and unsubscribes."""
    answer = _subscribe(browser, " Reader@Example.com")
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    (confirmation,) = site.mail.wait_for(1)
    assert confirmation.email == "reader@example.com"
    assert confirmation.language == "en"
    assert confirmation.confirm_url.startswith(f"{site.url}/subscribe/confirm?token=")
    stored = _stored(site, "reader@example.com")
    assert stored is not None
    assert stored.status == "pending"

    confirmed = browser.get(_path(confirmation.confirm_url))
    assert confirmed.status_code == 200
    assert "Subscription confirmed" in confirmed.text
    stored = _stored(site, "reader@example.com")
    assert stored is not None
    assert stored.status == "confirmed"

    preferences = browser.get(_link(confirmed.text, "Manage your preferences"))
    assert preferences.status_code == 200
    assert "reader@example.com" in preferences.text
    saved = browser.post(
        _link(confirmed.text, "Manage your preferences"),
        data={
            "csrf": _csrf(preferences.text),
            "name": "Leila",
            "language": "ar",
            "digests": ["weekly", "monthly"],
            "topics": ["kurds"],
        },
    )
    assert saved.status_code == 200
    assert '<html lang="ar" dir="rtl">' in saved.text, "the page follows the new language"
    assert "الأكراد" in saved.text, "topics are named in the page's language"
    stored = _stored(site, "reader@example.com")
    assert stored is not None
    assert (stored.name, stored.language, stored.digests, stored.topics) == (
        "Leila",
        "ar",
        ("weekly", "monthly"),
        ("kurds",),
    )

    leave = re.search(r'<a href="([^"]+/subscribe/unsubscribe\?[^"]+)"', saved.text)
    assert leave
    page = browser.get(_path(leave.group(1).replace("&amp;", "&")))
    assert page.status_code == 200
    assert _stored(site, "reader@example.com").status == "confirmed"  # type: ignore[union-attr]
    done = browser.post(
        _path(leave.group(1).replace("&amp;", "&")), data={"csrf": _csrf(page.text)}
    )
    assert done.status_code == 200
    assert '<html lang="ar"' in done.text
    assert _stored(site, "reader@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert registry.is_suppressed(site.engine, "reader@example.com")


def test_one_click_unsubscribe_per_rfc_8058(site: Site) -> None:
    """A mail client's one-click POST, with no cookie and no CSRF token, unsubscribes."""
    person = _confirmed(site, "reader@example.com")
    url = site.links.unsubscribe(person.pk, person.email, person.language)
    response = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert registry.suppression_reason(site.engine, "reader@example.com") == "unsubscribed"
    multipart = httpx.post(
        site.links.unsubscribe(person.pk, person.email, "en"),
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert multipart.status_code == 200, "RFC 8058 allows multipart/form-data too"


def test_following_an_unsubscribe_link_changes_nothing(site: Site) -> None:
    """Link scanners that GET an unsubscribe link do not unsubscribe anyone."""
    person = _confirmed(site, "reader@example.com")
    page = httpx.get(site.links.unsubscribe(person.pk, person.email, "en"))
    assert page.status_code == 200
    assert '<button type="submit">Unsubscribe</button>' in page.text
    assert _stored(site, "reader@example.com").status == "confirmed"  # type: ignore[union-attr]


def test_forms_without_a_matching_csrf_token_are_refused(site: Site, browser: httpx.Client) -> None:
    """A cross-site post gets 403 and a page saying what to do; nothing is stored or mailed."""
    browser.get("/subscribe/")
    forged = browser.post(
        "/subscribe/",
        data={"csrf": "made-up", "email": "x@example.com", "language": "en", "digests": "daily"},
    )
    assert forged.status_code == 403
    _is_human_page(forged)
    assert "reload the page" in forged.text
    no_cookie = httpx.post(
        f"{site.url}/subscribe/",
        data={"email": "x@example.com", "language": "en", "digests": "daily"},
    )
    assert no_cookie.status_code == 403
    assert _stored(site, "x@example.com") is None

    person = _confirmed(site, "reader@example.com")
    preferences = site.links.preferences(person.pk, person.email, "en")
    refused = httpx.post(preferences, data={"language": "fa", "digests": "monthly"})
    assert refused.status_code == 403
    unsubscribe = site.links.unsubscribe(person.pk, person.email, "en")
    assert httpx.post(unsubscribe, data={}).status_code == 403
    stored = _stored(site, "reader@example.com")
    assert stored is not None
    assert (stored.status, stored.language) == ("confirmed", "en")
    site.idle()
    assert site.mail.requests == []


def test_csrf_cookie_is_samesite_lax_and_http_only(browser: httpx.Client) -> None:
    """The CSRF cookie is kept from other sites' posts and from scripts."""
    cookie = browser.get("/subscribe/").headers["set-cookie"].lower()
    assert "samesite=lax" in cookie
    assert "httponly" in cookie
    assert "path=/subscribe" in cookie


def test_subscribing_is_rate_limited_per_client(site: Site, browser: httpx.Client) -> None:
    """Past the hourly limit a client gets 429 and a page saying when to try again."""
    for number in range(SUBSCRIBE_PER_HOUR):
        assert _subscribe(browser, f"reader{number}@example.com").status_code == 200
    limited = _subscribe(browser, "one-more@example.com")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3600"
    _is_human_page(limited)
    assert "Too many" in limited.text
    assert _stored(site, "one-more@example.com") is None


def test_one_address_gets_few_confirmation_mails(site: Site, browser: httpx.Client) -> None:
    """Asking again and again for one address does not flood its owner's inbox."""
    for _ in range(5):
        assert _subscribe(browser, "reader@example.com").status_code == 200
    site.idle()
    assert len(site.mail.requests) == 3


def _tampered(token_url: str) -> str:
    start = token_url.index("token=") + len("token=") + 3
    replacement = "A" if token_url[start] != "A" else "B"
    return token_url[:start] + replacement + token_url[start + 1 :]


@pytest.mark.parametrize(
    ("method", "page", "purpose", "make", "status", "title"),
    [
        ("GET", "confirm", Purpose.CONFIRM, "forged", 400, "This link is not valid"),
        ("GET", "confirm", Purpose.CONFIRM, "tampered", 400, "This link is not valid"),
        ("GET", "confirm", Purpose.CONFIRM, "expired", 410, "This link has expired"),
        ("GET", "confirm", Purpose.UNSUBSCRIBE, "valid", 400, "This link is not valid"),
        ("POST", "unsubscribe", Purpose.UNSUBSCRIBE, "forged", 400, "This link is not valid"),
        ("POST", "unsubscribe", Purpose.UNSUBSCRIBE, "tampered", 400, "This link is not valid"),
        ("POST", "unsubscribe", Purpose.UNSUBSCRIBE, "expired", 410, "This link has expired"),
        ("POST", "unsubscribe", Purpose.PREFERENCES, "valid", 400, "This link is not valid"),
        ("POST", "unsubscribe", Purpose.UNSUBSCRIBE, "missing", 400, "This link is not valid"),
        ("GET", "preferences", Purpose.PREFERENCES, "expired", 410, "This link has expired"),
        ("GET", "preferences", Purpose.CONFIRM, "valid", 400, "This link is not valid"),
    ],
)
def test_bad_tokens_get_a_human_page_and_change_nothing(
    site: Site, method: str, page: str, purpose: Purpose, make: str, status: int, title: str
) -> None:
    """Forged, tampered, expired or wrong-purpose links get a 4xx page and change nothing."""
    pending = registry.subscribe(
        site.engine, "reader@example.com", Preferences("ar", ("daily",)), CHOICES
    )
    assert pending is not None
    issued = {
        "valid": Tokens(SECRET),
        "forged": Tokens("some other key"),
        "tampered": Tokens(SECRET),
        "expired": Tokens(SECRET, clock=lambda: time.time() - 400 * 86400),
    }.get(make, Tokens(SECRET))
    token = issued.mint(purpose, pending.pk, pending.email)
    url = f"{site.url}/subscribe/{page}?token={token}&lang=ar"
    if make == "tampered":
        url = _tampered(url)
    if make == "missing":
        url = f"{site.url}/subscribe/{page}?lang=ar"
    response = httpx.request(
        method,
        url,
        content=b"List-Unsubscribe=One-Click" if method == "POST" else None,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == status
    _is_human_page(response, "ar")
    assert 'dir="rtl"' in response.text
    stored = _stored(site, "reader@example.com")
    assert stored is not None
    assert stored.status == "pending"
    assert not registry.is_suppressed(site.engine, "reader@example.com")
    english = httpx.request(
        method,
        url.replace("lang=ar", "lang=en"),
        content=b"List-Unsubscribe=One-Click" if method == "POST" else None,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert title in english.text


def test_a_link_minted_for_an_earlier_address_is_refused(site: Site) -> None:
    """A token is bound to the address it was sent to, not only to the subscriber's number."""
    person = _confirmed(site, "reader@example.com")
    url = site.links.unsubscribe(person.pk, "previous@example.com", "en")
    assert httpx.post(url, content=b"List-Unsubscribe=One-Click").status_code == 400
    assert not registry.is_suppressed(site.engine, "reader@example.com")


def _answer(response: httpx.Response, email: str) -> tuple[int, str, str]:
    return (
        response.status_code,
        response.headers["content-type"],
        response.text.replace(email, "ADDRESS"),
    )


def test_the_subscribe_answer_never_reveals_membership(site: Site, browser: httpx.Client) -> None:
    """New, pending, confirmed and suppressed addresses all get the very same answer."""
    _confirmed(site, "confirmed@example.com")
    registry.suppress(site.engine, "bounced@example.com", "bounced", "")
    registry.subscribe(site.engine, "pending@example.com", Preferences("en", ("daily",)), CHOICES)
    answers = {
        email: _answer(_subscribe(browser, email), email)
        for email in (
            "new@example.com",
            "pending@example.com",
            "confirmed@example.com",
            "bounced@example.com",
        )
    }
    assert len(set(answers.values())) == 1, answers
    site.idle()
    mailed = {request.email for request in site.mail.requests}
    assert mailed == {"new@example.com", "pending@example.com"}


def test_a_slow_mail_server_does_not_delay_the_answer(site: Site, browser: httpx.Client) -> None:
    """The confirmation mail leaves after the page is answered, so timing tells nothing."""
    site.mail.released.clear()
    answer = _subscribe(browser, "new@example.com")
    assert answer.status_code == 200
    assert site.mail.requests == []
    site.mail.released.set()
    assert len(site.mail.wait_for(1)) == 1


def test_invalid_input_shows_the_form_again_with_the_reason(
    site: Site, browser: httpx.Client
) -> None:
    """A mistyped address or no digest chosen is explained next to the field."""
    wrong = _subscribe(browser, "reader at example.com")
    assert wrong.status_code == 422
    assert 'aria-invalid="true"' in wrong.text
    assert "Enter a valid email address" in wrong.text
    assert 'value="reader at example.com"' in wrong.text
    nothing = _subscribe(browser, "reader@example.com", digests=())
    assert nothing.status_code == 422
    assert "Choose at least one digest." in nothing.text
    assert _stored(site, "reader@example.com") is None


def test_an_expired_confirmation_can_be_replaced_by_subscribing_again(site: Site) -> None:
    """A confirmation link older than its hours gets 410 and points to the subscribe page."""
    pending = registry.subscribe(
        site.engine, "reader@example.com", Preferences("en", ("daily",)), CHOICES
    )
    assert pending is not None
    old = Tokens(SECRET, clock=lambda: time.time() - 49 * 3600)
    response = httpx.get(
        f"{site.url}/subscribe/confirm?token={old.mint(Purpose.CONFIRM, pending.pk, pending.email)}"
    )
    assert response.status_code == 410
    assert 'href="/subscribe/?lang=en">Subscribe again<' in response.text


class _Labels(HTMLParser):
    """Collects form controls and whether each has a label."""

    def __init__(self) -> None:
        super().__init__()
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, bool]] = []
        self.in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label":
            self.in_label += 1
            if found.get("for"):
                self.label_for.add(str(found["for"]))
        elif tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.controls.append((str(found.get("id") or found.get("name")), self.in_label > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.in_label -= 1

    def unlabelled(self) -> list[str]:
        return [
            name for name, wrapped in self.controls if not wrapped and name not in self.label_for
        ]


@pytest.mark.parametrize(("language", "direction"), [("en", "ltr"), ("ar", "rtl"), ("fa", "rtl")])
def test_pages_are_in_the_readers_language_with_labels(
    site: Site, language: str, direction: str
) -> None:
    """The form speaks the reader's language, in its direction, and every field has a label."""
    person = _confirmed(site, "reader@example.com")
    registry.update_preferences(site.engine, person.pk, Preferences(language, ("daily",)), CHOICES)
    pages = [
        httpx.get(f"{site.url}/subscribe/?lang={language}"),
        httpx.get(site.links.preferences(person.pk, person.email, language)),
        httpx.get(site.links.unsubscribe(person.pk, person.email, language)),
    ]
    for page in pages:
        assert page.status_code == 200
        assert f'<html lang="{language}" dir="{direction}">' in page.text
        labels = _Labels()
        labels.feed(page.text)
        assert labels.unlabelled() == []
    if language != "en":
        assert "Subscribe to our newsletter" not in pages[0].text, "no English left over"
        assert "Your newsletter preferences" not in pages[1].text


def test_browser_language_chooses_the_subscribe_page_language(site: Site) -> None:
    """Without ?lang the page follows the browser's Accept-Language among the site's languages."""
    page = httpx.get(
        f"{site.url}/subscribe/", headers={"accept-language": "de, fa;q=0.8, en;q=0.5"}
    )
    assert '<html lang="fa" dir="rtl">' in page.text


@pytest.mark.parametrize(
    "path",
    ["/subscribe/", "/subscribe/confirm?token=x", "/subscribe/nowhere", "/subscribe/style.css"],
)
def test_security_headers_on_every_answer(site: Site, path: str) -> None:
    """Pages forbid framing, sniffing, referrers and inline script, errors included."""
    response = httpx.get(f"{site.url}{path}")
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # default-src 'none': no script, inline or not
    assert "img-src 'self'" in policy  # nothing a page holds can be sent elsewhere
    assert "frame-ancestors 'none'" in policy
    if path.endswith(".css"):
        assert response.headers["content-type"].startswith("text/css")
    else:
        assert response.headers["cache-control"] == "no-store"


def test_unknown_pages_and_methods_get_human_pages(site: Site) -> None:
    """A wrong address or method inside /subscribe gets a page, not a bare error."""
    missing = httpx.get(f"{site.url}/subscribe/nowhere")
    assert missing.status_code == 404
    _is_human_page(missing)
    wrong = httpx.put(f"{site.url}/subscribe/confirm")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["allow"]
    _is_human_page(wrong)


# Nothing from a form reaches a mail header ------------------------------------------------

FORM_PIECES = [
    *'\r\n\x00\t"\\,;:<>()[]@.=?_ ',
    *["\u2028", "\u2029", "\u0085", "\x0b", "\x1c", "é", "ب", "\u200c", "\u00a0"],
    *["=?", "?=", "=?utf-8?q?", "=0D=0A", "Bcc: x@evil.example", "=?utf-8?b?DQo=?="],
]
FORM_NAMES = st.one_of(
    st.text(max_size=250),
    st.lists(st.sampled_from(FORM_PIECES) | st.text(max_size=3), max_size=40).map("".join),
    st.builds(
        "=?{}?{}?{}?=".format,
        st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "x-unknown"]),
        st.sampled_from("bBqQ"),
        st.text(st.sampled_from("=0DA_ :Bcc@xe"), max_size=30),
    ),
    st.just("=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?="),
)
NAME_REFUSED = "The name is too long or contains characters that are not allowed."


@dataclass
class Form:
    """The subscription app on a real server, without rate limits, and the mail it asked for."""

    client: httpx.Client
    engine: Engine
    mail: RecordedConfirmations
    links: SubscriptionLinks
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def address(self) -> str:
        """An address no earlier example used, so no per-address limit is reached."""
        return f"reader{next(self.numbers)}@example.org"


@pytest.fixture
def form(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Form]:
    """The real subscription app, mounted as the server mounts it, on a loopback port."""
    for url, mail, _ in _served(sqlite_engine, tmp_path, per_hour=1_000_000):
        with httpx.Client(base_url=url) as client:
            yield Form(client, sqlite_engine, mail, SubscriptionLinks(Tokens(SECRET), url))


def folded(name: str) -> str:
    """A name as the store keeps it: NFC, runs of spaces one, none at the ends."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def assert_mail_shows(raw: bytes, names: tuple[str, ...], address: str, name: str) -> None:
    """The message has exactly the header fields `names`, and one recipient: `name <address>`."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert re.findall(rb"^([^ \r\n][^:]*):", head, re.MULTILINE) == [n.encode() for n in names]
    message = read_back(raw)
    assert [recipient.addr_spec for recipient in message["To"].addresses] == [address]
    assert shown_name(raw, "To") == name


@given(name=FORM_NAMES)
def test_a_name_from_the_subscribe_form_is_mailed_as_written_or_refused(
    form: Form, name: str
) -> None:
    """Whatever the name field holds: the form refuses it, or the confirmation shows it as typed."""
    address = form.address()
    page = form.client.get("/subscribe/?lang=en")
    answer = form.client.post(
        "/subscribe/",
        data={"csrf": _csrf(page.text), "lang": "en", "email": address, "name": name,
              "language": "en", "digests": ["daily"]},
    )  # fmt: skip
    if answer.status_code == 422:
        assert NAME_REFUSED in answer.text
        assert registry.find_by_email(form.engine, address) is None
        assert (
            any(unicodedata.category(c) in "CcZlZp" for c in name)
            or "=?" in name
            or (len(folded(name)) > 200)
        )
        return
    assert answer.status_code == 200
    [request] = [sent for sent in form.mail.wait_for(1) if sent.email == address]
    form.mail.requests.clear()
    assert request.name == folded(name)
    raw = confirmation_message(Settings(), request)
    assert_mail_shows(raw, CONFIRMATION_HEADERS, address, folded(name))
    body = read_back(raw).get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text.startswith(f"Hello {folded(name)},\n" if folded(name) else "Hello,\n")


@given(name=FORM_NAMES)
def test_a_name_from_the_preferences_form_is_mailed_as_written_or_refused(
    form: Form, name: str
) -> None:
    """A subscriber's new name: refused, or stored so that their digest shows it as typed."""
    address = form.address()
    reader = confirmed(form.engine, address)
    path = _path(form.links.preferences(reader.pk, address, "en"))
    page = form.client.get(path)
    answer = form.client.post(
        path, data={"csrf": _csrf(page.text), "name": name, "language": "en", "digests": ["daily"]}
    )
    stored = registry.find_by_email(form.engine, address)
    assert stored is not None
    if answer.status_code == 422:
        assert NAME_REFUSED in answer.text
        assert stored.name == ""
        return
    assert answer.status_code == 200
    assert stored.name == folded(name)
    raw = build_message(replace(LETTER, to_email=address, to_name=stored.name))
    assert_mail_shows(raw, LETTER_HEADERS, address, folded(name))


FORM_ADDRESSES = st.one_of(
    st.text(max_size=60),
    st.builds(
        "{}{}@{}".format,
        st.lists(st.sampled_from([*"ab.+'", "ü", "ب", *FORM_PIECES]), min_size=1, max_size=8).map(
            "".join
        ),
        st.integers(0, 10**6).map(str),
        st.sampled_from(["example.org", "EXÄMPLE.org", "xn--exmple-cua.org", "b", "-x.org"]),
    ),
)


@given(email=FORM_ADDRESSES)
def test_an_address_from_the_subscribe_form_is_refused_or_the_one_recipient(
    form: Form, email: str
) -> None:
    """Whatever the email field holds: refused, or the confirmation goes to that one address."""
    with form.engine.begin() as connection:  # a fresh start: no subscriber, no limit reached
        connection.execute(delete(subscriber))
        connection.execute(delete(attempt))
    form.mail.requests.clear()
    page = form.client.get("/subscribe/?lang=en")
    answer = form.client.post(
        "/subscribe/",
        data={"csrf": _csrf(page.text), "lang": "en", "email": email, "name": "Reader",
              "language": "en", "digests": ["daily"]},
    )  # fmt: skip
    if answer.status_code == 422:
        assert "Enter a valid email address" in answer.text
        return
    assert answer.status_code == 200
    [request] = form.mail.wait_for(1)
    raw = confirmation_message(Settings(), request)
    assert_mail_shows(raw, CONFIRMATION_HEADERS, request.email, "Reader")
    assert not re.search(r"[\s<>(),;:\\\"\[\]]", request.email)
    assert "=?" not in request.email
