"""Reading reports: DSNs, plain bounces, ARF complaints and auto-replies, each to its outcome."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from syndicate.feedback.classify import classify, status_from_text
from syndicate.feedback.intake import take_report
from syndicate.feedback.model import FeedbackKind
from syndicate.feedback.record import FeedbackRules
from syndicate.feedback.reports import UNREADABLE, parse_report
from syndicate.store.schema import feedback_event
from syndicate.subscribers import registry
from syndicate.subscribers.verp import MailRef, Verp
from tests.support.subscribers import add_subscribers

SAMPLES = Path(__file__).parent / "data" / "bounces"
HARD, SOFT, COMPLAINT, DELIVERED = (
    FeedbackKind.HARD, FeedbackKind.SOFT, FeedbackKind.COMPLAINT, FeedbackKind.DELIVERED,
)  # fmt: skip
ORIGINAL_IDS = {
    "dsn-postfix-user-unknown": ("aeaqcaaaaaaqfsvgmzra4ncnc4", "daily-en-2026-11-20.17"),
    "dsn-postfix-mailbox-full": ("", "daily-en-2026-11-20.18"),
    "dsn-exim-unrouteable": ("aeaqcaaaaaaqfsvgmznowhere", "weekly-en-2026-11-16.3"),
    "dsn-gmail-no-such-user": ("aeaqcaaaaaaqgmail4nc", "daily-en-2026-11-20.20"),
    "dsn-exchange-recipient-not-found": ("aeaqcaaaaaaqoutlook9", "daily-en-2026-11-20.21"),
    "dsn-yahoo-over-quota": ("aeaqcaaaaaaqyahoo7", "daily-en-2026-11-20.22"),
    "plain-exim-user-unknown": ("aeaqcaaaaaaqexim11", "daily-en-2026-11-20.23"),
    "plain-postfix-domain-not-found": ("aeaqcaaaaaaqpfx12", "monthly-en-2026-11-01.5"),
    "plain-gmail-account-disabled": ("aeaqcaaaaaaqgml13", "weekly-en-2026-11-16.9"),
    "plain-yahoo-mailbox-full": ("aeaqcaaaaaaqyh14", "daily-en-2026-11-20.24"),
    "plain-exchange-ndr-persian": ("aeaqcaaaaaaqexch15", "daily-fa-2026-11-20.15"),
    "plain-bounce-arabic-subject": ("aeaqcaaaaaaqar16", "daily-ar-2026-11-20.16"),
    "arf-yahoo-abuse": ("aeaqcaaaaaaqarf17", "daily-en-2026-11-20.25"),
    "arf-redacted-headers-only": ("aeaqcaaaaaaqarf18", "daily-ar-2026-11-20.26"),
}
# Each sample: what it reports, (kind, address, status) per recipient; or why it is ignored.
OUTCOMES: dict[str, list[tuple[FeedbackKind, str, str]] | str] = {
    "dsn-postfix-user-unknown": [(HARD, "gone@mail.example", "5.1.1")],
    "dsn-postfix-mailbox-full": [(SOFT, "full@mail.example", "5.2.2")],  # 5.x.x, yet soft
    "dsn-postfix-delayed": "delayed: not yet a failure",
    "dsn-exim-unrouteable": [(HARD, "someone@nowhere.example", "5.0.0")],
    "dsn-gmail-no-such-user": [(HARD, "nobody.here@gmail.com", "5.1.1")],
    "dsn-exchange-recipient-not-found": [(HARD, "missing@contoso.example", "5.1.10")],
    "dsn-yahoo-over-quota": [(SOFT, "stuffed@yahoo.com", "5.0.0")],  # 554 "over quota"
    "dsn-two-recipients": [
        (HARD, "first@mail.example", "5.1.1"),
        (SOFT, "second@mail.example", "4.2.2"),
        (DELIVERED, "third@mail.example", "2.0.0"),
    ],
    "plain-exim-user-unknown": [(HARD, "nosuch@old.example", "5.0.0")],
    "plain-exim-delayed": "delayed: not yet a failure",
    "plain-postfix-domain-not-found": [(HARD, "reader@typo-domain.example", "")],
    "plain-gmail-account-disabled": [(HARD, "closed.account@gmail.com", "5.2.1")],
    "plain-yahoo-mailbox-full": [(SOFT, "packed@yahoo.com", "5.0.0")],
    "plain-exchange-ndr-persian": [(HARD, "leila@corp.example", "5.1.1")],
    "plain-bounce-arabic-subject": [(HARD, "qari@hosting.example", "5.1.1")],
    "arf-yahoo-abuse": [(COMPLAINT, "annoyed@yahoo.example", "")],
    "arf-redacted-headers-only": [(COMPLAINT, "spamclicker@hotmail.example", "")],
    "arf-auth-failure": "not a complaint: auth-failure",
    "auto-reply-outlook-en": "auto-reply",
    "auto-reply-arabic-subject": "auto-reply",  # رد تلقائي, and no header says so
    "auto-reply-persian-subject": "auto-reply",  # پاسخ خودکار
    "auto-reply-vacation-precedence": "auto-reply",
    "not-a-report": "not a report",
    "plain-daemon-success-notice": "not a report",  # from MAILER-DAEMON, but nothing failed
}


def _sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def test_every_sample_has_its_expected_outcome() -> None:
    """The table covers every sample on disk, so a new sample cannot go unchecked."""
    assert sorted(path.stem for path in SAMPLES.glob("*.eml")) == sorted(OUTCOMES)


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_a_sample_reads_as_its_kind_address_and_status(name: str) -> None:
    """Each sample's recipients, kinds and status codes, or the reason it is ignored."""
    parsed = parse_report(_sample(name), reference=name)
    expected = OUTCOMES[name]
    if isinstance(expected, str):
        assert (parsed.ignored, parsed.feedback) == (expected, ())
        return
    assert parsed.ignored == ""
    assert [(one.kind, one.email, one.status) for one in parsed.feedback] == expected
    for one in parsed.feedback:
        assert one.reference == name
        assert one.diagnostic or one.kind is DELIVERED


