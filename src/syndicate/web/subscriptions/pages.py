"""The subscription pages as HTML: language, translations, and the CSRF double-submit cookie."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from itsdangerous import BadSignature, Signer
from markupsafe import Markup, escape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from syndicate.domain.periods import DIGEST_KINDS
from syndicate.i18n.catalogs import direction, gettext, language_name
from syndicate.i18n.templating import environment
from syndicate.settings import SiteSettings

CSRF_COOKIE = "syndicate_csrf"
CSRF_FIELD = "csrf"


def page_language(request: Request, languages: Sequence[str], preferred: str | None) -> str:
    """The language to answer in: `preferred` if offered, else the browser's, else the first."""
    if preferred in languages:
        assert preferred is not None
        return preferred
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        code = tag.strip().lower().split("-")[0]
        if code in languages and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else languages[0]


def fill(text: str, **params: str) -> Markup:
    """Translated `text` with its {placeholders} filled, each value escaped and bidi-isolated.

    An address or a site name keeps its own direction inside an Arabic or Persian sentence.
    """
    isolated = {name: Markup("<bdi>{}</bdi>").format(value) for name, value in params.items()}
    return escape(text).format(**isolated)


class Csrf:
    """Double submit: a signed random token in a SameSite=Lax cookie and in every form."""

    def __init__(self, secret: str, *, secure: bool) -> None:
        """Sign tokens with `secret`; mark the cookie Secure when the site is served over https."""
        # The salt names where this code once lived; it stays, so forms open in a browser
        # across an upgrade still post.
        self._signer = Signer(secret, salt="syndicate.subscribers.csrf")
        self._secure = secure

    def _valid(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            self._signer.unsign(value)
        except BadSignature:
            return False
        return True

    def token(self, request: Request) -> tuple[str, bool]:
        """The form token for this browser, and whether it is new (and must be set as a cookie)."""
        current = request.cookies.get(CSRF_COOKIE)
        if current and self._valid(current):
            return current, False
        return self._signer.sign(secrets.token_urlsafe(32)).decode(), True

    def accepts(self, request: Request, form: FormData) -> bool:
        """Whether the form carries the same valid token as the cookie."""
        cookie = request.cookies.get(CSRF_COOKIE)
        field = form.get(CSRF_FIELD)
        if not isinstance(field, str) or not cookie:
            return False
        return hmac.compare_digest(cookie.encode(), field.encode()) and self._valid(cookie)

    def set_cookie(self, response: HTMLResponse, token: str, path: str) -> None:
        """Give the browser its token, for the pages under `path` only."""
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=path,
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )


class Pages:
    """Renders a page template in one language, with the site's name and a CSRF token."""

    def __init__(self, site: SiteSettings, languages: Sequence[str], csrf: Csrf) -> None:
        """Pages of `site`, offered in `languages`."""
        self.site = site
        self.languages = tuple(languages)
        self.csrf = csrf

    def render(
        self,
        request: Request,
        template: str,
        language: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """`pages/{template}` in `language` as an HTML response."""
        root = request.scope.get("root_path", "")
        token, new = self.csrf.token(request)

        def translate(message: str) -> str:
            return gettext(language, message)

        html = (
            environment()
            .get_template(f"pages/{template}")
            .render(
                _=translate,
                lang=language,
                dir=direction(language),
                site_title=self.site.title_in(language),
                root=root,
                csrf_field=CSRF_FIELD,
                csrf=token,
                languages=[(code, language_name(code)) for code in self.languages],
                kind_labels={name: kind.title for name, kind in DIGEST_KINDS.items()},
                fill=fill,
                **context,
            )
        )
        response = HTMLResponse(html, status_code=status)
        if new:
            self.csrf.set_cookie(response, token, root or "/")
        return response

    def message(
        self,
        request: Request,
        language: str,
        *,
        status: int,
        title: str,
        body: str,
        params: Mapping[str, str] | None = None,
        link: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """A page that says one thing: `title`, `body` (msgids), and perhaps a link onwards."""
        response = self.render(
            request,
            "message.html",
            language,
            status=status,
            title=title,
            body=body,
            params=dict(params or {}),
            link=link,
        )
        response.headers.update(headers or {})
        return response
