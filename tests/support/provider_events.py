"""Provider webhooks for end-to-end tests: a bounce and a complaint, signed as each provider signs.

Each builder takes the messages a send really produced (tests/support/feedback_loop.Sent) and
returns the requests the provider would post about them: SES through SNS (signed by Amazon's
stand-in, tests/support/webhooks.py), Postmark (HTTP Basic), Mailgun (HMAC of timestamp and
token) and SendGrid (ECDSA over timestamp and body). The secrets are the tests' own, and
`WEBHOOK_SECRETS` sets all four on a site; `serve_webhooks` serves that site on uvicorn.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine

from syndicate.settings import Settings
from syndicate.web.site import create_site
from syndicate.web.webhooks.receiving import Outside
from tests.support.feedback_loop import Sent
from tests.support.ports import free_port
from tests.support.web_server import serve_in_thread
from tests.support.webhooks import (
    NOW,
    TOPIC,
    AmazonStandIn,
    as_json,
    basic_auth,
    mailgun_body,
    sendgrid_headers,
)

POSTMARK_USER, POSTMARK_PASSWORD = "postmark", "a long webhook password"
MAILGUN_KEY = "key-mailgun-test-signing-key"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())  # SendGrid's, made for this test run
WEBHOOK_SECRETS: dict[str, Any] = {
    "ses_topic_arns": [TOPIC],
    "postmark_username": POSTMARK_USER,
    "postmark_password": POSTMARK_PASSWORD,
    "mailgun_signing_key": MAILGUN_KEY,
    "sendgrid_public_key": base64.b64encode(
        SENDGRID_KEY.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode(),
}
STAMP = int(NOW.timestamp()) - 60  # when the events happened: a minute before the site's clock
WHEN = "2026-11-30T08:59:00.000Z"


@dataclass(frozen=True)
class Post:
    """One webhook request: its body, its headers, and how many events it carries."""

    body: str
    headers: dict[str, str]
    events: int = 1


@dataclass(frozen=True)
class WebhookServer:
    """The served site's URL and Amazon's stand-in (which signs what SNS would post)."""

    url: str
    amazon: AmazonStandIn

    def post(self, provider: str, post: Post) -> httpx.Response:
        """POST `post` to /webhooks/{provider}."""
        return httpx.post(f"{self.url}/webhooks/{provider}", content=post.body.encode(),
                          headers=post.headers, timeout=30)  # fmt: skip


@contextmanager
def serve_webhooks(engine: Engine, settings: Settings) -> Iterator[WebhookServer]:
    """The site `syndicate serve` builds on `engine`, served by uvicorn, Amazon stood in for."""
    amazon = AmazonStandIn()
    outside = Outside(transport=amazon.transport, clock=NOW.timestamp)
    site = create_site(engine, settings, outside=outside)
    with contextmanager(serve_in_thread)(site, free_port()) as url:
        yield WebhookServer(url, amazon)


# Amazon SES, through SNS -------------------------------------------------------------------


def ses_posts(amazon: AmazonStandIn, bounced: Sent, complained: Sent) -> list[Post]:
    """A Permanent bounce and an abuse complaint, each an SNS notification SNS signed."""
    bounce = {
        "notificationType": "Bounce", "mail": _ses_mail(bounced),
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "feedbackId": "0100-bounce-feedback", "timestamp": WHEN,
                   "bouncedRecipients": [{"emailAddress": bounced.email, "action": "failed",
                                          "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
    }  # fmt: skip
    complaint = {
        "notificationType": "Complaint", "mail": _ses_mail(complained),
        "complaint": {"feedbackId": "0100-complaint-feedback", "timestamp": WHEN,
                      "complaintFeedbackType": "abuse", "userAgent": "Yahoo!-Mail-Feedback/2.0",
                      "complainedRecipients": [{"emailAddress": complained.email}]},
    }  # fmt: skip
    return [_sns(amazon, bounce, "sns-bounce-1"), _sns(amazon, complaint, "sns-complaint-1")]


def _ses_mail(sent: Sent) -> dict[str, Any]:
    """SES's `mail` object, its topic set to include the original headers."""
    return {
        "timestamp": "2026-11-30T08:58:00.000Z", "source": sent.envelope_sender,
        "messageId": f"0100019c-ses-{sent.email}", "destination": [sent.email],
        "headersTruncated": False,
        "headers": [{"name": name, "value": value} for name, value in sent.header_fields()],
        "commonHeaders": {"messageId": sent.message_id, "to": [sent.email]},
    }  # fmt: skip


