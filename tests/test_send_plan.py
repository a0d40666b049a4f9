"""Planning and sending an edition: the pending count, the ledger's outcomes, any list, RTL mail."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, message_from_string, policy
from pathlib import Path

import idna
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from sqlalchemy import delete as sql_delete

from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.ledger import pending_count, send_edition
from syndicate.delivery.message import MessageError
from syndicate.delivery.recording import RecordingTransport
from syndicate.delivery.smtp import SmtpTransport
from syndicate.delivery.transports import PermanentFailure
from syndicate.send.plan import plan_send
from syndicate.settings import MailSettings, Settings, SmtpSettings
from syndicate.store.leases import holder_name
from syndicate.store.schema import delivery, subscriber, suppression
from syndicate.subscribers import registry
from syndicate.subscribers.registry import Choices, Preferences
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.ledger import ledger
from tests.support.newsroom import DAY, Newsroom, subscribers_csv
from tests.support.smtp_server import Serve
from tests.support.subscribers import add_subscribers, confirmed


def test_arabic_edition_goes_out_right_to_left(tmp_path: Path, serve: Serve) -> None:
    """An Arabic subscriber gets the Arabic edition: RTL HTML and an encoded Arabic subject."""
    server, settings = serve()
    room = Newsroom(tmp_path, settings.port, 0)
    (tmp_path / "ar.csv").write_text(subscribers_csv(["ali@example.org,علي,ar,daily,"]))
    room.cli("subscribers", "import", str(tmp_path / "ar.csv"), "--confirmed")
    built = room.cli("digest", "build", "daily", "--date", DAY, "--lang", "ar")
    edition = built.stdout.split()[-1]
    sent = room.cli("digest", "send", edition)
    assert sent.returncode == 0, sent.stderr
    [received] = server.received
    assert b"Subject: =?utf-8?" in received.content
    message = message_from_bytes(received.content, policy=policy.default)
    assert any("\u0600" <= char <= "\u06ff" for char in message["Subject"])
    html = message.get_body(("html",)).get_content()
    assert 'dir="rtl"' in html
    assert "علي" in html


def test_the_pending_count_matches_what_a_send_pages_through(engine: Engine) -> None:
    """Counting in one query agrees with paging: the ledger's done, deferred and the suppressed."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    choices = Choices(("en", "ar"), ("daily", "weekly"))
    people = []
    for n in range(12):
        language, kinds = (
            ("ar", ("daily",)) if n == 0 else ("en", ("daily",) if n != 1 else ("weekly",))
        )
        people.append(
            confirmed(engine, f"r{n}@example.org", Preferences(language, kinds), choices).pk
        )
    registry.subscribe(engine, "waiting@example.org", Preferences("en", ("daily",)), choices)
    with engine.begin() as connection:
        registry.suppress(connection, "r2@example.org", "bounced", "550")
        moment = datetime.now(UTC)
        for pk, status in zip(people[3:6], ("sent", "bounced", "deferred"), strict=True):
            connection.execute(
                insert(delivery).values(
                    edition_id=edition.id, subscriber_pk=pk, status=status, message_id="<m@x>",
                    detail="", at=moment,
                )
            )  # fmt: skip
    plan = plan_send(engine, Settings(), edition, RecordingTransport(), None)
    assert pending_count(engine, plan) == (7, 2)  # 9 receive it; 2 are done, 1 is deferred
    assert pending_count(engine, replace(plan, count=None)) == (7, 2)


def test_a_send_records_every_outcome_in_theledger(engine: Engine) -> None:
    """On each database: sent and bounced rows with their times, the bounce suppressed, no repeat."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    choices = Choices(("en",), ("daily",))
    for n in range(5):
        confirmed(engine, f"r{n}@example.org", choices=choices)
    transport = RecordingTransport({"r3@example.org": PermanentFailure(550, "no such user")})
    plan = plan_send(engine, Settings(), edition, transport, None)
    started = datetime.now(UTC)
    holder = holder_name()
    report = send_edition(engine, plan, holder=holder)
    assert (report.sent, report.failed) == (4, 1)
    with engine.connect() as connection:
        rows = connection.execute(
            select(delivery.c.subscriber_pk, delivery.c.status, delivery.c.at).where(
                delivery.c.edition_id == edition.id
            )
        ).all()
    assert sorted(status for _, status, _ in rows) == ["bounced", "sent", "sent", "sent", "sent"]
    assert all(started - timedelta(seconds=1) <= at <= datetime.now(UTC) for _, _, at in rows)
    assert registry.is_suppressed(engine, "r3@example.org")
    again = send_edition(
        engine, plan_send(engine, Settings(), edition, transport, None), holder=holder
    )
    assert (again.sent, again.skipped, again.suppressed) == (0, 4, 1)  # the bounce is left out
    assert len(transport.sent) == 4


# One recipient never stops a send ---------------------------------------------------------


class BrokenSigner(DkimSigner):
    """A signer whose key fails on one recipient's message, as a broken HSM or library might."""

    def __init__(self, failing: str) -> None:
        """Fail to sign the message to `failing`; leave the others unsigned."""
        self.failing = failing.encode()

    def sign(self, message: bytes) -> bytes:  # type: ignore[override]
        """The message as it is, or an error for the failing recipient's."""
        if b"\r\nTo: " + self.failing + b"\r\n" in message:
            raise ValueError("the signing key is unavailable")
        return message


