"""Amazon SES notifications, delivered by an SNS topic's HTTPS subscription.

The request is an SNS message, checked by `sns` and from one of [bounces.webhooks]
ses_topic_arns. A SubscriptionConfirmation is answered by visiting its SubscribeURL; a
Notification carries SES's JSON: a Bounce (Permanent is hard; Transient and Undetermined are
soft), a Complaint, or a Delivery, each naming its recipients. SES's feedbackId keys a bounce
or complaint (the same event through two topics is one event); a delivery is keyed by SES's
message id and the recipient. When the topic is set to include the original headers, our
X-Syndicate-Mail header and the Message-ID attribute the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers

from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.settings.bounces import WebhookSettings
from syndicate.web.webhooks.payload import (
    Malformed,
    address,
    address_value,
    header_clues,
    items,
    mapping,
    message_id,
    moment,
    parse_json,
    text,
)
from syndicate.web.webhooks.receiving import Events, Outside, Refused
from syndicate.web.webhooks.sns import SIGNED_FIELDS, Certificates, amazon_url, fetch, verify

BOUNCE_TYPES = {
    "Permanent": FeedbackKind.HARD,
    "Transient": FeedbackKind.SOFT,
    "Undetermined": FeedbackKind.SOFT,
}
MAX_VISIT = 64 * 1024  # bytes of the SubscribeURL's answer read


class Ses:
    """The /webhooks/ses endpoint's checks and reading."""

    provider = Provider.SES

    def __init__(self, settings: WebhookSettings, outside: Outside) -> None:
        """Accept the topics of [bounces.webhooks] ses_topic_arns; reach Amazon via `outside`."""
        self._topics = frozenset(settings.ses_topic_arns)
        self._outside = outside
        self._certificates = Certificates(outside)

    @property
    def configured(self) -> bool:
        """True when at least one topic is accepted."""
        return bool(self._topics)

    async def read(self, headers: Headers, body: bytes) -> Events:
        """The events of a signed SNS message from an accepted topic."""
        message = mapping(parse_json(body), "body")
        if not all(isinstance(message.get(name), str) for name in
                   ("Signature", "SignatureVersion", "SigningCertURL")):  # fmt: skip
            raise Refused(401, "no signature: Signature, SignatureVersion, SigningCertURL required")
        kind = message.get("Type")
        if kind not in SIGNED_FIELDS:
            raise Malformed(f"body.Type: {str(kind)[:40]!r} is no SNS message type")
        if message.get("TopicArn") not in self._topics:
            raise Refused(403, "TopicArn is not one of [bounces.webhooks] ses_topic_arns")
        await verify(message, self._certificates)
        if kind == "SubscriptionConfirmation":
            url = amazon_url(str(message["SubscribeURL"]), "SubscribeURL")
            await fetch(self._outside, url, "SubscribeURL", MAX_VISIT)
            return Events(note="subscription confirmed")
        if kind == "UnsubscribeConfirmation":
            return Events(note="unsubscribed; nothing to do")
        carried = str(message["Message"]).encode("utf-8", "surrogatepass")
        notification = mapping(parse_json(carried, "body.Message"), "body.Message")
        return read_notification(notification, self._outside)


def read_notification(notification: Mapping[str, Any], outside: Outside) -> Events:
    """The feedback in one SES notification: one per recipient it names."""
    path = "body.Message"
    name = text(notification, "notificationType", path, required=False) or text(
        notification, "eventType", path, required=False
    )
    mail = mapping(notification.get("mail") or {}, f"{path}.mail")
    clues = _clues(mail, f"{path}.mail")
    if name == "Bounce":
        return _bounce(mapping(notification.get("bounce"), f"{path}.bounce"), clues, outside)
    if name == "Complaint":
        return _complaint(
            mapping(notification.get("complaint"), f"{path}.complaint"), clues, outside
        )
    if name == "Delivery":
        delivery = mapping(notification.get("delivery"), f"{path}.delivery")
        return _delivery(delivery, text(mail, "messageId", f"{path}.mail"), clues, outside)
    return Events(ignored=(f"notification {name[:40] or '(untyped)'}",))


