"""The short pages the subscription handlers answer with, and their words in one place.

A refused link, an expired form, too many requests, a busy store, an HTTP error, and the
notices of a subscription's steps (check your inbox, confirmed, unsubscribed). Each is one
message page (see `Pages.message`) in the reader's language.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from syndicate.i18n.catalogs import N_
from syndicate.subscribers.registry import Subscriber
from syndicate.web.subscriptions.pages import Pages

HOUR = 3600
# The answer when the store stayed locked past [web] lock_timeout: wait this many seconds.
BUSY_RETRY_AFTER = 10
BUSY_TITLE = N_("Please try again in a moment")
BUSY_BODY = N_(
    "The site is busy and could not save your request, so nothing was changed. "
    "Please try again in a moment."
)

# What the forms say beside a field that was refused (see registry.PreferenceError.field).
FIELD_ERRORS = {
    "email": N_("Enter a valid email address, such as name@example.com."),
    "name": N_("The name is too long or contains characters that are not allowed."),
    "language": N_("Choose a language from the list."),
    "digests": N_("Choose at least one digest."),
    "topics": N_("Choose topics from the list."),
}


def subscribe_link(request: Request, language: str) -> tuple[str, str]:
    """The link back to the subscribe form in `language`, with its text."""
    return (f"{request.scope.get('root_path', '')}/?lang={language}", N_("Subscribe again"))


def refused_link(pages: Pages, request: Request, language: str, reason: str) -> Response:
    """A subscription link that is expired (410) or not valid (400)."""
    expired = reason == "expired"
    return pages.message(
        request,
        language,
        status=410 if expired else 400,
        title=N_("This link has expired") if expired else N_("This link is not valid"),
        body=N_(
            "For your security, links in our emails work for a limited time. Use the link "
            "in our most recent email, or subscribe again to get a new one."
        )
        if expired
        else N_(
            "The link may be incomplete or altered. Copy the whole link from the email "
            "into your browser, or subscribe again."
        ),
        link=subscribe_link(request, language),
    )


def expired_form(pages: Pages, request: Request, language: str) -> Response:
    """A form whose CSRF token was missing or wrong (403)."""
    return pages.message(
        request,
        language,
        status=403,
        title=N_("This form has expired"),
        body=N_(
            "For your security, the form could not be accepted. Go back, reload the page "
            "and try again. Cookies must be enabled for this site."
        ),
    )


def too_many_attempts(pages: Pages, request: Request, language: str) -> Response:
    """A client network over its subscribe requests for the hour (429)."""
    return pages.message(
        request,
        language,
        status=429,
        title=N_("Too many attempts"),
        body=N_("Too many subscription requests came from your network. Try again in an hour."),
        headers={"retry-after": str(HOUR)},
    )


def check_inbox(pages: Pages, request: Request, language: str, email: str) -> Response:
    """The one answer to every accepted subscribe request, whatever the address's standing."""
    return pages.message(
        request,
        language,
        status=200,
        title=N_("Check your inbox"),
        body=N_(
            "If {email} is not subscribed yet, we have sent it a message with a link "
            "to confirm. Your subscription starts when you click that link. If nothing "
            "arrives within a few minutes, look in your spam folder."
        ),
        params={"email": email},
    )


def not_confirmable(pages: Pages, request: Request, language: str) -> Response:
    """A confirmation link of an address that unsubscribed since, or cannot be mailed (410)."""
    return pages.message(
        request,
        language,
        status=410,
        title=N_("This subscription cannot be confirmed"),
        body=N_(
            "This address has unsubscribed since the link was sent, or cannot receive "
            "our mail. You can subscribe again."
        ),
        link=subscribe_link(request, language),
    )


def confirmed(pages: Pages, request: Request, language: str, preferences_url: str) -> Response:
    """A subscription just confirmed, with the link to its preferences."""
    return pages.message(
        request,
        language,
        status=200,
        title=N_("Subscription confirmed"),
        body=N_("Thank you. Your first digest arrives with the next edition."),
        link=(preferences_url, N_("Manage your preferences")),
    )


def unsubscribed(pages: Pages, request: Request, holder: Subscriber) -> Response:
    """A subscriber who receives no more newsletters."""
    return pages.message(
        request,
        holder.language,
        status=200,
        title=N_("You are unsubscribed"),
        body=N_("We will not send any more newsletters to {email}."),
        params={"email": holder.email},
        link=subscribe_link(request, holder.language),
    )


def http_error(pages: Pages, request: Request, language: str, exc: Exception) -> Response:
    """A human page for 404, 405, 413 and malformed forms."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    missing = status == 404
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return pages.message(
        request,
        language,
        status=status,
        title=N_("Page not found") if missing else N_("This request cannot be accepted"),
        body=N_("There is no page at this address.")
        if missing
        else N_("Go back, reload the page and try again."),
        link=(
            f"{request.scope.get('root_path', '')}/?lang={language}",
            N_("Go to the subscription page"),
        ),
        headers=headers,
    )


def busy(pages: Pages, request: Request, language: str) -> Response:
    """503 with Retry-After: the store stayed locked, nothing was written, try again."""
    return pages.message(
        request,
        language,
        status=503,
        title=BUSY_TITLE,
        body=BUSY_BODY,
        headers={"retry-after": str(BUSY_RETRY_AFTER)},
    )
