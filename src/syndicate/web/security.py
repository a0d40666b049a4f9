"""Security headers for every HTML page the server answers: one rule for styles, images by kind.

One ASGI middleware wraps the whole site except the /feeds/ fast path, and one table says
which policy each part of the site gets; every policy allows the same styles. A route may still set any of these headers itself;
the middleware only fills in what the answer lacks, so a route's own choice stands. Another
makes every redirect name the site's public URL, never a host the request claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Every policy starts from nothing allowed; each page kind adds only the images and forms its
# markup uses.
_BASE = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"
# One rule for styles on every page, so that no page loses its styles by being classed with
# another kind (/digests/ holds both the archive's list and the web copies). Our pages link
# /style.css; a web copy is the email's HTML, styled inline as mail clients need; and
# feeds/index.html carries its stylesheet inline, to stand alone on a CDN. Inline styles run
# no script, and what an injected style could leak would go out as a background image, which
# img-src keeps to 'self' on the form pages and forbids on the others but the web copies.
STYLES = "style-src 'self' 'unsafe-inline'"
# Feed and topic pages, error pages: no script, no images, no forms.
PAGE_POLICY = f"{_BASE}; {STYLES}; form-action 'none'"
# The subscription pages post their forms back to themselves.
FORM_POLICY = f"{_BASE}; {STYLES}; img-src 'self'; form-action 'self'"
# The archive: a web copy shows the articles' images from the site; no script, no forms.
WEB_COPY_POLICY = f"{_BASE}; {STYLES}; img-src https: http: data:; form-action 'none'"
# feeds/index.html, a static file served on the feed files' own path.
FEED_INDEX_POLICY = PAGE_POLICY


@dataclass(frozen=True, slots=True)
class PagePolicy:
    """What a kind of page may load, and what it tells other sites when a link is followed."""

    content_security_policy: str
    referrer_policy: str = "strict-origin-when-cross-origin"


# Feed and topic pages, error pages, anything not listed below. Article links may tell the
# site where a reader came from, never the full URL.
DEFAULT_POLICY = PagePolicy(PAGE_POLICY)
# Path prefix -> policy; the first match wins. Subscription URLs carry tokens and a web copy
# is reached from a personal email: neither is ever named in a Referer.
POLICIES: tuple[tuple[str, PagePolicy], ...] = (
    ("/subscribe/", PagePolicy(FORM_POLICY, "no-referrer")),
    ("/digests/", PagePolicy(WEB_COPY_POLICY, "no-referrer")),
)
# A year, the usual floor for HSTS preload lists; subdomains are not ours to speak for.
HSTS = "max-age=31536000"


def policy_for(path: str, policies: Sequence[tuple[str, PagePolicy]] = POLICIES) -> PagePolicy:
    """The policy for the page at `path`."""
    for prefix, policy in policies:
        if path.startswith(prefix):
            return policy
    return DEFAULT_POLICY


def security_headers(policy: PagePolicy, *, https: bool) -> list[tuple[str, str]]:
    """The headers every page of `policy` carries."""
    headers = [
        ("content-security-policy", policy.content_security_policy),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", policy.referrer_policy),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if https:
        # Sent only over a public https URL: over plain http it would lock out the site.
        headers.append(("strict-transport-security", HSTS))
    return headers


class SecurityHeaders:
    """Adds the security headers an answer does not already carry."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        https: bool = False,
        policies: Sequence[tuple[str, PagePolicy]] = POLICIES,
        cache_control: str | None = None,
    ) -> None:
        """Wrap `app`; `https` when the public URL is https; `cache_control` as a default."""
        self.app = app
        self.policies = tuple(policies)
        self.https = https
        self.cache_control = cache_control
        # Computed once per policy, not per request.
        self._headers = {
            policy: security_headers(policy, https=https)
            for policy in {DEFAULT_POLICY, *(policy for _, policy in self.policies)}
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; complete the answer's headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = self._headers[policy_for(scope["path"], self.policies)]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted:
                    headers.setdefault(name, value)
                if self.cache_control is not None:
                    headers.setdefault("cache-control", self.cache_control)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PublicRedirects:
    """Points every redirect's Location at the public URL, whatever Host the request carried.

    Starlette builds its trailing-slash redirects from the request's Host header, so
    `GET /digests` with `Host: evil.example` was sent to http://evil.example/digests/. Mending
    each answer on its way out, rather than each place that redirects, covers redirects that
    are added later and the ones inside Starlette alike.
    """

    def __init__(self, app: ASGIApp, base: str) -> None:
        """Wrap `app`; `base` is [web] public_url without its final slash ('' for none)."""
        self.app = app
        self.base = base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; rewrite the answer's Location, if it has one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_located(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location is not None:
                    headers["location"] = public_location(location, scope["path"], self.base)
            await send(message)

        await self.app(scope, receive, send_located)


def public_location(location: str, request_path: str, base: str) -> str:
    """`location` (relative, or naming any host) as the same path and query under `base`.

    With no `base` the answer is a path from the root that no browser can read as another
    host: never `//host` and never a backslash, which browsers take for a slash.
    """
    try:
        target = urlsplit(urljoin(request_path, location))
    except ValueError:  # a host no URL parser accepts ("[evil"): it was not ours either
        return f"{base}/"
    # Browsers drop tabs and newlines anywhere in a URL: "/\t/evil.example" would be "//".
    path = target.path.translate(_BROWSER_IGNORED).replace("\\", "%5C").lstrip("/")
    return base + urlunsplit(("", "", "/" + path, target.query, target.fragment))


_BROWSER_IGNORED = str.maketrans("", "", "\t\n\r")