def _bounce(bounce: Mapping[str, Any], clues: Clues, outside: Outside) -> Events:
    path = "body.Message.bounce"
    bounce_type = text(bounce, "bounceType", path)
    kind = BOUNCE_TYPES.get(bounce_type)
    if kind is None:
        raise Malformed(f"{path}.bounceType: {bounce_type[:40]!r} is not one SES sends")
    feedback_id = text(bounce, "feedbackId", path)
    occurred = moment(bounce, "timestamp", path, outside.now())
    subtype = text(bounce, "bounceSubType", path, required=False)
    found = []
    for number, recipient in enumerate(items(bounce.get("bouncedRecipients"),
                                             f"{path}.bouncedRecipients")):  # fmt: skip
        where = f"{path}.bouncedRecipients[{number}]"
        recipient = mapping(recipient, where)
        email = address(recipient, "emailAddress", where)
        found.append(Feedback(
            Provider.SES, kind, email, f"ses:{feedback_id}:{email}", occurred,
            status=text(recipient, "status", where, required=False),
            diagnostic=text(recipient, "diagnosticCode", where, required=False) or subtype,
            reference=f"ses feedback {feedback_id}", clues=clues,
        ))  # fmt: skip
    return Events(tuple(found))


def _complaint(complaint: Mapping[str, Any], clues: Clues, outside: Outside) -> Events:
    path = "body.Message.complaint"
    feedback_id = text(complaint, "feedbackId", path)
    occurred = moment(complaint, "timestamp", path, outside.now())
    diagnostic = text(complaint, "complaintFeedbackType", path, required=False)
    found = []
    for number, recipient in enumerate(items(complaint.get("complainedRecipients"),
                                             f"{path}.complainedRecipients")):  # fmt: skip
        where = f"{path}.complainedRecipients[{number}]"
        email = address(mapping(recipient, where), "emailAddress", where)
        found.append(Feedback(
            Provider.SES, FeedbackKind.COMPLAINT, email, f"ses:{feedback_id}:{email}", occurred,
            diagnostic=diagnostic, reference=f"ses feedback {feedback_id}", clues=clues,
        ))  # fmt: skip
    return Events(tuple(found))


def _delivery(delivery: Mapping[str, Any], ses_id: str, clues: Clues, outside: Outside) -> Events:
    path = "body.Message.delivery"
    occurred = moment(delivery, "timestamp", path, outside.now())
    diagnostic = text(delivery, "smtpResponse", path, required=False)
    found = []
    for number, recipient in enumerate(items(delivery.get("recipients"), f"{path}.recipients")):
        email = address_value(recipient, f"{path}.recipients[{number}]")
        found.append(Feedback(
            Provider.SES, FeedbackKind.DELIVERED, email, f"ses:{ses_id}:delivered:{email}",
            occurred, diagnostic=diagnostic, reference=f"ses message {ses_id}", clues=clues,
        ))  # fmt: skip
    return Events(tuple(found))


def _clues(mail: Mapping[str, Any], path: str) -> Clues:
    """Our token and the Message-ID from the original headers, when the topic includes them."""
    headers: dict[str, str] = {}
    for number, header in enumerate(items(mail.get("headers") or [], f"{path}.headers")):
        where = f"{path}.headers[{number}]"
        header = mapping(header, where)
        headers[text(header, "name", where)] = text(header, "value", where, required=False)
    clues = header_clues(headers)
    if clues.message_id:
        return clues
    common = mapping(mail.get("commonHeaders") or {}, f"{path}.commonHeaders")
    found = text(common, "messageId", f"{path}.commonHeaders", required=False)
    return Clues(mail_token=clues.mail_token, message_id=message_id(found))
