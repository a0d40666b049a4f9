"""/webhooks/sendgrid: SendGrid's signed event batches recorded once, the rest refused unchanged."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.settings import Settings
from tests.support.webhooks import (
    JSON_VALUES,
    NOW,
    READERS,
    WebhookSite,
    as_json,
    sendgrid_headers,
    served_site,
)

SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())  # SendGrid's, made for this test run
PUBLIC_KEY = base64.b64encode(
    SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
READER, OTHER = READERS
TIMESTAMP = str(int(NOW.timestamp()))
ED25519_KEY = (
    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="  # a key of another kind
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebhookSite]:
    """The site with SendGrid's verification key set."""
    yield from served_site(tmp_path, {"sendgrid_public_key": PUBLIC_KEY})


def signature(body: str, key: ec.EllipticCurvePrivateKey = SIGNING_KEY) -> dict[str, str]:
    """The headers SendGrid signs a body with, by `key` at TIMESTAMP."""
    return sendgrid_headers(body, key, TIMESTAMP)


def event(site: WebhookSite, name: str, email: str = READER, **more: Any) -> dict[str, Any]:
    """A SendGrid event about the edition's message to `email`."""
    return {
        "email": email, "timestamp": int(NOW.timestamp()) - 60, "event": name,
        "smtp-id": site.message_id(email), "sg_event_id": f"sg-{name}-{email}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    } | more  # fmt: skip


def test_a_signed_batch_records_each_event_attributed_by_message_id(site: WebhookSite) -> None:
    """A bounce and a spam report in one batch: both attributed to the edition and suppressed."""
    body = as_json([
        event(site, "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 unknown user"),
        event(site, "spamreport", OTHER),
        event(site, "open", OTHER),
    ])  # fmt: skip
    answer = site.post("sendgrid", body, signature(body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 2, "already_recorded": 0, "ignored": 1}
    assert site.events() == [
        (f"sendgrid:sg-bounce-{READER}", "sendgrid", "hard", READER, site.pk(READER),
         site.edition_id, "5.1.1"),
        (f"sendgrid:sg-spamreport-{OTHER}", "sendgrid", "complaint", OTHER, site.pk(OTHER),
         site.edition_id, ""),
    ]  # fmt: skip
    assert site.suppressed() == {READER: "bounced", OTHER: "complained"}


def test_the_same_batch_again_changes_nothing(site: WebhookSite) -> None:
    """SendGrid retrying a batch: answered 200, nothing recorded twice."""
    body = as_json([event(site, "bounce", type="bounce", status="5.1.1")])
    assert site.post("sendgrid", body, signature(body)).status_code == 200
    before = site.store()
    again = site.post("sendgrid", body, signature(body))
    assert (again.status_code, again.json()["already_recorded"]) == (200, 1)
    assert site.store() == before


@pytest.mark.parametrize(
    ("fields", "kind", "suppressed"),
    [
        ({"event": "bounce", "type": "blocked", "status": "5.7.1"}, "soft", None),
        ({"event": "delivered", "response": "250 OK"}, "delivered", None),
        ({"event": "dropped", "reason": "Bounced Address"}, "hard", "bounced"),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, "complaint", "complained"),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, None, None),
        ({"event": "deferred", "response": "421 try later"}, None, None),
    ],
)
def test_each_kind_of_event(
    site: WebhookSite, fields: dict[str, str], kind: str | None, suppressed: str | None
) -> None:
    """Blocks are soft; drops for SendGrid's bounce and spam lists count; the rest is noise."""
    body = as_json([event(site, fields["event"]) | fields])
    assert site.post("sendgrid", body, signature(body)).status_code == 200
    assert [row[2] for row in site.events()] == ([kind] if kind else [])
    assert site.suppressed() == ({READER: suppressed} if suppressed else {})


def test_an_unsigned_batch_is_401_and_changes_nothing(site: WebhookSite) -> None:
    """No signature headers: 401."""
    body = as_json([event(site, "bounce", type="bounce")])
    answer = site.post("sendgrid", body, {"content-type": "application/json"})
    assert answer.status_code == 401
    assert site.store() == ([], {})