def test_a_message_that_cannot_be_made_is_failed_and_everyone_else_is_mailed(
    sqlite_engine: Engine,
) -> None:
    """An unusable address and an unsignable message are recorded failed; the send goes on."""
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    people = [
        "first@example.org",
        "two words@example.org",
        "unsigned@example.org",
        "üñí@exämple.com",
        "last@example.org",
    ]
    add_subscribers(sqlite_engine, people)
    transport = RecordingTransport()
    plan = plan_send(
        sqlite_engine, Settings(), edition, transport, BrokenSigner("unsigned@example.org")
    )
    holder = holder_name()
    report = send_edition(sqlite_engine, plan, holder=holder)
    assert (report.sent, report.failed) == (3, 2)
    assert [sent.recipient for sent in transport.sent] == [
        "first@example.org",
        "üñí@exämple.com",
        "last@example.org",
    ]
    outcomes = ledger(sqlite_engine, edition.id)
    assert outcomes["two words@example.org"][0] == "failed"
    assert "not a usable email address" in outcomes["two words@example.org"][1]
    assert outcomes["unsigned@example.org"] == (
        "failed",
        "cannot compose the message: the signing key is unavailable",
    )
    assert not registry.is_suppressed(sqlite_engine, "unsigned@example.org"), "no bounce"
    later = RecordingTransport()  # the key mended: failed messages are tried again
    again = send_edition(
        sqlite_engine, plan_send(sqlite_engine, Settings(), edition, later, None), holder=holder
    )
    assert (again.sent, again.failed, again.skipped) == (1, 1, 3)
    assert [sent.recipient for sent in later.sent] == ["unsigned@example.org"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("from_address", "News <news@site example>"), ("unsubscribe_mailto", "leave at site")],
)
def test_a_setting_no_message_can_carry_stops_the_send_before_anyone(
    sqlite_engine: Engine, key: str, value: str
) -> None:
    """What every message shares is checked once: a bad From refuses the send, not each reader."""
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    add_subscribers(sqlite_engine, ["a@example.org"])
    settings = Settings().model_copy(update={"mail": MailSettings(**{key: value})})
    with pytest.raises(MessageError):
        plan_send(sqlite_engine, settings, edition, RecordingTransport(), None)


def smtp_settings(settings: SmtpSettings) -> Settings:
    """Default settings sending through `settings`' server."""
    return Settings().model_copy(
        update={
            "mail": MailSettings(transport="smtp", smtp=settings.model_copy(update={"retries": 0}))
        }
    )


@pytest.mark.parametrize("offered", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_an_internationalised_subscriber_is_mailed_or_failed_as_the_server_allows(
    sqlite_engine: Engine, serve: Serve, offered: bool
) -> None:
    """With SMTPUTF8 the UTF-8 address is mailed; without, it is failed with the reason."""
    server, smtp = serve(enable_SMTPUTF8=offered)
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    add_subscribers(sqlite_engine, ["a@example.org", "üñí@xn--exmple-cua.com", "z@exämple.com"])
    settings = smtp_settings(smtp)
    plan = plan_send(sqlite_engine, settings, edition, SmtpTransport(settings.mail.smtp), None)
    report = send_edition(sqlite_engine, plan, holder=holder_name())
    delivered = ["a@example.org", "z@xn--exmple-cua.com"]
    if offered:
        delivered.insert(1, "üñí@xn--exmple-cua.com")
    assert sorted(server.addresses()) == sorted(delivered)
    assert (report.sent, report.failed) == (len(delivered), 3 - len(delivered))
    status, detail = ledger(sqlite_engine, edition.id)["üñí@xn--exmple-cua.com"]
    if offered:
        assert status == "sent"
    else:
        assert status == "failed"
        assert "needs SMTPUTF8, which the server" in detail
        assert "does not offer" in detail


# Hypothesis: a list of every kind of address, sent to a real server ------------------------

ATEXT = st.sampled_from([*"abcxyz0189", *"!#$%&'*+/=^_`{|}~-"])
ASCII_LOCALS = st.lists(st.text(ATEXT, min_size=1, max_size=6), min_size=1, max_size=3).map(
    ".".join
)
UTF8_LOCALS = (
    st.lists(
        st.text(
            st.sampled_from([*"abc09+_-", "ü", "ñ", "ω", "ب", "ی", "中", "é"]),
            min_size=1,
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    )
    .map(".".join)
    .filter(lambda local: not local.isascii())
)
ASCII_DOMAINS = st.sampled_from(
    ["example.org", "mail.example.co.uk", "xn--exmple-cua.com", "localhost"]
)
IDN_DOMAINS = st.sampled_from(["exämple.com", "bücher.example", "موقع.example"])
# Never allowed anywhere in an address, so putting one in breaks any address.
BREAKERS = st.sampled_from(
    [" ", "\r", "\n", "\r\n", "\x00", "\t", '"', "\\", ",", ";", ":", "<", ">", "(", ")", "[",
     "]", "@", "\u2028", "\u0085", "\x7f", "\r\nBcc: victim@evil.example"]
)  # fmt: skip


@st.composite
def subscriber_list(draw: st.DrawFn) -> list[tuple[str, str]]:
    """(address as stored, what should become of it) for a mixed list, each address unique.

    ascii / idn: delivered, to the address in A-labels; refused: delivered but refused by the
    server (bounced); utf8: needs SMTPUTF8; broken: no message can be made for it.
    """
    people: list[tuple[str, str]] = []
    for number in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["ascii", "idn", "utf8", "broken", "refused"]))
        tag = f"n{number}"
        if kind in ("ascii", "refused"):
            address = f"{tag}{draw(ASCII_LOCALS)}@{draw(ASCII_DOMAINS)}"
        elif kind == "idn":
            address = f"{tag}{draw(ASCII_LOCALS)}@{draw(IDN_DOMAINS)}"
        elif kind == "utf8":
            address = f"{tag}{draw(UTF8_LOCALS)}@{draw(ASCII_DOMAINS | IDN_DOMAINS)}"
        else:
            base = f"{tag}{draw(ASCII_LOCALS | UTF8_LOCALS)}@{draw(ASCII_DOMAINS | IDN_DOMAINS)}"
            at = draw(st.integers(0, len(base)))
            address = base[:at] + draw(BREAKERS) + base[at:]
        people.append((address, kind))
    return people


