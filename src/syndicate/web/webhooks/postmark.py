"""Postmark's webhooks: one JSON record a request, behind HTTP Basic authentication.

Postmark sends the user name and password written into the webhook's URL settings; they are
[bounces.webhooks] postmark_username and postmark_password. Its bounce types are read as
Postmark documents them: a hard bounce and a bad address fail for good; soft bounces,
transient and DNS errors, full inboxes, blocks and spam filters for now (enough of them in
[bounces] soft_days suppress); auto-responders, address changes, challenge-response mail and
Postmark's own errors say nothing about the address and are left out. Its records carry no
headers of the message, but they do carry the metadata it was sent with: the send gives
Postmark each message's token (X-PM-Metadata-syndicate-mail), which names its subscriber and
edition here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers

from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.settings.bounces import WebhookSettings
from syndicate.web.webhooks.payload import address, mapping, moment, parse_json, text
from syndicate.web.webhooks.receiving import Events, Outside, Refused

METADATA_KEY = "syndicate-mail"  # the send's X-PM-Metadata-syndicate-mail header, handed back
CHALLENGE = {"www-authenticate": 'Basic realm="webhooks", charset="UTF-8"'}
# Bounce Type -> kind; types not listed (AutoResponder, AddressChange, Subscribe, Unsubscribe,
# ChallengeVerification, OpenRelayTest, ManuallyDeactivated, Unconfirmed, SMTPApiError,
# InboundError, TemplateRenderingFailed) are no news of the address.
BOUNCE_TYPES = {
    "HardBounce": FeedbackKind.HARD,
    "BadEmailAddress": FeedbackKind.HARD,
    "SoftBounce": FeedbackKind.SOFT,
    "Transient": FeedbackKind.SOFT,
    "DnsError": FeedbackKind.SOFT,
    "InboxFull": FeedbackKind.SOFT,
    "Blocked": FeedbackKind.SOFT,
    "DMARCPolicy": FeedbackKind.SOFT,
    "SpamNotification": FeedbackKind.SOFT,
    "VirusNotification": FeedbackKind.SOFT,
    "Unknown": FeedbackKind.SOFT,
    "SpamComplaint": FeedbackKind.COMPLAINT,
}


class Postmark:
    """The /webhooks/postmark endpoint's checks and reading."""

    provider = Provider.POSTMARK

    def __init__(self, settings: WebhookSettings, outside: Outside) -> None:
        """Check against [bounces.webhooks] postmark_username and postmark_password."""
        self._username = settings.postmark_username.encode()
        self._password = settings.postmark_password.get_secret_value().encode()
        self._outside = outside

    @property
    def configured(self) -> bool:
        """True when both the user name and the password are set."""
        return bool(self._username and self._password)

    async def read(self, headers: Headers, body: bytes) -> Events:
        """The event of an authenticated request."""
        self._check(headers.get("authorization", ""))
        return read_record(mapping(parse_json(body), "body"), self._outside)

    def _check(self, authorization: str) -> None:
        """Refused unless `authorization` is Basic with the configured user name and password."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise Refused(401, "HTTP Basic authentication is required", CHALLENGE)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        username, _, password = decoded.partition(b":")
        # Both compared, always, so the time taken tells nothing of which one was wrong.
        right_name = hmac.compare_digest(username, self._username)
        right_password = hmac.compare_digest(password, self._password)
        if not (right_name and right_password):
            raise Refused(403, "the user name or password is wrong")


def read_record(record: Mapping[str, Any], outside: Outside) -> Events:
    """The feedback in one Postmark record: Bounce, SpamComplaint or Delivery."""
    record_type = text(record, "RecordType", "body")
    if record_type == "Delivery":
        # A delivery record has no ID of its own: the message and its recipient name it.
        recipient = address(record, "Recipient", "body")
        key = f"{text(record, 'MessageID', 'body')}:{recipient}"
        return Events((Feedback(
            Provider.POSTMARK, FeedbackKind.DELIVERED, recipient, f"postmark:delivery:{key}",
            moment(record, "DeliveredAt", "body", outside.now()),
            diagnostic=text(record, "Details", "body", required=False),
            reference=f"postmark delivery {key}", clues=_clues(record),
        ),))  # fmt: skip
    if record_type not in ("Bounce", "SpamComplaint"):
        return Events(ignored=(f"record type {record_type[:40]}",))
    bounce_type = text(record, "Type", "body")
    kind = BOUNCE_TYPES.get(bounce_type)
    if kind is None:
        return Events(ignored=(f"bounce type {bounce_type[:40]}",))
    key = text(record, "ID", "body")
    return Events((Feedback(
        Provider.POSTMARK, kind, address(record, "Email", "body"), f"postmark:{key}",
        moment(record, "BouncedAt", "body", outside.now()),
        diagnostic=text(record, "Details", "body", required=False)
        or text(record, "Description", "body", required=False),
        reference=f"postmark bounce {key}", clues=_clues(record),
    ),))  # fmt: skip


def _clues(record: Mapping[str, Any]) -> Clues:
    """The message's token from the record's Metadata, when the send gave Postmark one."""
    metadata = record.get("Metadata")
    if metadata is None:
        return Clues()
    token = text(mapping(metadata, "body.Metadata"), METADATA_KEY, "body.Metadata", required=False)
    return Clues(mail_token=token[:200])
