"""The subscription pages: subscribe, confirm, preferences and unsubscribe (RFC 8058 too).

A Starlette app the server mounts at /subscribe. Every answer is a real HTML page in the
reader's language; forms carry a CSRF double-submit token; subscribing is rate-limited per
client network; the subscribe answer is one page whatever the address's standing, and the
confirmation mail leaves after the answer, so neither the page nor its timing tells them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syndicate.i18n.templating import templates_dir
from syndicate.settings import DigestSettings, SiteSettings, SubscriberSettings, WebSettings
from syndicate.store.database import is_busy, reading
from syndicate.subscribers import registry, throttle
from syndicate.subscribers.addresses import normalise_address
from syndicate.subscribers.links import ConfirmationRequest, SubscriptionLinks
from syndicate.subscribers.registry import Choices, PreferenceError, Preferences, Subscriber
from syndicate.subscribers.tokens import Purpose, TokenError, Tokens
from syndicate.subscribers.topics import topic_choices
from syndicate.web.security import FORM_POLICY, PagePolicy, SecurityHeaders
from syndicate.web.subscriptions import notices
from syndicate.web.subscriptions.notices import FIELD_ERRORS, HOUR
from syndicate.web.subscriptions.pages import Csrf, Pages, page_language

log = logging.getLogger(__name__)

SendConfirmation = Callable[[ConfirmationRequest], None]

# One address gets at most this many confirmation mails an hour, whoever asks and from where.
CONFIRMATIONS_PER_ADDRESS = 3
MAX_BODY_BYTES = 64 * 1024
DAY = 24 * HOUR

# Every subscription page posts its forms back to itself; tokens travel in its URLs, so no
# Referer ever names one; and no page of it may be kept by a cache.
PAGE_SECURITY = (("", PagePolicy(FORM_POLICY, "no-referrer")),)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> tuple[str, ...]:
    return tuple(value for value in form.getlist(name) if isinstance(value, str))


class SubscriptionPages:
    """The request handlers, with what they share: the store, settings, tokens and pages."""

    def __init__(
        self,
        engine: Engine,
        *,
        site: SiteSettings,
        web: WebSettings,
        subscribers: SubscriberSettings,
        digests: DigestSettings,
        secret_key: str,
        send_confirmation: SendConfirmation,
    ) -> None:
        """Serve the subscription pages from `engine`'s store."""
        self.engine = engine
        # Pages that only look a subscriber up never wait for a writer (see store.database).
        self.reader = reading(engine)
        self.settings = subscribers
        self.choices = Choices(tuple(site.languages), tuple(digests.kinds))
        self.tokens = Tokens(secret_key)
        self.links = SubscriptionLinks(self.tokens, str(web.public_url))
        secure = str(web.public_url).startswith("https:")
        self.pages = Pages(site, site.languages, Csrf(secret_key, secure=secure))
        self.send_confirmation = send_confirmation
        self.stylesheet = (templates_dir() / "pages" / "style.css").read_bytes()

    # -- helpers -------------------------------------------------------------------------

    def _language(self, request: Request, preferred: str | None = None) -> str:
        return page_language(request, self.choices.languages, preferred)

    def _refused(self, request: Request, language: str, reason: str) -> Response:
        log.info("subscription token refused reason=%s path=%s", reason, request.url.path)
        return notices.refused_link(self.pages, request, language, reason)

    async def _holder(self, request: Request, purpose: Purpose) -> Subscriber | Response:
        """The subscriber whose token for `purpose` the request carries, or the refusal page."""
        language = self._language(request, request.query_params.get("lang"))
        max_age = self.settings.confirm_hours * HOUR
        if purpose is not Purpose.CONFIRM:
            max_age = self.settings.link_days * DAY
        try:
            claim = self.tokens.read(
                purpose, request.query_params.get("token", ""), max_age=max_age
            )
        except TokenError as error:
            return self._refused(request, language, error.reason)
        found = await run_in_threadpool(registry.find, self.reader, claim.pk)
        if found is None or not self.tokens.owns(claim, found.email):
            return self._refused(request, language, "stale")
        return found

    async def _form(self, request: Request) -> FormData:
        return await request.form(max_files=0, max_fields=100)

    # -- subscribe -----------------------------------------------------------------------

    def _subscribe_page(
        self,
        request: Request,
        language: str,
        *,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        shown = {"email": "", "name": "", "language": language, "digests": self.choices.kinds[:1]}
        shown.update(values or {})
        return self.pages.render(
            request,
            "subscribe.html",
            language,
            status=status,
            values=shown,
            errors=errors or {},
            field_errors=FIELD_ERRORS,
            kinds=self.choices.kinds,
        )

    async def subscribe_form(self, request: Request) -> Response:
        """GET /: the subscribe form, in the `lang` asked for or the browser's language."""
        return self._subscribe_page(
            request, self._language(request, request.query_params.get("lang"))
        )

    async def subscribe(self, request: Request) -> Response:
        """POST /: ask for a subscription; the answer never says whether the address is known."""
        form = await self._form(request)
        language = self._language(request, _text(form, "lang") or None)
        if not self.pages.csrf.accepts(request, form):
            return notices.expired_form(self.pages, request, language)
        client = request.client.host if request.client else None
        key = throttle.client_key("subscribe", client)
        allowed = await run_in_threadpool(
            throttle.allow, self.engine, key, self.settings.subscribe_per_hour
        )
        if not allowed:
            return notices.too_many_attempts(self.pages, request, language)
        email = _text(form, "email")
        preferences = Preferences(
            language=_text(form, "language"),
            digests=_texts(form, "digests"),
            name=_text(form, "name"),
        )
        try:
            confirmation = await run_in_threadpool(self._subscribe, email, preferences)
        except PreferenceError as error:
            errors: dict[str, str] = {error.field: FIELD_ERRORS[error.field]}
        except ValueError:
            errors = {"email": FIELD_ERRORS["email"]}
        else:
            response = notices.check_inbox(self.pages, request, language, email.strip())
            if confirmation is not None:
                response.background = BackgroundTask(self._send, confirmation)
            return response
        values = {
            "email": email,
            "name": preferences.name,
            "language": preferences.language,
            "digests": preferences.digests,
        }
        return self._subscribe_page(request, language, values=values, errors=errors, status=422)

    def _subscribe(self, email: str, preferences: Preferences) -> ConfirmationRequest | None:
        """Record the request; the confirmation mail to send, if one may be sent."""
        address = normalise_address(email)
        # Counted on every branch, so that all of them do the same work.
        mail_allowed = throttle.allow(
            self.engine,
            "confirmation:" + self.tokens.fingerprint(address),
            CONFIRMATIONS_PER_ADDRESS,
        )
        pending = registry.subscribe(self.engine, address, preferences, self.choices)
        if pending is None or not mail_allowed:
            return None
        return self.links.confirmation(pending.pk, pending.email, pending.name, pending.language)

    def _send(self, confirmation: ConfirmationRequest) -> None:
        try:
            self.send_confirmation(confirmation)
        except Exception:
            log.exception("confirmation mail could not be sent language=%s", confirmation.language)

    # -- confirm -------------------------------------------------------------------------

    async def confirm(self, request: Request) -> Response:
        """GET /confirm?token=…: confirm the subscription the link was sent for."""
        holder = await self._holder(request, Purpose.CONFIRM)
        if isinstance(holder, Response):
            return holder
        confirmed = await run_in_threadpool(registry.confirm, self.engine, holder.pk)
        if confirmed is None:
            return notices.not_confirmable(self.pages, request, holder.language)
        preferences = self.links.preferences(confirmed.pk, confirmed.email, confirmed.language)
        return notices.confirmed(self.pages, request, confirmed.language, preferences)

    # -- preferences ---------------------------------------------------------------------

    def _preferences_page(
        self,
        request: Request,
        holder: Subscriber,
        *,
        values: Preferences | None = None,
        errors: dict[str, str] | None = None,
        saved: bool = False,
        status: int = 200,
    ) -> Response:
        shown = values or Preferences(holder.language, holder.digests, holder.topics, holder.name)
        language = holder.language
        topics = topic_choices(self.reader, language)
        unsubscribe = self.links.unsubscribe(holder.pk, holder.email, language)
        return self.pages.render(
            request,
            "preferences.html",
            language,
            status=status,
            email=holder.email,
            values=shown,
            errors=errors or {},
            field_errors=FIELD_ERRORS,
            kinds=self.choices.kinds,
            topics=topics,
            saved=saved,
            action=f"{request.url.path}?{request.url.query}",
            unsubscribe_url=unsubscribe,
        )

    async def preferences_form(self, request: Request) -> Response:
        """GET /preferences?token=…: the subscriber's digests, language and topics."""
        holder = await self._holder(request, Purpose.PREFERENCES)
        if isinstance(holder, Response):
            return holder
        if holder.status == "unsubscribed":
            return notices.unsubscribed(self.pages, request, holder)
        return await run_in_threadpool(self._preferences_page, request, holder)

    async def save_preferences(self, request: Request) -> Response:
        """POST /preferences?token=…: store the subscriber's new choices."""
        holder = await self._holder(request, Purpose.PREFERENCES)
        if isinstance(holder, Response):
            return holder
        form = await self._form(request)
        if not self.pages.csrf.accepts(request, form):
            return notices.expired_form(self.pages, request, holder.language)
        if holder.status == "unsubscribed":
            return notices.unsubscribed(self.pages, request, holder)
        wanted = Preferences(
            language=_text(form, "language"),
            digests=_texts(form, "digests"),
            topics=_texts(form, "topics"),
            name=_text(form, "name"),
        )
        try:
            stored = await run_in_threadpool(
                registry.update_preferences, self.engine, holder.pk, wanted, self.choices
            )
        except PreferenceError as error:
            problems: dict[str, str] = {error.field: FIELD_ERRORS[error.field]}
            return await run_in_threadpool(
                lambda: self._preferences_page(
                    request, holder, values=wanted, errors=problems, status=422
                )
            )
        return await run_in_threadpool(lambda: self._preferences_page(request, stored, saved=True))

    # -- unsubscribe ---------------------------------------------------------------------

    async def unsubscribe_form(self, request: Request) -> Response:
        """GET /unsubscribe?token=…: a page with one button; a GET never unsubscribes anyone.

        Mail scanners and link previews follow every link in a message.
        """
        holder = await self._holder(request, Purpose.UNSUBSCRIBE)
        if isinstance(holder, Response):
            return holder
        if holder.status == "unsubscribed":
            return notices.unsubscribed(self.pages, request, holder)
        return self.pages.render(
            request,
            "unsubscribe.html",
            holder.language,
            email=holder.email,
            action=f"{request.url.path}?{request.url.query}",
            preferences_url=self.links.preferences(holder.pk, holder.email, holder.language),
        )

    async def unsubscribe(self, request: Request) -> Response:
        """POST /unsubscribe?token=…: RFC 8058 one-click (no CSRF token), or the page's form."""
        holder = await self._holder(request, Purpose.UNSUBSCRIBE)
        if isinstance(holder, Response):
            return holder
        form = await self._form(request)
        # A mail client posts "List-Unsubscribe=One-Click" with no cookie; the signed token in
        # the URL is what authorises it, and a forged request cannot know that token.
        one_click = _text(form, "List-Unsubscribe") == "One-Click"
        if not one_click and not self.pages.csrf.accepts(request, form):
            return notices.expired_form(self.pages, request, holder.language)
        detail = "one-click" if one_click else "web page"
        done = await run_in_threadpool(
            lambda: registry.unsubscribe(self.engine, holder.pk, detail=detail)
        )
        return notices.unsubscribed(self.pages, request, done or holder)

    # -- the rest ------------------------------------------------------------------------

    async def stylesheet_file(self, request: Request) -> Response:
        """GET /style.css: the pages' one stylesheet."""
        return Response(
            self.stylesheet,
            media_type="text/css",
            headers={"cache-control": "public, max-age=86400"},
        )

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """A human page for 404, 405, 413 and malformed forms."""
        language = self._language(request, request.query_params.get("lang"))
        return notices.http_error(self.pages, request, language, exc)

    async def busy(self, request: Request, exc: Exception) -> Response:
        """503 with Retry-After when the store stayed locked past [web] lock_timeout.

        Nothing was written (the write transaction never began), so trying again is safe.
        Any other database error is no answer to give a reader: it stays a logged 500.
        """
        if not is_busy(exc):
            raise exc
        log.warning(
            "database busy; answered 503 method=%s path=%s", request.method, request.url.path
        )
        wanted = request.query_params.get("lang")
        if wanted is None and request.method == "POST":
            wanted = _text(await self._form(request), "lang") or None  # read already: cached
        return notices.busy(self.pages, request, self._language(request, wanted))


def create_subscription_app(
    engine: Engine,
    *,
    site: SiteSettings,
    web: WebSettings,
    subscribers: SubscriberSettings,
    digests: DigestSettings,
    secret_key: str,
    send_confirmation: SendConfirmation,
) -> Starlette:
    """The subscription pages as an ASGI app, for the server to mount at /subscribe."""
    pages = SubscriptionPages(
        engine,
        site=site,
        web=web,
        subscribers=subscribers,
        digests=digests,
        secret_key=secret_key,
        send_confirmation=send_confirmation,
    )
    return Starlette(
        routes=[
            Route("/", pages.subscribe_form, methods=["GET"]),
            Route("/", pages.subscribe, methods=["POST"]),
            Route("/confirm", pages.confirm, methods=["GET"]),
            Route("/preferences", pages.preferences_form, methods=["GET"]),
            Route("/preferences", pages.save_preferences, methods=["POST"]),
            Route("/unsubscribe", pages.unsubscribe_form, methods=["GET"]),
            Route("/unsubscribe", pages.unsubscribe, methods=["POST"]),
            Route("/style.css", pages.stylesheet_file, methods=["GET"]),
        ],
        middleware=[Middleware(SecurityHeaders, policies=PAGE_SECURITY, cache_control="no-store")],
        exception_handlers={HTTPException: pages.http_error, OperationalError: pages.busy},
        max_body_size=MAX_BODY_BYTES,
    )


__all__ = ["ConfirmationRequest", "SendConfirmation", "create_subscription_app"]
