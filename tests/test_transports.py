"""Transports against real things: an aiosmtpd server on loopback, a Maildir on disk."""

from __future__ import annotations

import asyncio
import gc
import mailbox
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.message import Letter, build_message
from syndicate.delivery.outbox import OutboxTransport
from syndicate.delivery.ratelimit import RateLimiter
from syndicate.delivery.recording import RecordingTransport
from syndicate.delivery.smtp import SmtpTransport
from syndicate.delivery.transports import (
    PermanentFailure,
    SessionFailure,
    TransientFailure,
    Unsendable,
)
from syndicate.settings import MailSettings, SmtpSettings
from tests.support.certificates import write_certificate
from tests.support.mail_reader import read_back
from tests.support.ports import free_port
from tests.support.smtp_server import Recorder, Serve
from tests.support.waiting import wait_until

SENDER = "bounces@site.example"
LETTER = Letter(
    from_address="Syndicate Demo News <news@site.example>",
    to_email="reader@example.org",
    subject="Daily digest",
    text="Hello\n.a line that starts with a dot\n",
    html="<p>Hello</p>\n",
    list_id="daily.en.site.example",
    unsubscribe_url="https://site.example/unsubscribe/token",
)


# asyncio may wake a timer up to its clock's resolution early; a millisecond covers it.
CLOCK_SLACK = 0.001


def message_for(recipient: str) -> bytes:
    """A digest message to `recipient`."""
    return build_message(replace(LETTER, to_email=recipient))


def smtp(settings: SmtpSettings, **changes: Any) -> SmtpTransport:
    """An SMTP transport with test-sized backoff."""
    options = {"tls_context": changes.pop("tls_context", None)}
    return SmtpTransport(settings.model_copy(update=changes), backoff=0.001, **options)


def run(transport: SmtpTransport, *recipients: str) -> None:
    """Send one message to each recipient concurrently, then close the transport."""

    async def main() -> None:
        try:
            await asyncio.gather(
                *(transport.send(SENDER, rcpt, message_for(rcpt)) for rcpt in recipients)
            )
        finally:
            await transport.close()

    asyncio.run(main())


def test_smtp_delivers_the_message_and_envelope(serve: Serve) -> None:
    """The server gets the envelope and the message, dot-stuffing undone, byte for byte."""
    server, settings = serve()
    run(smtp(settings), "reader@example.org")
    [got] = server.received
    assert (got.sender, got.recipients) == (SENDER, ("reader@example.org",))
    sent = message_from_bytes(got.content, policy=policy.default)
    assert sent["To"] == "reader@example.org"
    body = sent.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == LETTER.text


def test_smtp_mends_messages_it_did_not_build(serve: Serve) -> None:
    """Plain bytes with LF line ends and leading dots arrive with CRLF and their dots."""
    server, settings = serve()
    raw = b"From: news@site.example\nSubject: x\n\n.\n..two\nlast"
    transport = smtp(settings)

    async def main() -> None:
        await transport.send(SENDER, "reader@example.org", raw)
        await transport.close()

    asyncio.run(main())
    assert server.received[0].content == raw.replace(b"\n", b"\r\n") + b"\r\n"


def test_pool_reuses_at_most_pool_size_connections(serve: Serve) -> None:
    """Forty messages through a pool of three use three connections, never more."""
    server, settings = serve()
    transport = smtp(settings, pool_size=3)
    run(transport, *(f"reader{n}@example.org" for n in range(40)))
    assert len(server.received) == 40
    assert len(server.peers) <= 3
    assert transport.stats.connections == len(server.peers)
    assert transport.stats.sent == 40


def test_sequential_messages_share_one_connection(serve: Serve) -> None:
    """One message after another reuses the connection the first one opened."""
    server, settings = serve()
    transport = smtp(settings, pool_size=4)

    async def main() -> None:
        for n in range(10):
            await transport.send(SENDER, f"r{n}@example.org", message_for(f"r{n}@example.org"))
        await transport.close()

    asyncio.run(main())
    assert len(server.received) == 10
    assert transport.stats.connections == 1


def test_4xx_replies_are_retried_until_accepted(serve: Serve) -> None:
    """Two 451 replies, then 250: delivered once, after two retries on the same connection."""
    server, settings = serve()
    server.rcpt_replies = ["451 4.7.1 greylisted, try later"] * 2
    transport = smtp(settings)
    run(transport, "reader@example.org")
    assert len(server.received) == 1
    assert transport.stats.retries == 2
    assert transport.stats.connections == 1