@pytest.mark.parametrize("name", sorted(ORIGINAL_IDS))
def test_the_original_message_is_named_by_its_quoted_headers(name: str) -> None:
    """X-Syndicate-Mail and Message-ID come back from a returned part or from quoted text."""
    token, message_id = ORIGINAL_IDS[name]
    (first, *_) = parse_report(_sample(name)).feedback
    assert (first.clues.mail_token, first.clues.message_id) == (
        token,
        f"<{message_id}@news.example>",
    )


def test_the_envelope_recipient_is_the_verp_clue() -> None:
    """The address a report was delivered to is the VERP clue; without one, its Delivered-To."""
    raw = _sample("dsn-gmail-no-such-user")
    given_one = parse_report(raw, envelope_recipient="bounces+given@news.example")
    assert given_one.feedback[0].clues.verp_recipient == "bounces+given@news.example"
    from_header = parse_report(raw).feedback[0].clues.verp_recipient
    assert from_header == "bounces+aeaqcaaaaaaqgmail4nc@news.example"


def test_a_complaint_is_attributed_by_the_envelope_sender_it_names() -> None:
    """ARF's Original-Mail-From (the VERP sender the mail left with) is the strongest clue."""
    parsed = parse_report(_sample("arf-yahoo-abuse"), envelope_recipient="fbl@news.example")
    assert parsed.feedback[0].clues.verp_recipient == "bounces+aeaqcaaaaaaqarf17@news.example"


def test_diagnostics_keep_the_servers_words_on_one_line() -> None:
    """The stored diagnostic is the remote server's reply, folded onto one line."""
    (gmail,) = parse_report(_sample("dsn-gmail-no-such-user")).feedback
    assert gmail.diagnostic.startswith("550-5.1.1 The email account that you tried to reach")
    (exim,) = parse_report(_sample("plain-exim-user-unknown")).feedback
    assert exim.diagnostic.endswith("RCPT TO:<nosuch@old.example>: 550 No such user here")


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        ("5.1.1", "", HARD),
        ("", "550 Requested action not taken: user unknown", HARD),
        ("", "No such user here", HARD),
        ("5.1.2", "", HARD),
        ("", "Host or domain name not found", HARD),
        ("5.7.1", "rejected by policy", HARD),  # any other 5.x.x
        ("5.2.2", "", SOFT),  # mailbox full by definition
        ("5.0.0", "552 mailbox full", SOFT),  # the words overrule the class
        ("5.1.1", "user is over quota", SOFT),
        ("4.4.1", "connection timed out", SOFT),
        ("4.1.1", "user unknown, try later", SOFT),  # 4.x.x is temporary whatever it says
        ("", "something went wrong", SOFT),  # nothing to go on: counted, not suppressed at once
    ],
)
def test_hard_or_soft_by_status_and_words(status: str, text: str, kind: FeedbackKind) -> None:
    """5.x.x and missing users or domains are hard; full mailboxes and 4.x.x are soft."""
    assert classify(status, text) is kind


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("host mx[10.4.5.6] said: 550 5.1.1 <a@b.example>", "5.1.1"),
        ("from 192.0.2.25 at 5.1.1.1", ""),  # addresses and versions are no status
        ("Remote host said: 552 1 Requested mail action aborted", "5.0.0"),
        ("451 4.7.1 Greylisted", "4.7.1"),
        ("nothing here", ""),
    ],
)
def test_a_status_is_read_from_text(text: str, status: str) -> None:
    """An enhanced code, else the class of a reply code; never a piece of an IP address."""
    assert status_from_text(text) == status