def _sns(amazon: AmazonStandIn, ses: dict[str, Any], message_id: str) -> Post:
    notification = {
        "Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
        "Message": json.dumps(ses), "Timestamp": WHEN,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }  # fmt: skip
    headers = {"content-type": "text/plain; charset=UTF-8",
               "x-amz-sns-message-type": "Notification"}  # fmt: skip
    return Post(as_json(amazon.sign(notification)), headers)


# Postmark ----------------------------------------------------------------------------------


def postmark_posts(amazon: AmazonStandIn, bounced: Sent, complained: Sent) -> list[Post]:
    """A HardBounce record and a SpamComplaint record, behind Postmark's Basic credentials."""
    bounce = {
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
        "Name": "Hard bounce", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "MessageStream": "outbound", "Email": bounced.email, "BouncedAt": WHEN,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "From": "news@site.example", "Subject": str(bounced.message["Subject"]),
        "Inactive": True, "CanActivate": True, "DumpAvailable": True,
        "Metadata": {"syndicate-mail": bounced.postmark_metadata},
    }  # fmt: skip
    complaint = bounce | {
        "RecordType": "SpamComplaint", "ID": 4323372036854775808, "Type": "SpamComplaint",
        "TypeCode": 512, "Name": "Spam complaint", "Email": complained.email,
        "MessageID": "a4909a96-73d2-4000-8b4c-3d0ab3bb7bd4", "Details": "",
        "Description": "The subscriber explicitly marked this message as spam.",
        "Metadata": {"syndicate-mail": complained.postmark_metadata},
    }  # fmt: skip
    headers = basic_auth(POSTMARK_USER, POSTMARK_PASSWORD)
    return [Post(as_json(bounce), headers), Post(as_json(complaint), headers)]


# Mailgun -----------------------------------------------------------------------------------


def mailgun_posts(amazon: AmazonStandIn, bounced: Sent, complained: Sent) -> list[Post]:
    """A `failed` permanent event and a `complained` event, each signed with its own token."""
    failed = {
        "id": "mg-failed-Ase7i2zsRYeDXztHGENqRA", "event": "failed", "severity": "permanent",
        "reason": "bounce", "timestamp": STAMP, "recipient": bounced.email,
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1",
                            "message": "5.1.1 The email account does not exist"},
        "message": {"headers": _mailgun_headers(bounced)},
    }  # fmt: skip
    complaint = {
        "id": "mg-complained-Bse7i2zsRYeDXztHGENqRB", "event": "complained",
        "timestamp": STAMP, "recipient": complained.email,
        "message": {"headers": _mailgun_headers(complained)},
    }  # fmt: skip
    return [mailgun_signed(failed, "t" * 50), mailgun_signed(complaint, "u" * 50)]


def _mailgun_headers(sent: Sent) -> dict[str, str]:
    """The original's headers as Mailgun gives them: its Message-ID without angle brackets."""
    return {"to": sent.email, "message-id": sent.message_id.strip("<>"),
            "from": str(sent.message["From"]), "subject": str(sent.message["Subject"])}  # fmt: skip


def mailgun_signed(event_data: dict[str, Any], token: str) -> Post:
    """A webhook body signed as Mailgun signs it: hex HMAC-SHA256 of timestamp + token."""
    timestamp = str(int(NOW.timestamp()))
    body = mailgun_body(event_data, key=MAILGUN_KEY, timestamp=timestamp, token=token)
    return Post(body, {"content-type": "application/json"})


# SendGrid ----------------------------------------------------------------------------------


def sendgrid_posts(amazon: AmazonStandIn, bounced: Sent, complained: Sent) -> list[Post]:
    """One signed batch: a bounce and a spam report, each naming its message's Message-ID."""
    events = [
        {"email": bounced.email, "timestamp": STAMP, "event": "bounce", "type": "bounce",
         "status": "5.1.1", "reason": "550 5.1.1 The email account does not exist",
         "smtp-id": bounced.message_id, "sg_event_id": "sg-bounce-1",
         "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},
        {"email": complained.email, "timestamp": STAMP, "event": "spamreport",
         "smtp-id": complained.message_id, "sg_event_id": "sg-spamreport-1",
         "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1"},
    ]  # fmt: skip
    body = as_json(events)
    headers = sendgrid_headers(body, SENDGRID_KEY, str(int(NOW.timestamp())))
    return [Post(body, headers, events=2)]


PostsFor = Callable[[AmazonStandIn, Sent, Sent], list[Post]]
# provider -> the requests it posts about a bounced message and a complained-of one
PROVIDER_POSTS: dict[str, PostsFor] = {
    "ses": ses_posts,
    "postmark": postmark_posts,
    "mailgun": mailgun_posts,
    "sendgrid": sendgrid_posts,
}
