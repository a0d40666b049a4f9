"""Redirects never trust the Host header: every Location names [web] public_url's site.

The whole site as `syndicate serve` wires it, on a real uvicorn server; requests claim any Host
(and X-Forwarded-Host) and ask for every route's path with and without its final slash, and
for paths an attacker would try.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from syndicate.store import open_database
from syndicate.web.security import public_location
from syndicate.web.site import create_site
from tests.support.ports import free_port
from tests.support.sites import site_settings
from tests.support.web_server import serve_in_thread

PUBLIC_URL = "https://news.example/"
SAMPLE_PARAMETERS = {"lang": "en", "slug": "iraq", "edition_id": "daily-en-2026-11-20"}


def _site(folder: Path, public_url: str) -> Any:
    settings = site_settings(folder, public_url)
    return create_site(open_database(settings.database.url), settings)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The site, served once for the module's many requests: its address and the app."""
    app = _site(tmp_path_factory.mktemp("redirects"), PUBLIC_URL)
    yield from ((url, app) for url in serve_in_thread(app, free_port()))


def _starlette(app: Any) -> Starlette:
    """The Starlette app inside the site's wrappers (feeds first, headers, redirects)."""
    while not isinstance(app, Starlette):
        app = getattr(app, "pages", None) or app.app
    return app


def _paths(routes: list[BaseRoute], prefix: str = "") -> Iterator[str]:
    """A concrete path for every route, mounted apps' routes included."""
    for route in routes:
        if isinstance(route, Mount):
            yield prefix + route.path + "/"
            yield from _paths(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path_format.format(**SAMPLE_PARAMETERS)


def _toggled(path: str) -> str:
    return path.rstrip("/") if path.endswith("/") and path != "/" else path + "/"


def route_paths(app: Any) -> list[str]:
    """Every route's path, and the same path with its final slash added or taken away."""
    paths = sorted(set(_paths(_starlette(app).routes)))
    return sorted({*paths, *map(_toggled, paths)})


def assert_public(location: str, public_url: str = PUBLIC_URL) -> None:
    """`location`, read as a browser would, names the public site.

    As the WHATWG URL parser does: tabs and newlines dropped, leading and trailing controls and
    spaces stripped, and a backslash taken for a slash.
    """
    seen = location.translate(str.maketrans("", "", "\t\n\r")).strip("".join(map(chr, range(33))))
    target = urlsplit(urljoin(public_url, seen.replace("\\", "/")))
    public = urlsplit(public_url)
    assert (target.scheme, target.netloc) == (public.scheme, public.netloc), location


def test_the_site_redirects_where_it_should(served: tuple[str, Any]) -> None:
    """The redirects the property below guards exist: slashes added and taken away, / to feeds."""
    url, app = served
    answers = {
        path: httpx.get(url + path, headers={"host": "evil.example"}) for path in route_paths(app)
    }
    moved = {path: answer.headers["location"] for path, answer in answers.items()
             if answer.is_redirect}  # fmt: skip
    assert moved["/digests"] == "https://news.example/digests/"
    assert moved["/subscribe"] == "https://news.example/subscribe/"
    assert moved["/en/tags/iraq"] == "https://news.example/en/tags/iraq/"
    assert moved["/healthz/"] == "https://news.example/healthz"
    assert moved["/"] == "https://news.example/feeds/"
    for location in moved.values():
        assert_public(location)


HOSTS = st.one_of(
    st.sampled_from(
        [
            "evil.example",
            "evil.example:443",
            "news.example.evil.example",
            "news.example@evil.example",
            "evil.example/news.example",
            "[::1]:8000",
            "[evil",
            "",
            "127.0.0.1",
        ]
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
)
ATTACK_PATHS = [
    "//evil.example/digests",
    "//evil.example/%2e%2e/digests",
    "/\\evil.example/digests",
    "/digests//",
    "///digests",
    "/subscribe//confirm/",
    "/%2F%2Fevil.example/digests",
]


@st.composite
def request_paths(draw: st.DrawFn, app: Any) -> str:
    """A route's path (slash toggled or not), an attacker's path, or either with a query."""
    path = draw(st.sampled_from(route_paths(app) + ATTACK_PATHS))
    segments = draw(st.lists(st.sampled_from(["", "evil.example", "..", "%5C", "x"]), max_size=3))
    if segments:
        path = "/".join([path.rstrip("/"), *segments])
    if draw(st.booleans()):
        path += "?next=//evil.example/&lang=ar"
    return path


@settings(max_examples=300)
@given(data=st.data())
def test_no_redirect_names_a_host_the_request_claimed(
    served: tuple[str, Any], data: st.DataObject
) -> None:
    """Whatever Host or X-Forwarded-Host a request claims, its Location stays on public_url."""
    url, app = served
    path = data.draw(request_paths(app), label="path")
    host = data.draw(HOSTS, label="host")
    headers = {"host": host, "x-forwarded-host": data.draw(HOSTS, label="forwarded")}
    if data.draw(st.booleans(), label="https"):
        headers["x-forwarded-proto"] = "https"
    answer = httpx.get(url + path, headers=headers)
    if "location" in answer.headers:
        assert_public(answer.headers["location"])


def test_a_public_url_with_a_path_keeps_its_path(tmp_path: Path) -> None:
    """Behind a proxy at https://news.example/syndicate/, redirects go under that path."""
    public = "https://news.example/syndicate/"
    for url in serve_in_thread(_site(tmp_path, public), free_port()):
        answer = httpx.get(f"{url}/digests", headers={"host": "evil.example"})
        assert answer.headers["location"] == "https://news.example/syndicate/digests/"


URLISH = st.text(st.sampled_from("/\\:@?#.%[]abc evil.example\t\n\x00 "), max_size=30) | st.text(
    max_size=30
)


@given(location=URLISH, request_path=URLISH)
def test_any_location_is_mended_onto_the_public_site(location: str, request_path: str) -> None:
    """Whatever a Location says (absolute, relative, protocol-relative, garbled): public_url's."""
    assert_public(public_location(location, "/" + request_path, "https://news.example"))
    rooted = public_location(location, "/" + request_path, "")
    assert rooted.startswith("/")
    assert not rooted.startswith("//")
    assert "\\" not in urlsplit(rooted).path
    assert_public(rooted)
