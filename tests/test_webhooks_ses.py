"""/webhooks/ses: SES notifications through SNS, signatures checked against Amazon's certificates.

Amazon cannot be reached from tests: `AmazonStandIn` (tests/support/webhooks.py) serves a
signing certificate issued by a test CA and answers subscription links, through the transport
the site fetches with, and signs messages as SNS does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.webhooks import (
    CERT_URL,
    JSON_VALUES,
    READERS,
    SUBSCRIBE_URL,
    TOPIC,
    WebhookSite,
    as_json,
    served_site,
)

READER, OTHER = READERS


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebhookSite]:
    """The site accepting TOPIC's notifications."""
    yield from served_site(tmp_path, {"ses_topic_arns": [TOPIC]})


def notification(
    ses: dict[str, Any], message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
) -> dict[str, Any]:
    """An unsigned SNS Notification carrying the SES notification `ses`."""
    return {
        "Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC,
        "Message": json.dumps(ses), "Timestamp": "2026-11-30T08:59:00.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }  # fmt: skip


def mail(site: WebhookSite, email: str, *, headers: bool = True) -> dict[str, Any]:
    """SES's `mail` object for the edition's message to `email`, with its headers if asked."""
    found: dict[str, Any] = {
        "timestamp": "2026-11-30T08:58:00.000Z", "source": "news@news.example",
        "messageId": "0100019c-ses-message-id", "destination": [email],
        "commonHeaders": {"messageId": site.message_id(email) if headers else ""},
    }  # fmt: skip
    if headers:
        found["headers"] = [
            {"name": "Message-ID", "value": site.message_id(email)},
            {"name": "X-Syndicate-Mail", "value": site.mail_token(email)},
        ]
    return found


def bounce(site: WebhookSite, bounce_type: str = "Permanent", *emails: str) -> dict[str, Any]:
    """SES's Bounce notification for `emails` (READER by default)."""
    emails = emails or (READER,)
    return {
        "notificationType": "Bounce", "mail": mail(site, emails[0]),
        "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General", "feedbackId": "0100-feedback",
            "timestamp": "2026-11-30T08:58:30.000Z",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
                                  for email in emails],
        },
    }  # fmt: skip


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_bounce_suppresses_the_subscriber_of_that_message(
    site: WebhookSite, version: str
) -> None:
    """SHA1withRSA and SHA256withRSA: a Permanent bounce is hard, attributed by our header."""
    # A topic may give its notifications a Subject, which the signature then covers.
    subject = {"Subject": "Amazon SES Email Event Notification"} if version == "2" else {}
    body = as_json(site.amazon.sign(notification(bounce(site)) | subject, version))
    answer = site.post("ses", body)
    assert answer.status_code == 200, answer.text
    assert site.events() == [
        (
            f"ses:0100-feedback:{READER}",
            "ses",
            "hard",
            READER,
            site.pk(READER),
            site.edition_id,
            "5.1.1",
        )
    ]
    assert site.suppressed() == {READER: "bounced"}


def test_without_headers_the_address_attributes(site: WebhookSite) -> None:
    """A topic set without original headers: the bounced address names the subscriber."""
    ses = bounce(site) | {"mail": mail(site, READER, headers=False)}
    assert site.post("ses", as_json(site.amazon.sign(notification(ses)))).status_code == 200
    assert [(row[3], row[4], row[5]) for row in site.events()] == [(READER, site.pk(READER), None)]


def test_the_same_notification_again_changes_nothing_and_fetches_no_certificate(
    site: WebhookSite,
) -> None:
    """SNS retrying: 200, nothing recorded twice, the certificate fetched once."""
    body = as_json(site.amazon.sign(notification(bounce(site, "Permanent", READER, OTHER))))
    first = site.post("ses", body)
    assert (first.status_code, first.json()["recorded"]) == (200, 2)
    before = site.store()
    again = site.post("ses", body)
    assert (again.status_code, again.json()["already_recorded"]) == (200, 2)
    assert site.store() == before
    assert site.amazon.requests == [CERT_URL]


@pytest.mark.parametrize(
    ("ses", "kind", "suppressed"),
    [
        ({"bounceType": "Transient"}, "soft", None),
        ({"bounceType": "Undetermined"}, "soft", None),
        ({"notificationType": "Complaint"}, "complaint", "complained"),
        ({"notificationType": "Delivery"}, "delivered", None),
        ({"notificationType": "Received"}, None, None),
    ],
)
def test_each_kind_of_notification(
    site: WebhookSite, ses: dict[str, str], kind: str | None, suppressed: str | None
) -> None:
    """Transient and Undetermined bounces are soft; complaints suppress; deliveries are noted."""
    found = bounce(site, ses.get("bounceType", "Permanent"))
    name = ses.get("notificationType", "Bounce")
    if name == "Complaint":
        found = {"notificationType": name, "mail": found["mail"], "complaint": {
            "feedbackId": "0100-complaint", "complaintFeedbackType": "abuse",
            "timestamp": "2026-11-30T08:58:30.000Z",
            "complainedRecipients": [{"emailAddress": READER}]}}  # fmt: skip
    elif name != "Bounce":
        found = {"notificationType": name, "mail": found["mail"], "delivery": {
            "timestamp": "2026-11-30T08:58:30.000Z", "recipients": [READER],
            "smtpResponse": "250 ok"}}  # fmt: skip
    assert site.post("ses", as_json(site.amazon.sign(notification(found)))).status_code == 200
    assert [row[2] for row in site.events()] == ([kind] if kind else [])
    assert site.suppressed() == ({READER: suppressed} if suppressed else {})