def test_4xx_replies_past_the_retries_are_a_transient_failure(serve: Serve) -> None:
    """More 4xx replies than retries: TransientFailure with the last code, nothing delivered."""
    server, settings = serve()
    server.data_replies = ["452 4.3.1 insufficient storage"] * 3
    transport = smtp(settings, retries=2)
    with pytest.raises(TransientFailure) as failure:
        run(transport, "reader@example.org")
    assert failure.value.code == 452
    assert transport.stats.retries == 2
    assert server.received == []


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_5xx_reply_is_a_permanent_failure_without_retry(serve: Serve, where: str) -> None:
    """A 550 to RCPT or a 554 to the message: PermanentFailure at once; the connection lives on."""
    server, settings = serve()
    if where == "rcpt":
        server.rcpt_replies = ["550 5.1.1 no such user"]
    else:
        server.data_replies = ["554 5.7.1 message refused"]
    transport = smtp(settings, pool_size=1)

    async def main() -> None:
        with pytest.raises(PermanentFailure) as failure:
            await transport.send(SENDER, "gone@example.org", message_for("gone@example.org"))
        assert failure.value.code == (550 if where == "rcpt" else 554)
        await transport.send(SENDER, "here@example.org", message_for("here@example.org"))
        await transport.close()

    asyncio.run(main())
    assert transport.stats.retries == 0
    assert transport.stats.refused == 1
    assert [got.recipients for got in server.received] == [("here@example.org",)]
    assert transport.stats.connections == 1


def test_dropped_connection_is_reopened_and_the_message_retried(serve: Serve) -> None:
    """The server drops the connection mid-transaction: a new one carries the message."""
    server, settings = serve()
    server.drops = 1
    transport = smtp(settings, pool_size=1)
    run(transport, "reader@example.org")
    assert len(server.received) == 1
    assert transport.stats.retries == 1
    assert transport.stats.connections == 2


def test_unreachable_server_is_a_transient_failure(serve: Serve) -> None:
    """Nothing listening: TransientFailure after the retries, no exception of aiosmtplib's."""
    _, settings = serve()
    transport = smtp(settings, port=free_port(), retries=1)
    with pytest.raises(TransientFailure, match="cannot connect"):
        run(transport, "reader@example.org")
    assert transport.stats.retries == 1


def test_envelope_addresses_cannot_inject_commands(serve: Serve) -> None:
    """A recipient with CR LF is refused before anything is sent, and is no server's bounce."""
    server, settings = serve()
    transport = smtp(settings)
    hostile = "reader@example.org>\r\nRCPT TO:<victim@example.org"
    with pytest.raises(Unsendable):
        asyncio.run(transport.send(SENDER, hostile, message_for("reader@example.org")))
    assert server.received == []
    assert server.peers == set()


def test_an_internationalised_address_goes_out_with_smtputf8(serve: Serve) -> None:
    """A UTF-8 local part: MAIL FROM asks for SMTPUTF8, RCPT and To carry it in UTF-8."""
    server, settings = serve(enable_SMTPUTF8=True)
    transport = smtp(settings)
    run(transport, "üñí@xn--exmple-cua.com", "plain@example.org")
    got = {message.recipients: message for message in server.received}
    utf8 = got[("üñí@xn--exmple-cua.com",)]
    assert utf8.smtputf8
    assert read_back(utf8.content)["To"].addresses[0].addr_spec == "üñí@xn--exmple-cua.com"
    plain = got[("plain@example.org",)]
    assert not plain.smtputf8  # only the message that needs it asks for it
    assert plain.content.split(b"\r\n\r\n", 1)[0].isascii()


def test_without_smtputf8_an_internationalised_address_is_unsendable(serve: Serve) -> None:
    """A server that does not offer SMTPUTF8: Unsendable, saying so, and no command is sent."""
    server, settings = serve(enable_SMTPUTF8=False)
    transport = smtp(settings, pool_size=1)

    async def main() -> None:
        with pytest.raises(Unsendable, match=r"needs SMTPUTF8, which the server .* does not offer"):
            await transport.send(SENDER, "رضا@example.org", message_for("رضا@example.org"))
        await transport.send(SENDER, "next@example.org", message_for("next@example.org"))
        await transport.close()

    asyncio.run(main())
    assert [got.recipients for got in server.received] == [("next@example.org",)]
    assert (transport.stats.retries, transport.stats.refused, transport.stats.connections) == (
        0,
        0,
        1,
    )