def test_a_report_read_twice_is_recorded_once(sqlite_engine: Engine) -> None:
    """Taking in the same report again records nothing and suppresses no one anew."""
    add_subscribers(sqlite_engine, ["nobody.here@gmail.com"])
    verp = Verp("test secret")
    rules = FeedbackRules(verp=verp, bounce_address="bounces@news.example")
    found = registry.find_by_email(sqlite_engine, "nobody.here@gmail.com")
    assert found is not None
    recipient = verp.sender("bounces@news.example", MailRef(found.pk, "daily-en-2026-11-20"))
    raw = _sample("dsn-gmail-no-such-user")
    first = take_report(sqlite_engine, raw, rules, envelope_recipient=recipient)
    again = take_report(sqlite_engine, raw, rules, envelope_recipient=recipient)
    assert first.lines() == ["bounced hard nobody.here@gmail.com daily-en-2026-11-20"]
    assert again.lines() == [
        "bounced hard nobody.here@gmail.com daily-en-2026-11-20 (already recorded)"
    ]
    with sqlite_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(feedback_event)) == 1
    assert registry.suppression_reason(sqlite_engine, "nobody.here@gmail.com") == "bounced"


def _assert_data_only(raw: bytes) -> None:
    """Parsing `raw` neither raises nor fails inside, and yields one-line values only."""
    parsed = parse_report(raw, reference="r", envelope_recipient="bounces@news.example")
    assert not parsed.ignored.startswith(UNREADABLE)
    for one in parsed.feedback:
        values = [one.email, one.status, one.diagnostic, one.key, *vars_of(one.clues)]
        for value in values:  # no control character, no line or paragraph separator
            assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value), value
        assert len(one.email) <= 254


def vars_of(clues: object) -> list[str]:
    return [getattr(clues, name) for name in ("verp_recipient", "mail_token", "message_id")]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=4_000))
def test_any_bytes_are_read_without_raising(raw: bytes) -> None:
    """Arbitrary bytes are a report or an ignored message, never an error."""
    _assert_data_only(raw)


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    """A sample with bytes replaced, cut out or put in at random places."""
    raw = bytearray(_sample(draw(st.sampled_from(sorted(OUTCOMES)))))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(raw)))
        piece = draw(
            st.one_of(
                st.binary(max_size=40),
                st.sampled_from(
                    [b"\r\n", b"\n\n", b"\x00", b"--", b"Content-Type: message/rfc822\n",
                     b"Content-Type: multipart/report; boundary=x\n", b"=?utf-8?B?////?=",
                     b"\nFinal-Recipient: rfc822; a@b.example\r\nBcc: evil@x.example\n",
                     b"\xff\xfe", b"charset=unknown-8bit"]
                ),
            )
        )  # fmt: skip
        cut = draw(st.integers(0, 60))
        raw[at : at + cut] = piece
    return bytes(raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutated_samples())
def test_mutated_samples_are_read_without_raising(raw: bytes) -> None:
    """Broken boundaries, headers and encodings in real reports never raise; values stay data."""
    _assert_data_only(raw)


def test_an_injected_header_is_only_data() -> None:
    """A recipient field carrying a line break and a header yields the address alone."""
    raw = _sample("dsn-two-recipients").replace(
        b"Final-Recipient: rfc822; first@mail.example",
        b"Final-Recipient: rfc822; first@mail.example =?utf-8?Q?=0D=0ABcc:_evil@x.example?=",
    )
    emails = [one.email for one in parse_report(raw).feedback]
    assert emails == ["first@mail.example", "second@mail.example", "third@mail.example"]


def test_a_failure_after_days_of_delay_is_a_bounce_not_a_delay() -> None:
    """Words of delay in a notice that has given up do not hide the failure."""
    raw = _sample("plain-exim-user-unknown").replace(
        b"This is a permanent error.",
        b"It was delayed for 96 hours; retry timeout exceeded. This is a permanent error.",
    )
    assert [(one.kind, one.email) for one in parse_report(raw).feedback] == [
        (HARD, "nosuch@old.example")
    ]
