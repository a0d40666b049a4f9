"""Confirmation mail as the subscription pages send it: the reader's language, safe headers, any address."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from syndicate.delivery.ledger import send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.send.confirmation import confirmation_sender
from syndicate.send.plan import plan_send
from syndicate.settings import MailSettings, Settings
from syndicate.store.leases import holder_name
from syndicate.store.schema import subscriber
from syndicate.subscribers.links import ConfirmationRequest
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.letters import CONFIRMATION_HEADERS
from tests.support.mail_reader import shown_name
from tests.support.subscribers import add_subscribers

CANCEL = "https://news.example/subscribe/unsubscribe?token=x&lang=en"  # a confirmation's one click


def outbox_settings(folder: Path) -> Settings:
    """Default settings with the outbox in `folder`."""
    return Settings().model_copy(update={"mail": MailSettings(outbox_dir=folder)})


def only_message(folder: Path) -> EmailMessage:
    """The single message in the Maildir `folder`."""
    [raw] = list(mailbox.Maildir(folder, create=False))
    parsed = message_from_bytes(raw.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("language", "subject", "direction"),
    [("en", "Confirm your subscription to", 'dir="ltr"'), ("ar", "أكّد اشتراكك في", 'dir="rtl"')],
)
def test_confirmation_mail_carries_the_link_in_the_readers_language(
    tmp_path: Path, language: str, subject: str, direction: str
) -> None:
    """The confirmation mail is in the reader's language, with the link in text and HTML."""
    send = confirmation_sender(outbox_settings(tmp_path / "outbox"))
    url = "https://news.example/subscribe/confirm?token=abc&lang=" + language
    send(ConfirmationRequest("reader@example.org", 'Ada "Ace" <Lovelace>', language, url, CANCEL))
    message = only_message(tmp_path / "outbox")
    assert message["Subject"].startswith(subject)
    assert message["To"].addresses[0].addr_spec == "reader@example.org"
    assert message["To"].addresses[0].display_name == 'Ada "Ace" <Lovelace>'
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert url in text
    assert url.replace("&", "&amp;") in html
    assert direction in html
    assert "&lt;Lovelace&gt;" in html


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?=",
        "=?utf-8?q?Eve=0D=0AReply-To:_x@evil.example=0D=0A=0D=0AClick_here?=",
        "=?UTF-8?B?RXZlDQpCY2M6IHhAZXZpbC5leGFtcGxl?=",
        '"=?utf-8?q?Eve=0ABcc:_x@evil.example?=" <x@evil.example>',
        "Eve =?iso-8859-1?q?=0D=0A?= Bcc",
    ],
)
def test_a_name_shaped_like_an_encoded_word_never_becomes_a_header(
    tmp_path: Path, name: str
) -> None:
    """The confirmation mail keeps its header set; the name reads back as the text it is."""
    send = confirmation_sender(outbox_settings(tmp_path / "outbox"))
    send(
        ConfirmationRequest("reader@example.org", name, "en", "https://news.example/c?t=1", CANCEL)
    )
    [raw] = [path.read_bytes() for path in (tmp_path / "outbox" / "new").iterdir()]
    head = raw.split(b"\n\n", 1)[0]
    assert [line.split(b":")[0] for line in head.split(b"\n") if not line.startswith(b" ")] == [
        b"Return-Path",
        b"Delivered-To",
        *(name.encode() for name in CONFIRMATION_HEADERS),
    ]
    message = only_message(tmp_path / "outbox")
    assert message["Bcc"] is None
    assert message["Reply-To"] is None
    [to] = message["To"].addresses
    assert to.addr_spec == "reader@example.org"
    assert shown_name(raw, "To") == name
    text = message.get_body(("plain",)).get_content()
    assert text.startswith(f"Hello {name},\n")


def test_a_confirmation_reaches_an_internationalised_address(tmp_path: Path) -> None:
    """A subscriber who typed a UTF-8 address gets the confirmation there (local delivery)."""
    send = confirmation_sender(outbox_settings(tmp_path / "outbox"))
    send(
        ConfirmationRequest(
            "رضا@xn--mgbh0fb.example", "رضا", "fa", "https://n.example/c?t=1", CANCEL
        )
    )
    [raw] = [path.read_bytes() for path in (tmp_path / "outbox" / "new").iterdir()]
    message = message_from_string(raw.decode("utf-8"), policy=policy.default)
    [to] = message["To"].addresses
    assert (to.addr_spec, to.display_name) == ("رضا@xn--mgbh0fb.example", "رضا")


@pytest.mark.parametrize(
    "value", ["a:b\r\nBcc: x@evil.example", "a:b:c:d:e", "{kind}:{other}", "a::b"]
)
def test_an_unsafe_feedback_id_is_refused_when_settings_load(value: str) -> None:
    """[mail] feedback_id must be header-safe Gmail form, or the settings do not load."""
    with pytest.raises(ValidationError, match="feedback_id"):
        MailSettings(feedback_id=value)


@pytest.mark.parametrize("value", ["", "{kind}:{language}:digest:syndicate"])
def test_feedback_id_is_in_every_mail_exactly_when_set(
    sqlite_engine: Engine, tmp_path: Path, value: str
) -> None:
    """Digests carry Feedback-ID with their kind and language; confirmations say so too."""
    settings = Settings().model_copy(
        update={"mail": MailSettings(outbox_dir=tmp_path / "outbox", feedback_id=value)}
    )
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine, language="ar")
    add_subscribers(sqlite_engine, ["a@example.org"])
    with sqlite_engine.begin() as connection:
        connection.execute(subscriber.update().values(language="ar"))
    transport = RecordingTransport()
    send_edition(
        sqlite_engine, plan_send(sqlite_engine, settings, edition, transport, None),
        holder=holder_name(),
    )  # fmt: skip
    digest = transport.sent[0].parsed()
    confirmation_sender(settings)(
        ConfirmationRequest("b@example.org", "", "fa", "https://news.example/c?t=1", CANCEL)
    )
    confirmation = only_message(tmp_path / "outbox")
    if value:
        assert digest.get_all("Feedback-ID") == ["daily:ar:digest:syndicate"]
        assert confirmation.get_all("Feedback-ID") == ["confirmation:fa:digest:syndicate"]
    else:
        assert "Feedback-ID" not in digest
        assert "Feedback-ID" not in confirmation
