"""/webhooks/mailgun: Mailgun's signed events recorded once, anything else refused unchanged."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.webhooks import (
    JSON_VALUES,
    NOW,
    WebhookSite,
    as_json,
    mailgun_body,
    served_site,
)

KEY = "key-mailgun-test-signing-key"
TOKENS = (f"token-{number:044d}" for number in itertools.count())  # each signature its own
READER = "reader@example.org"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebhookSite]:
    """The site with Mailgun's signing key set."""
    yield from served_site(tmp_path, {"mailgun_signing_key": KEY})


def signed(
    event_data: Any, *, key: str = KEY, at: float = NOW.timestamp(), token: str = "t" * 50
) -> str:
    """A webhook body signed as Mailgun signs it, with `key` at `at`."""
    return mailgun_body(event_data, key=key, timestamp=str(int(at)), token=token)


def event(
    site: WebhookSite, name: str = "failed", severity: str = "permanent", **more: Any
) -> dict[str, Any]:
    """A Mailgun event about the edition's message to READER."""
    data: dict[str, Any] = {
        "id": "Ase7i2zsRYeDXztHGENqRA", "event": name, "timestamp": NOW.timestamp() - 60,
        "recipient": READER, "severity": severity, "reason": "bounce",
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
        # Mailgun gives the Message-ID without its angle brackets.
        "message": {"headers": {"message-id": site.message_id(READER).strip("<>")}},
    }  # fmt: skip
    return data | more


def test_a_permanent_failure_suppresses_the_subscriber_of_that_message(site: WebhookSite) -> None:
    """A signed `failed` permanent event: one hard bounce, attributed by Message-ID, suppressed."""
    answer = site.post("mailgun", signed(event(site)))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 1, "already_recorded": 0, "ignored": 0}
    assert site.events() == [
        ("mailgun:Ase7i2zsRYeDXztHGENqRA", "mailgun", "hard", READER, site.pk(READER),
         site.edition_id, "550"),
    ]  # fmt: skip
    assert site.suppressed() == {READER: "bounced"}


def test_the_same_webhook_again_changes_nothing(site: WebhookSite) -> None:
    """Mailgun retrying a delivered webhook: answered 200, nothing recorded twice."""
    body = signed(event(site))
    assert site.post("mailgun", body).status_code == 200
    before = site.store()
    again = site.post("mailgun", body)
    assert again.status_code == 200
    assert again.json() == {"recorded": 0, "already_recorded": 1, "ignored": 0}
    assert site.store() == before


@pytest.mark.parametrize(
    ("name", "severity", "kind", "suppressed"),
    [
        ("failed", "temporary", "soft", {}),
        ("complained", "", "complaint", {READER: "complained"}),
        ("delivered", "", "delivered", {}),
    ],
)
def test_each_kind_of_event(
    site: WebhookSite, name: str, severity: str, kind: str, suppressed: dict[str, str]
) -> None:
    """Temporary failures count as soft bounces, complaints suppress, deliveries are noted."""
    assert site.post("mailgun", signed(event(site, name, severity))).status_code == 200
    assert [row[2] for row in site.events()] == [kind]
    assert site.suppressed() == suppressed


def test_other_events_are_acknowledged_and_left_out(site: WebhookSite) -> None:
    """An `opened` event says nothing of the address: 200, nothing stored."""
    answer = site.post("mailgun", signed(event(site, "opened")))
    assert (answer.status_code, answer.json()["ignored"]) == (200, 1)
    assert site.store() == ([], {})


def test_an_unsigned_request_is_401_and_changes_nothing(site: WebhookSite) -> None:
    """No signature object: 401."""
    answer = site.post("mailgun", as_json({"event-data": event(site)}))
    assert answer.status_code == 401
    assert site.store() == ([], {})


@pytest.mark.parametrize(
    "fault", ["another key", "tampered body", "stale timestamp", "future timestamp"]
)
def test_a_badly_signed_request_is_403_and_changes_nothing(site: WebhookSite, fault: str) -> None:
    """Signed with another key, altered after signing, or signed outside the 15-minute window."""
    if fault == "another key":
        body = signed(event(site), key="key-someone-else")
    elif fault == "tampered body":  # the signature covers no event: its token is used once
        assert site.post("mailgun", signed(event(site, "delivered"))).status_code == 200
        before = site.store()
        answer = site.post(
            "mailgun", signed(event(site, id="forged")).replace(READER, "other@example.org")
        )
        assert answer.status_code == 403, answer.text
        assert site.store() == before
        return
    else:
        minutes = -16 if fault == "stale timestamp" else 16
        body = signed(event(site), at=NOW.timestamp() + minutes * 60)
    answer = site.post("mailgun", body)
    assert answer.status_code == 403, answer.text
    assert site.store() == ([], {})


def test_a_signature_within_the_window_is_accepted(site: WebhookSite) -> None:
    """Fourteen minutes off the server's clock is still inside the replay window."""
    answer = site.post("mailgun", signed(event(site), at=NOW.timestamp() - 14 * 60))
    assert answer.status_code == 200


def test_without_a_signing_key_the_webhook_is_not_there(tmp_path: Path) -> None:
    """An unset mailgun_signing_key: 404, even for a well-signed request."""
    for site in served_site(tmp_path, {}):
        answer = site.post("mailgun", signed(event(site)))
        assert answer.status_code == 404
        assert "not configured" in answer.json()["error"]
        assert site.store() == ([], {})


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("{not json", "not JSON"),
        ("[]", "body: expected an object"),
        (
            '{"signature": {"timestamp": "1", "token": "x", "signature": "y"}, "event-data": NaN}',
            "not JSON",
        ),
    ],
)
def test_a_body_that_is_not_mailgun_json_is_400_naming_the_fault(
    site: WebhookSite, body: str, named: str
) -> None:
    """Malformed JSON is a 400 that says what is wrong, never a 500."""
    answer = site.post("mailgun", body)
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_a_signed_event_missing_its_recipient_is_400_naming_the_field(site: WebhookSite) -> None:
    """A failure without a recipient names `event-data.recipient`."""
    data = event(site)
    del data["recipient"]
    answer = site.post("mailgun", signed(data))
    assert answer.status_code == 400
    assert answer.json()["error"] == "event-data.recipient: missing"
    assert site.store() == ([], {})


@settings(max_examples=60)
@given(data=JSON_VALUES, name=st.sampled_from(["failed", "complained", "delivered", "opened"]))
def test_any_signed_json_is_answered_without_a_server_error(
    site: WebhookSite, data: Any, name: str
) -> None:
    """Whatever the event-data holds, and in any field, the answer is 200 or 400."""
    shaped = (
        {"event": name, "severity": "permanent", "id": "x", "recipient": data}
        if name != "opened"
        else data
    )
    for body in (signed(data, token=next(TOKENS)), signed(shaped, token=next(TOKENS))):
        answer = site.post("mailgun", body)
        assert answer.status_code in (200, 400), answer.text


def test_a_body_past_the_limit_is_413_and_changes_nothing(site: WebhookSite) -> None:
    """A signed body of 5 MB is no provider's: refused before it is read whole."""
    answer = site.post("mailgun", signed(event(site, reason="x" * 5_000_000)))
    assert answer.status_code == 413
    assert site.store() == ([], {})