def a_labels(address: str) -> str:
    """The address with its domain in A-labels, as it goes on the wire."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{idna.encode(domain, uts46=True).decode()}"


def wipe(engine: Engine) -> None:
    """Remove every subscriber, suppression and ledger row, for the next list."""
    with engine.begin() as connection:
        for table in (delivery, suppression, subscriber):
            connection.execute(sql_delete(table))


@pytest.mark.parametrize("offered", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_any_list_reaches_each_deliverable_address_once_and_records_the_rest(
    sqlite_engine: Engine, serve: Serve, offered: bool
) -> None:
    """Any mix of addresses: each deliverable one gets one message, each other one a reason."""
    server, smtp = serve(enable_SMTPUTF8=offered)
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    settings = smtp_settings(smtp)
    # One plan for every list: the edition is compiled once; each list gets its own transport.
    plan = plan_send(sqlite_engine, settings, edition, RecordingTransport(), None)
    holder = holder_name()

    @hyp_settings(max_examples=40)
    @given(people=subscriber_list())
    def send_to(people: list[tuple[str, str]]) -> None:
        wipe(sqlite_engine)
        server.received.clear()
        server.refuse = {
            a_labels(address): "550 5.1.1 no such user"
            for address, kind in people
            if kind == "refused"
        }
        add_subscribers(sqlite_engine, [address for address, _ in people])
        transport = SmtpTransport(settings.mail.smtp)
        report = send_edition(
            sqlite_engine,
            replace(
                plan,
                send=lambda out, gate: transport.send(
                    out.envelope_from, out.recipient, out.data, before_delivery=gate
                ),
                finish=transport.close,
            ),
            holder=holder,
        )
        deliverable = {"ascii", "idn", "utf8"} if offered else {"ascii", "idn"}
        expected = Counter(a_labels(address) for address, kind in people if kind in deliverable)
        assert Counter(server.addresses()) == expected
        for message in server.received:
            [rcpt] = message.recipients
            assert message.smtputf8 == (not rcpt.isascii())
            head = message.content.split(b"\r\n\r\n", 1)[0].decode("utf-8")
            parsed = message_from_string(message.content.decode("utf-8"), policy=policy.default)
            assert [a.addr_spec for a in parsed["To"].addresses] == [rcpt]
            assert head.isascii() == rcpt.isascii()
        outcomes = ledger(sqlite_engine, edition.id)
        assert len(outcomes) == len(people)  # one record each, whatever became of them
        for address, kind in people:
            status, detail = outcomes[address]
            if kind in deliverable:
                assert (status, detail) == ("sent", ""), address
            elif kind == "refused":
                assert status == "bounced"
                assert "550" in detail
                assert registry.suppression_reason(sqlite_engine, address) == "bounced"
            elif kind == "utf8":
                assert status == "failed"
                assert "needs SMTPUTF8, which the server" in detail
            else:
                assert status == "failed"
                assert detail.startswith("cannot compose the message: not a usable email")
        assert report.sent == sum(expected.values())
        assert report.failed == len(people) - report.sent

    send_to()