@pytest.mark.parametrize("offered", [False, True])
@pytest.mark.parametrize("stored", ["plain@exämple.com", "plain@xn--exmple-cua.com"])
def test_an_idn_domain_needs_no_smtputf8(serve: Serve, offered: bool, stored: str) -> None:
    """An ASCII local part at an IDN domain goes out in A-labels, SMTPUTF8 or not."""
    server, settings = serve(enable_SMTPUTF8=offered)
    run(smtp(settings), stored)
    [got] = server.received
    assert (got.recipients, got.smtputf8) == (("plain@xn--exmple-cua.com",), False)
    assert got.content.split(b"\r\n\r\n", 1)[0].isascii()


def test_a_server_slower_than_the_timeout_is_given_up_on(serve: Serve) -> None:
    """A reply later than `timeout` abandons the try on that connection: a TransientFailure."""
    server, settings = serve()
    server.gate = threading.Event()  # the server never answers DATA: only the timeout ends a try
    transport = smtp(settings, timeout=0.2, retries=1, pool_size=1)
    try:
        with pytest.raises(TransientFailure, match="connection lost"):
            run(transport, "reader@example.org")
    finally:
        server.gate.set()
    assert server.received == []
    assert transport.stats.retries == 1
    assert transport.stats.connections == 2


@dataclass
class OptionsRecorder(Recorder):
    """Records the MAIL FROM options of each message it accepts."""

    options: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Note the options, then accept as Recorder does."""
        self.options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


def test_every_message_announces_its_size_even_the_first_on_a_connection() -> None:
    """The session is greeted with EHLO on connecting, so the first MAIL FROM has SIZE too."""
    recorder = OptionsRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5, pool_size=1)
        run(smtp(settings), "first@example.org", "second@example.org")
    finally:
        controller.stop()
    sizes = [len(message_for(rcpt)) for rcpt in ("first@example.org", "second@example.org")]
    assert sorted(recorder.options) == sorted([[f"SIZE={size}"] for size in sizes])


def test_rate_limiter_never_exceeds_its_rate() -> None:
    """However callers crowd in, start times in any T seconds number at most rate * T + 1."""
    now = [0.0]
    limiter = RateLimiter(50, clock=lambda: now[0])
    starts = []
    for step in range(500):
        now[0] = step * 0.003  # callers arrive faster than 50 a second
        starts.append(now[0] + limiter.reserve())
    for first in range(len(starts)):
        for span in (0.1, 0.5, 1.0):
            inside = sum(1 for start in starts[first:] if start < starts[first] + span)
            assert inside <= 50 * span + 1
    assert RateLimiter(0).reserve() == 0.0


def test_smtp_rate_limit_spaces_messages(serve: Serve) -> None:
    """At 40 a second across four connections, the n-th message is taken n/40 s after the start.

    The limiter gives each message a start time at least 1/40 s after the one before, from the
    moment the send begins; a slow machine only makes a message later, never earlier.
    """
    server, settings = serve()
    transport = smtp(settings, pool_size=4, rate_per_second=40)
    started = time.monotonic()
    run(transport, *(f"r{n}@example.org" for n in range(20)))
    taken = sorted(message.at for message in server.received)
    assert len(taken) == 20
    early = [n for n, at in enumerate(taken) if at - started < n / 40 - CLOCK_SLACK]
    assert early == [], f"messages {early} came sooner than 1/40 s after the one before"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    write_certificate(cert_file, key_file)
    return cert_file, key_file


def tls_contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with the certificate, and a client context that trusts it."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*certificate)
    client = ssl.create_default_context(cafile=str(certificate[0]))
    return server, client


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept the login syndicate / secret, refuse any other."""
    assert isinstance(auth_data, LoginPassword)
    ok = (auth_data.login, auth_data.password) == (b"syndicate", b"secret")
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


@pytest.fixture
def collect_garbage() -> Iterator[None]:
    """Collect garbage when the test ends, so what it leaked is reported as its own."""
    yield
    gc.collect()


