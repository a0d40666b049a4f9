"""Mailgun's webhooks: a JSON body signed by HMAC-SHA256 of its timestamp and token.

The body is `{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}`, the
signature the hex HMAC-SHA256 of timestamp + token under the account's HTTP webhook signing
key. A signature older or newer than `REPLAY_WINDOW` is refused: a copy cannot be played
back later (and an event already stored would be a no-op anyway, by its id). The signature
does not cover the event, so a token once seen is kept for the window with a digest of its
body: the same signature on another body is refused, the same request again (a retry) is not.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers

from syndicate.feedback.model import Feedback, FeedbackKind, Provider
from syndicate.settings.bounces import WebhookSettings
from syndicate.web.webhooks.payload import (
    Malformed,
    address,
    header_clues,
    mapping,
    moment,
    parse_json,
    text,
)
from syndicate.web.webhooks.receiving import Events, Outside, Refused

REPLAY_WINDOW = 15 * 60  # seconds either side of now a signature's timestamp may be
_FAILED = {"permanent": FeedbackKind.HARD, "temporary": FeedbackKind.SOFT}


class Mailgun:
    """The /webhooks/mailgun endpoint's checks and reading."""

    provider = Provider.MAILGUN

    def __init__(self, settings: WebhookSettings, outside: Outside) -> None:
        """Check with [bounces.webhooks] mailgun_signing_key, against `outside`'s clock."""
        self._key = settings.mailgun_signing_key.get_secret_value().encode()
        self._outside = outside
        self._seen: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # token: (when, body)

    @property
    def configured(self) -> bool:
        """True when the signing key is set."""
        return bool(self._key)

    async def read(self, headers: Headers, body: bytes) -> Events:
        """The event of a signed request."""
        document = mapping(parse_json(body), "body")
        self._check(document.get("signature"))
        self._once(str(document["signature"]["token"]), hashlib.sha256(body).digest())
        data = mapping(document.get("event-data"), "event-data")
        return read_event(data, self._outside)

    def _check(self, signature: Any) -> None:
        """Refused unless `signature` is Mailgun's, made within the replay window."""
        if not isinstance(signature, Mapping) or not all(
            isinstance(signature.get(name), str | int)
            for name in ("timestamp", "token", "signature")
        ):
            raise Refused(
                401, "no signature: signature.timestamp, token and signature are required"
            )
        timestamp, token = str(signature["timestamp"]), str(signature["token"])
        given = str(signature["signature"]).encode("utf-8", "surrogatepass")
        expected = hmac.new(self._key, f"{timestamp}{token}".encode("utf-8", "surrogatepass"),
                            hashlib.sha256).hexdigest().encode()  # fmt: skip
        if not hmac.compare_digest(expected, given):
            raise Refused(403, "the signature does not match the signing key")
        try:
            age = abs(self._outside.clock() - float(timestamp))
        except ValueError:
            raise Refused(403, "signature.timestamp is not a number") from None
        if not age <= REPLAY_WINDOW:  # NaN too
            raise Refused(403, f"the signature is {age:.0f} s from now, past the replay window")

    def _once(self, token: str, digest: bytes) -> None:
        """Refused if `token` signed another body within the window; remember it otherwise."""
        now = self._outside.clock()
        while self._seen and next(iter(self._seen.values()))[0] < now - REPLAY_WINDOW:
            self._seen.popitem(last=False)
        seen = self._seen.get(token)
        if seen is not None and seen[1] != digest:
            raise Refused(403, "this signature was already used for another event")
        self._seen[token] = (now, digest)


def read_event(data: Mapping[str, Any], outside: Outside) -> Events:
    """The feedback in one Mailgun event: failed, complained or delivered."""
    event = text(data, "event", "event-data")
    if event == "failed":
        severity = text(data, "severity", "event-data")
        kind = _FAILED.get(severity)
        if kind is None:
            raise Malformed(f"event-data.severity: {severity[:40]!r} is not permanent or temporary")
    elif event == "complained":
        kind = FeedbackKind.COMPLAINT
    elif event == "delivered":
        kind = FeedbackKind.DELIVERED
    else:  # accepted, opened, clicked, unsubscribed, stored: no news of the address
        return Events(ignored=(f"event {event[:40]}",))
    key = text(data, "id", "event-data")
    status = mapping(data.get("delivery-status") or {}, "event-data.delivery-status")
    message = mapping(data.get("message") or {}, "event-data.message")
    headers = mapping(message.get("headers") or {}, "event-data.message.headers")
    clues = header_clues({"message-id": text(headers, "message-id", "event-data.message.headers",
                                             required=False)})  # fmt: skip
    diagnostic = (
        text(status, "message", "event-data.delivery-status", required=False)
        or text(status, "description", "event-data.delivery-status", required=False)
        or text(data, "reason", "event-data", required=False)
    )
    return Events((Feedback(
        Provider.MAILGUN, kind, address(data, "recipient", "event-data"), f"mailgun:{key}",
        moment(data, "timestamp", "event-data", outside.now()),
        status=text(status, "enhanced-code", "event-data.delivery-status", required=False)
        or text(status, "code", "event-data.delivery-status", required=False),
        diagnostic=diagnostic, reference=f"mailgun event {key}",
        clues=clues,
    ),))  # fmt: skip
