"""Absolute links to the subscription pages, carrying signed tokens, for mails and pages."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote_plus

from syndicate.subscribers.tokens import Purpose, Tokens

# Where the server mounts the subscription app (see syndicate.web.subscriptions).
MOUNT_PATH = "/subscribe"
PATHS = {
    Purpose.CONFIRM: "/confirm",
    Purpose.UNSUBSCRIBE: "/unsubscribe",
    Purpose.PREFERENCES: "/preferences",
}


@dataclass(frozen=True, slots=True)
class ConfirmationRequest:
    """A confirmation mail to send: to whom, in which language, and the links it carries.

    `cancel_url` is the pending subscription's unsubscribe link: its List-Unsubscribe, so that
    whoever did not ask can stop it with one click (RFC 8058) and its confirm link stops working.
    """

    email: str
    name: str
    language: str
    confirm_url: str
    cancel_url: str
    pk: int | None = None  # the pending subscriber's, which the mail's VERP token names


class SubscriptionLinks:
    """Mints the links of one subscriber: confirm, unsubscribe (also RFC 8058), preferences."""

    def __init__(self, tokens: Tokens, public_url: str) -> None:
        """Links under `public_url` (Syndicate's public base URL) signed by `tokens`."""
        self.tokens = tokens
        self.base = public_url.rstrip("/") + MOUNT_PATH

    def link(self, purpose: Purpose, pk: int, email: str, language: str) -> str:
        """The page for `purpose` of subscriber `pk` at `email`; error pages use `language`."""
        # As urlencode would write it, for a digest's two links a recipient: a minted token is
        # URL-safe base64, which quotes to itself, and each language is quoted once.
        token = self.tokens.mint(purpose, pk, email)
        return f"{self.base}{PATHS[purpose]}?token={token}&lang={_quoted(language)}"

    def confirm(self, pk: int, email: str, language: str) -> str:
        """The link in a confirmation mail."""
        return self.link(Purpose.CONFIRM, pk, email, language)

    def confirmation(self, pk: int, email: str, name: str, language: str) -> ConfirmationRequest:
        """The confirmation mail to send pending subscriber `pk`: its confirm and cancel links."""
        confirm, cancel = self.confirm(pk, email, language), self.unsubscribe(pk, email, language)
        return ConfirmationRequest(email, name, language, confirm, cancel, pk)

    def unsubscribe(self, pk: int, email: str, language: str) -> str:
        """The unsubscribe link of a digest: List-Unsubscribe (one-click POST) and the footer."""
        return self.link(Purpose.UNSUBSCRIBE, pk, email, language)

    def preferences(self, pk: int, email: str, language: str) -> str:
        """The manage-preferences link of a digest's footer."""
        return self.link(Purpose.PREFERENCES, pk, email, language)


@lru_cache(maxsize=64)
def _quoted(value: str) -> str:
    """A query string value, percent-encoded as urlencode does."""
    return quote_plus(value)
