"""/webhooks/postmark: Postmark's records behind Basic authentication, recorded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.webhooks import (
    JSON_VALUES,
    READERS,
    WebhookSite,
    as_json,
    basic_auth,
    served_site,
)

USER, PASSWORD = "postmark", "a long webhook password"
READER, OTHER = READERS


@pytest.fixture
def site(tmp_path: Path) -> Iterator[WebhookSite]:
    """The site with Postmark's user name and password set."""
    yield from served_site(tmp_path, {"postmark_username": USER, "postmark_password": PASSWORD})


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    """The Authorization header Postmark sends for credentials in the webhook URL."""
    return basic_auth(user, password)


def bounce(bounce_type: str = "HardBounce", **more: Any) -> dict[str, Any]:
    """A Postmark bounce record for READER, as its webhook posts it."""
    return {
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": bounce_type, "TypeCode": 1,
        "Name": "Hard bounce", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": READER, "From": "news@news.example", "BouncedAt": "2026-11-30T08:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Daily",
    } | more  # fmt: skip


def test_a_hard_bounce_suppresses_the_subscriber(site: WebhookSite) -> None:
    """An authenticated HardBounce: one event, attributed by address, suppressed."""
    answer = site.post("postmark", as_json(bounce()), basic())
    assert answer.status_code == 200, answer.text
    assert site.events() == [
        ("postmark:4323372036854775807", "postmark", "hard", READER, site.pk(READER), None, "")
    ]
    assert site.suppressed() == {READER: "bounced"}


def test_the_metadata_the_send_gave_postmark_names_subscriber_and_edition(
    site: WebhookSite,
) -> None:
    """Metadata {"syndicate-mail": token} attributes the record to its reader and edition."""
    other_token = site.mail_token(OTHER)  # an address the reader forwards to: the token decides
    record = bounce(Email="forwarded@elsewhere.example", Metadata={"syndicate-mail": other_token})
    assert site.post("postmark", as_json(record), basic()).status_code == 200
    [event] = site.events()
    assert event[3:6] == (OTHER, site.pk(OTHER), site.edition_id)
    assert site.suppressed() == {OTHER: "bounced"}


def test_the_same_record_again_changes_nothing(site: WebhookSite) -> None:
    """Postmark retrying: 200, nothing recorded twice."""
    assert site.post("postmark", as_json(bounce()), basic()).status_code == 200
    before = site.store()
    again = site.post("postmark", as_json(bounce()), basic())
    assert (again.status_code, again.json()["already_recorded"]) == (200, 1)
    assert site.store() == before


@pytest.mark.parametrize(
    ("record", "kind", "suppressed"),
    [
        (bounce("SoftBounce"), "soft", None),
        (bounce("DnsError"), "soft", None),
        (bounce("BadEmailAddress"), "hard", "bounced"),
        (bounce("SpamComplaint", RecordType="SpamComplaint"), "complaint", "complained"),
        (bounce("AutoResponder"), None, None),
        ({"RecordType": "Delivery", "MessageID": "883953f4", "Recipient": READER,
          "DeliveredAt": "2026-11-30T08:00:00Z", "Details": "Test delivery webhook details"},
         "delivered", None),
        ({"RecordType": "Open", "MessageID": "883953f4", "Recipient": READER}, None, None),
    ],
)  # fmt: skip
def test_each_kind_of_record(
    site: WebhookSite, record: dict[str, Any], kind: str | None, suppressed: str | None
) -> None:
    """Postmark's documented types: soft ones count, hard ones and complaints suppress."""
    assert site.post("postmark", as_json(record), basic()).status_code == 200
    assert [row[2] for row in site.events()] == ([kind] if kind else [])
    assert site.suppressed() == ({READER: suppressed} if suppressed else {})


@pytest.mark.parametrize("authorization", [None, "Bearer abc", ""])
def test_an_unauthenticated_request_is_401_and_changes_nothing(
    site: WebhookSite, authorization: str | None
) -> None:
    """No Basic credentials: 401 with a Basic challenge."""
    headers = {} if authorization is None else {"authorization": authorization}
    answer = site.post("postmark", as_json(bounce()), headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic ")
    assert site.store() == ([], {})


@pytest.mark.parametrize(
    "headers",
    [basic(password="wrong"), basic(user="someone"), basic(password=PASSWORD + "x"),
     {"authorization": "Basic !!!"}],
)  # fmt: skip
def test_wrong_credentials_are_403_and_change_nothing(
    site: WebhookSite, headers: dict[str, str]
) -> None:
    """A wrong user name or password: 403."""
    answer = site.post("postmark", as_json(bounce()), headers)
    assert answer.status_code == 403
    assert site.store() == ([], {})


def test_without_credentials_set_the_webhook_is_not_there(tmp_path: Path) -> None:
    """A user name without a password is not configured: 404."""
    for site in served_site(tmp_path, {"postmark_username": USER}):
        assert site.post("postmark", as_json(bounce()), basic()).status_code == 404


@settings(max_examples=60)
@given(
    value=JSON_VALUES,
    field=st.sampled_from(["RecordType", "ID", "Type", "Email", "BouncedAt", "Details"]),
)
def test_any_json_is_answered_without_a_server_error(
    site: WebhookSite, value: Any, field: str
) -> None:
    """Any body, or a record with any value in any field: 200 or 400, never a 500."""
    for body in (as_json(value), as_json(bounce() | {field: value})):
        answer = site.post("postmark", body, basic())
        assert answer.status_code in (200, 400), answer.text


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "yesterday", 1e300, True])
def test_a_time_that_is_none_is_400_naming_the_field(site: WebhookSite, moment: object) -> None:
    """A BouncedAt that is no time (or before year 1 once in UTC) is named, never a 500."""
    answer = site.post("postmark", as_json(bounce(BouncedAt=moment)), basic())
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("body.BouncedAt: not a time")
    assert site.store() == ([], {})