@pytest.mark.parametrize("fault", ["another key", "tampered body", "other timestamp", "not base64"])
def test_a_badly_signed_batch_is_403_and_changes_nothing(site: WebhookSite, fault: str) -> None:
    """Signed by another key, or the body or timestamp altered after signing."""
    body = as_json([event(site, "bounce", type="bounce")])
    headers = (
        signature(body, ec.generate_private_key(ec.SECP256R1()))
        if fault == "another key"
        else signature(body)
    )
    if fault == "tampered body":
        body = body.replace(READER, OTHER)
    elif fault == "other timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(TIMESTAMP) + 1)
    elif fault == "not base64":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%"
    answer = site.post("sendgrid", body, headers)
    assert answer.status_code == 403, answer.text
    assert site.store() == ([], {})


def test_without_a_public_key_the_webhook_is_not_there(tmp_path: Path) -> None:
    """An unset sendgrid_public_key: 404."""
    for site in served_site(tmp_path, {}):
        body = as_json([event(site, "bounce", type="bounce")])
        assert site.post("sendgrid", body, signature(body)).status_code == 404
        assert site.store() == ([], {})


@pytest.mark.parametrize(
    "key", ["not base64!", base64.b64encode(b"not a key").decode(), ED25519_KEY]
)
def test_a_key_that_is_not_sendgrids_stops_the_settings(key: str) -> None:
    """Garbage, or a key of another kind (Ed25519 here), fails at load, naming the setting."""
    with pytest.raises(ValueError, match=r"sendgrid_public_key[\s\S]*ECDSA P-256"):
        Settings(bounces={"webhooks": {"sendgrid_public_key": key}})


def test_a_batch_with_a_faulty_event_is_400_and_records_none(site: WebhookSite) -> None:
    """An event without its id names the field; the good event beside it waits for the fix."""
    bad = event(site, "bounce", OTHER, type="bounce")
    del bad["sg_event_id"]
    body = as_json([event(site, "spamreport"), bad])
    answer = site.post("sendgrid", body, signature(body))
    assert answer.status_code == 400
    assert answer.json()["error"] == "events[1].sg_event_id: missing"
    assert site.store() == ([], {})


@settings(max_examples=60)
@given(
    value=JSON_VALUES,
    name=st.sampled_from(["bounce", "dropped", "spamreport", "delivered", "processed"]),
    field=st.sampled_from(
        ["email", "timestamp", "sg_event_id", "type", "reason", "smtp-id", "status"]
    ),
)
def test_any_signed_json_is_answered_without_a_server_error(
    site: WebhookSite, value: Any, name: str, field: str
) -> None:
    """Any JSON body, or an event with any value in any field: 200 or 400, never a 500."""
    shaped = [
        {"event": name, "email": READER, "sg_event_id": "e", "reason": "Bounced Address"}
        | {field: value}
    ]
    for body in (as_json(value), as_json(shaped)):
        answer = site.post("sendgrid", body, signature(body))
        assert answer.status_code in (200, 400), answer.text


def test_hostile_text_in_events_is_stored_on_each_database(
    tmp_path: Path, database_url: str
) -> None:
    """NUL, controls, lone surrogates, a long reason and id: stored cleaned, on both databases."""
    for site in served_site(tmp_path, {"sendgrid_public_key": PUBLIC_KEY}, database_url):
        body = as_json([
            event(site, "bounce", type="bounce", status="5.1.1\x00\ud800", sg_event_id="a\x00b",
                  reason="line\r\nBcc: x@y\x00" + "é" * 20_000),
            event(site, "spamreport", OTHER, sg_event_id="s" * 500),
        ])  # fmt: skip
        answer = site.post("sendgrid", body, signature(body))
        assert answer.status_code == 200, answer.text
        assert [row[:4] for row in site.events()] == [
            ("sendgrid:a b", "sendgrid", "hard", READER),
            (f"sendgrid:{'s' * 500}"[:200], "sendgrid", "complaint", OTHER),
        ]
        assert site.suppressed() == {READER: "bounced", OTHER: "complained"}
