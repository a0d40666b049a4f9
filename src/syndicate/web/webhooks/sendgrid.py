"""SendGrid's signed event webhook: batches of events, signed with ECDSA P-256 and SHA-256.

SendGrid signs the timestamp header followed by the raw body; the signature (base64 DER) is
in X-Twilio-Email-Event-Webhook-Signature and its public key in [bounces.webhooks]
sendgrid_public_key. A `dropped` event is SendGrid refusing to try an address on its own
suppression lists: "Bounced Address" and "Spam Reporting Address" are recorded as a hard
bounce and a complaint, because SendGrid will not deliver there again and the bounce or
complaint that put it there may predate this webhook (a send after Syndicate had heard of it
would have left the address out); other reasons are ours to fix, not the address's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.datastructures import Headers

from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.settings.bounces import WebhookSettings, sendgrid_key
from syndicate.web.webhooks.payload import (
    address,
    items,
    mapping,
    message_id,
    moment,
    parse_json,
    text,
)
from syndicate.web.webhooks.receiving import Events, Outside, Refused

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_DROPPED = {
    "Bounced Address": FeedbackKind.HARD,
    "Spam Reporting Address": FeedbackKind.COMPLAINT,
}


class SendGrid:
    """The /webhooks/sendgrid endpoint's checks and reading."""

    provider = Provider.SENDGRID

    def __init__(self, settings: WebhookSettings, outside: Outside) -> None:
        """Check with [bounces.webhooks] sendgrid_public_key (ValueError if it is no such key)."""
        self._key = sendgrid_key(settings.sendgrid_public_key)
        self._outside = outside

    @property
    def configured(self) -> bool:
        """True when the verification key is set."""
        return self._key is not None

    async def read(self, headers: Headers, body: bytes) -> Events:
        """The events of a signed batch."""
        self._check(headers, body)
        found: list[Feedback] = []
        ignored: list[str] = []
        for number, event in enumerate(items(parse_json(body), "body")):
            path = f"events[{number}]"
            feedback = read_event(mapping(event, path), path, self._outside)
            if isinstance(feedback, Feedback):
                found.append(feedback)
            else:
                ignored.append(feedback)
        return Events(tuple(found), tuple(ignored))

    def _check(self, headers: Headers, body: bytes) -> None:
        """Refused unless the headers carry SendGrid's signature of timestamp + body."""
        assert self._key is not None
        signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise Refused(
                401, f"no signature: {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required"
            )
        try:
            der = base64.b64decode(signature, validate=True)
            self._key.verify(der, timestamp.encode("latin-1") + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise Refused(403, "the signature does not match the verification key") from None


def read_event(event: Mapping[str, Any], path: str, outside: Outside) -> Feedback | str:
    """One event's feedback, or why it carries none."""
    name = text(event, "event", path)
    kind = _kind(name, event, path)
    if kind is None:
        detail = (
            f" ({text(event, 'reason', path, required=False)[:60]})" if name == "dropped" else ""
        )
        return f"event {name[:40]}{detail}"
    key = text(event, "sg_event_id", path)
    return Feedback(
        Provider.SENDGRID, kind, address(event, "email", path), f"sendgrid:{key}",
        moment(event, "timestamp", path, outside.now()),
        status=text(event, "status", path, required=False),
        diagnostic=text(event, "reason", path, required=False)
        or text(event, "response", path, required=False),
        reference=f"sendgrid event {key}",
        clues=Clues(message_id=message_id(text(event, "smtp-id", path, required=False))),
    )  # fmt: skip


def _kind(name: str, event: Mapping[str, Any], path: str) -> FeedbackKind | None:
    """What the event named `name` says of its address; None when it says nothing."""
    if name == "bounce":
        bounce = text(event, "type", path, required=False)
        if bounce == "blocked":  # the receiver refused this sender for now, not the address
            return FeedbackKind.SOFT
        if bounce == "bounce":
            return FeedbackKind.HARD
        status = text(event, "status", path, required=False)
        return FeedbackKind.SOFT if status.startswith("4") else FeedbackKind.HARD
    if name == "dropped":
        return _DROPPED.get(text(event, "reason", path, required=False))
    if name == "spamreport":
        return FeedbackKind.COMPLAINT
    if name == "delivered":
        return FeedbackKind.DELIVERED
    return None  # processed, deferred (SendGrid tries again), open, click, unsubscribes