def login_over_starttls(
    serve: Serve, certificate: tuple[Path, Path], password: str
) -> tuple[Recorder, SmtpTransport]:
    """A server that demands STARTTLS and a login, and a transport logging in with `password`."""
    server_tls, client_tls = tls_contexts(certificate)
    server, settings = serve(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    transport = smtp(
        settings,
        security="starttls",
        username="syndicate",
        password=SecretStr(password),
        tls_context=client_tls,
    )
    return server, transport


def test_starttls_with_login(serve: Serve, certificate: tuple[Path, Path]) -> None:
    """security=starttls upgrades the connection, then logs in, then sends."""
    server, transport = login_over_starttls(serve, certificate, "secret")
    run(transport, "reader@example.org")
    [got] = server.received
    assert got.tls
    assert got.login == b"syndicate"


# aiosmtplib leaves the socket of a session refused during STARTTLS or AUTH to the garbage
# collector (the transport has closed its side). Collect it inside the test, so the warning is
# this test's and expected, not a random later test's failure.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.usefixtures("collect_garbage")
def test_wrong_login_is_a_session_failure(serve: Serve, certificate: tuple[Path, Path]) -> None:
    """A refused login says so at once (535), without retries, as a SessionFailure."""
    server, transport = login_over_starttls(serve, certificate, "wrong")
    with pytest.raises(SessionFailure) as failure:
        run(transport, "reader@example.org")
    assert failure.value.code == 535
    assert transport.stats.retries == 0
    assert server.received == []


# aiosmtplib leaves the socket of a session refused during STARTTLS or AUTH to the garbage
# collector (the transport has closed its side). Collect it inside the test, so the warning is
# this test's and expected, not a random later test's failure.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.usefixtures("collect_garbage")
def test_plain_session_where_starttls_is_required_is_a_session_failure(
    serve: Serve, certificate: tuple[Path, Path]
) -> None:
    """security=none against a server requiring STARTTLS: MAIL is refused, a SessionFailure."""
    server_tls, _ = tls_contexts(certificate)
    server, settings = serve(tls_context=server_tls, require_starttls=True)
    transport = smtp(settings, security="none")
    with pytest.raises(SessionFailure):
        run(transport, "reader@example.org")
    assert server.received == []


def test_implicit_tls(serve: Serve, certificate: tuple[Path, Path]) -> None:
    """security=tls speaks TLS from the first byte (port 465 style)."""
    server_tls, client_tls = tls_contexts(certificate)
    server, settings = serve(ssl_context=server_tls)
    run(smtp(settings, security="tls", tls_context=client_tls), "reader@example.org")
    [got] = server.received
    assert got.tls


def test_outbox_writes_a_maildir_that_mailbox_reads(tmp_path: Path) -> None:
    """Messages land in a new Maildir (created with its parents) with their envelope."""
    folder = tmp_path / "var" / "outbox"
    outbox = OutboxTransport(folder)

    async def main() -> None:
        for n in range(3):
            rcpt = f"reader{n}@example.org"
            await outbox.send(SENDER, rcpt, message_for(rcpt))
        await outbox.close()

    asyncio.run(main())
    assert {entry.name for entry in folder.iterdir()} == {"cur", "new", "tmp"}
    assert list((folder / "tmp").iterdir()) == []
    box = mailbox.Maildir(folder, factory=None, create=False)
    stored = sorted(box, key=lambda message: str(message["Delivered-To"]))
    assert [str(message["Delivered-To"]) for message in stored] == [
        f"reader{n}@example.org" for n in range(3)
    ]
    assert all(message["Return-Path"] == f"<{SENDER}>" for message in stored)
    assert all(message["Subject"] == "Daily digest" for message in stored)


def test_outbox_refuses_unsafe_envelope_addresses(tmp_path: Path) -> None:
    """An address with CR LF cannot add a header to the stored file."""
    outbox = OutboxTransport(tmp_path / "outbox")
    with pytest.raises(Unsendable):
        asyncio.run(outbox.send(SENDER, "a@example.org\r\nX-Evil: 1", message_for("a@example.org")))
    assert list((tmp_path / "outbox" / "new").iterdir()) == []


def test_outbox_keeps_internationalised_addresses(tmp_path: Path) -> None:
    """A local delivery needs no SMTPUTF8: the envelope and To keep the UTF-8 address."""
    outbox = OutboxTransport(tmp_path / "outbox")
    asyncio.run(outbox.send(SENDER, "üñí@exämple.com", message_for("üñí@exämple.com")))
    [name] = [entry.name for entry in (tmp_path / "outbox" / "new").iterdir()]
    content = (tmp_path / "outbox" / "new" / name).read_bytes()
    assert content.startswith(
        f"Return-Path: <{SENDER}>\nDelivered-To: üñí@xn--exmple-cua.com\n".encode()
    )
    stored = read_back(content.replace(b"\n", b"\r\n"))
    assert stored["To"].addresses[0].addr_spec == "üñí@xn--exmple-cua.com"


def test_an_outbox_that_cannot_be_written_defers_the_message(tmp_path: Path) -> None:
    """A Maildir that cannot take a file is a TransientFailure, tried again by the next send."""
    outbox = OutboxTransport(tmp_path / "outbox")
    (tmp_path / "outbox" / "tmp").rmdir()
    (tmp_path / "outbox" / "tmp").write_text("a file where the folder should be")
    with pytest.raises(TransientFailure, match="cannot write to the outbox"):
        asyncio.run(outbox.send(SENDER, "a@example.org", message_for("a@example.org")))


def test_recording_transport_keeps_messages_and_raises_what_it_is_told() -> None:
    """RecordingTransport records sends in order and fails the recipients it names."""
    refused = PermanentFailure(550, "no such user")
    recording = RecordingTransport(failures={"gone@example.org": refused})

    async def main() -> None:
        await recording.send(SENDER, "a@example.org", message_for("a@example.org"))
        with pytest.raises(PermanentFailure):
            await recording.send(SENDER, "gone@example.org", message_for("gone@example.org"))
        await recording.close()

    asyncio.run(main())
    assert [sent.recipient for sent in recording.sent] == ["a@example.org"]
    assert recording.to("a@example.org")[0].parsed()["Subject"] == "Daily digest"
    assert recording.closed


def test_transport_from_settings(tmp_path: Path) -> None:
    """The outbox by default, in [mail] outbox_dir; SMTP when [mail] transport says so."""
    outbox = transport_from_settings(MailSettings(outbox_dir=tmp_path / "box"))
    assert isinstance(outbox, OutboxTransport)
    assert outbox.path == tmp_path / "box"
    relay = transport_from_settings(
        MailSettings(transport="smtp", smtp=SmtpSettings(host="relay.example", pool_size=7))
    )
    assert isinstance(relay, SmtpTransport)
    assert (relay.settings.host, relay.settings.pool_size) == ("relay.example", 7)


def held_send(
    transport: SmtpTransport, recipient: str, message: bytes
) -> tuple[asyncio.Future[None], asyncio.Task[None]]:
    """Start sending `message` to `recipient` behind a gate not yet done; the gate and the send."""
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sending = asyncio.create_task(transport.send(SENDER, recipient, message, before_delivery=gate))
    return gate, sending


def body_arrived(server: Recorder, message: bytes) -> bool:
    """Whether the server has read all of `message` (CRLF lines) but for the final dot."""
    last_line = message.rstrip(b"\r\n").rpartition(b"\n")[2]
    return bytes(server.arrived).endswith(last_line + b"\r\n")


def test_the_final_dot_waits_for_the_previous_record(serve: Serve) -> None:
    """The message goes out at once, but the server takes it only once the gate is done."""
    server, settings = serve()
    transport = smtp(settings, pool_size=1)

    async def main() -> None:
        message = message_for("a@example.org")
        gate, sending = held_send(transport, "a@example.org", message)
        await wait_until(lambda: body_arrived(server, message), "the message but its final dot")
        assert server.received == []  # envelope and body sent, the dot held back
        assert not sending.done()
        gate.set_result(None)
        await sending
        assert [got.recipients for got in server.received] == [("a@example.org",)]
        await transport.close()

    asyncio.run(main())


def test_a_failed_gate_means_the_message_is_not_delivered(serve: Serve) -> None:
    """If the record before it cannot be committed, the message is abandoned before its dot."""
    server, settings = serve()
    transport = smtp(settings, pool_size=1)

    async def main() -> None:
        message = message_for("a@example.org")
        gate, sending = held_send(transport, "a@example.org", message)
        await wait_until(lambda: body_arrived(server, message), "the message but its final dot")
        gate.set_exception(RuntimeError("the ledger cannot be written"))
        with pytest.raises(RuntimeError, match="ledger"):
            await sending
        await transport.send(SENDER, "b@example.org", message_for("b@example.org"))
        await transport.close()

    asyncio.run(main())
    assert [got.recipients for got in server.received] == [("b@example.org",)]