def test_a_subscription_confirmation_visits_the_subscribe_url(site: WebhookSite) -> None:
    """SNS's SubscriptionConfirmation, signed: the SubscribeURL is visited, nothing recorded."""
    message = {
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "t0k", "TopicArn": TOPIC, "SubscribeURL": SUBSCRIBE_URL,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "Timestamp": "2026-11-30T08:00:00.000Z",
    }  # fmt: skip
    answer = site.post("ses", as_json(site.amazon.sign(message)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["note"] == "subscription confirmed"
    assert site.amazon.requests == [CERT_URL, SUBSCRIBE_URL]
    assert site.store() == ([], {})


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("SigningCertURL", "https://evil.example/SimpleNotificationService-test.pem"),
        ("SigningCertURL", "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"),
        ("SigningCertURL", "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem"),
        ("SigningCertURL", "https://sns.eu-west-1.amazonaws.com@evil.example/cert.pem"),
        ("SigningCertURL", "https://s3.amazonaws.com/bucket/cert.pem"),
        ("SubscribeURL", "https://evil.example/?Action=ConfirmSubscription"),
    ],
)
def test_a_url_off_amazons_sns_hosts_is_refused_before_it_is_fetched(
    site: WebhookSite, field: str, url: str
) -> None:
    """A certificate or subscription link anywhere but https://sns.<region>.amazonaws.com: 403."""
    message = {
        "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t0k", "TopicArn": TOPIC,
        "SubscribeURL": SUBSCRIBE_URL, "Message": "subscribe", "Timestamp": "2026-11-30T08:00:00Z",
    }  # fmt: skip
    signed = site.amazon.sign(message | ({field: url} if field == "SubscribeURL" else {}))
    if field == "SigningCertURL":
        signed[field] = url
    answer = site.post("ses", as_json(signed))
    assert answer.status_code == 403, answer.text
    assert field in answer.json()["error"]
    assert all(url != requested for requested in site.amazon.requests)
    assert site.store() == ([], {})


def test_an_unsigned_notification_is_401_and_changes_nothing(site: WebhookSite) -> None:
    """No Signature: 401."""
    assert site.post("ses", as_json(notification(bounce(site)))).status_code == 401
    assert site.store() == ([], {})


@pytest.mark.parametrize(
    "fault", ["tampered message", "another topic", "signature of another", "version 3"]
)
def test_a_badly_signed_notification_is_403_and_changes_nothing(
    site: WebhookSite, fault: str
) -> None:
    """A message altered after signing, from a topic not ours, or signed in no known way: 403."""
    signed = site.amazon.sign(notification(bounce(site)))
    if fault == "tampered message":
        signed["Message"] = signed["Message"].replace("Permanent", "Transient")
    elif fault == "another topic":
        signed = site.amazon.sign(notification(bounce(site)) | {"TopicArn": TOPIC + "-other"})
    elif fault == "signature of another":
        signed["Signature"] = site.amazon.sign(notification(bounce(site), "other-id"))["Signature"]
    else:
        signed["SignatureVersion"] = "3"
    answer = site.post("ses", as_json(signed))
    assert answer.status_code == 403, answer.text
    assert site.store() == ([], {})


def test_without_topics_the_webhook_is_not_there(tmp_path: Path) -> None:
    """No ses_topic_arns: 404, and Amazon is not asked for anything."""
    for site in served_site(tmp_path, {}):
        assert (
            site.post("ses", as_json(site.amazon.sign(notification(bounce(site))))).status_code
            == 404
        )
        assert site.amazon.requests == []


@settings(max_examples=60)
@given(
    value=JSON_VALUES,
    where=st.sampled_from(["body", "Message", "bounce", "bouncedRecipients", "mail", "headers"]),
)
def test_any_signed_json_is_answered_without_a_server_error(
    site: WebhookSite, value: Any, where: str
) -> None:
    """Any body, or a signed notification with anything in any part: 200 or 400, never a 500."""
    ses = bounce(site)
    if where == "body":
        body = as_json(value)
    else:
        if where == "Message":
            ses = value
        elif where == "bounce":
            ses["bounce"] = value
        elif where == "bouncedRecipients":
            ses["bounce"]["bouncedRecipients"] = [value]
        elif where == "mail":
            ses["mail"] = value
        else:
            ses["mail"]["headers"] = [value]
        body = as_json(site.amazon.sign(notification(ses)))
    answer = site.post("ses", body)
    assert answer.status_code in (200, 400, 401), answer.text


def test_a_subscription_amazon_does_not_confirm_is_503_for_sns_to_try_again(
    site: WebhookSite,
) -> None:
    """A SubscribeURL on Amazon's host that does not answer 200: 503, so SNS sends it again."""
    message = {
        "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "gone", "TopicArn": TOPIC,
        "SubscribeURL": SUBSCRIBE_URL.replace("t0k", "gone"),
        "Message": "subscribe", "Timestamp": "2026-11-30T08:00:00Z",
    }  # fmt: skip
    answer = site.post("ses", as_json(site.amazon.sign(message)))
    assert answer.status_code == 503
    assert "SubscribeURL answered 404" in answer.json()["error"]
