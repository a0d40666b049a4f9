"""VERP on the way out: each digest and confirmation leaves from an envelope sender naming its mail.

With `[mail] bounce_address` set, SMTP's MAIL FROM (and the outbox's Return-Path) is
`bounces+TOKEN@domain`, the token signed with the secret key the links are signed with and
naming the subscriber and the edition; the same token rides in the X-Syndicate-Mail header.
"""

from __future__ import annotations

import base64
import mailbox
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine

from syndicate.delivery import headers
from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.ledger import send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.delivery.smtp import SmtpTransport
from syndicate.send.plan import plan_send
from syndicate.settings import MailSettings, Settings, SettingsError, load_settings
from syndicate.store import open_database
from syndicate.store.leases import holder_name
from syndicate.subscribers import registry
from syndicate.subscribers.verp import CONFIRMATION, MAIL_REF_HEADER, MailRef, Verp
from syndicate.web.site import create_site
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.ports import free_port
from tests.support.sites import SECRET, site_settings
from tests.support.smtp_server import Serve
from tests.support.subscribers import add_subscribers
from tests.support.waiting import wait_for
from tests.support.web_server import serve_in_thread

BOUNCES = "bounces@news.example"
PEOPLE = ["ada@example.org", "bob@example.org", "cy@example.org"]


def mail_settings(**changes: object) -> Settings:
    """Default settings signed with SECRET, [mail] changed as given."""
    fields: dict[str, object] = {"bounce_address": BOUNCES, **changes}
    return Settings(security={"secret_key": SECRET}, mail=MailSettings(**fields))  # type: ignore[arg-type]


def pks(engine: Engine) -> dict[str, int]:
    """Each of PEOPLE's subscriber pk."""
    found = {email: registry.find_by_email(engine, email) for email in PEOPLE}
    return {email: person.pk for email, person in found.items() if person is not None}


def sent_edition(engine: Engine, settings: Settings, transport: object) -> str:
    """Send the daily English edition to PEOPLE through `transport`; its id."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    add_subscribers(engine, PEOPLE)
    plan = plan_send(engine, settings, edition, transport, None)  # type: ignore[arg-type]
    report = send_edition(engine, plan, holder=holder_name())
    assert report.sent == len(PEOPLE)
    return edition.id


def token_of(raw: bytes) -> str:
    """The X-Syndicate-Mail header of a raw message."""
    return str(message_from_bytes(raw, policy=policy.default)[MAIL_REF_HEADER])


def test_the_header_name_is_the_one_reports_are_read_for() -> None:
    """The delivery room writes the header under the name subscribers.verp reads it by."""
    assert headers.MAIL_REF_NAME == MAIL_REF_HEADER


def test_each_digest_leaves_over_smtp_from_a_verp_address_naming_its_reader(
    sqlite_engine: Engine, serve: Serve
) -> None:
    """MAIL FROM is bounces+TOKEN@…, one per reader, reading back as reader and edition."""
    server, smtp = serve()
    settings = mail_settings(transport="smtp", smtp=smtp)
    edition_id = sent_edition(sqlite_engine, settings, SmtpTransport(settings.mail.smtp))
    verp = Verp(SECRET)
    by_address = pks(sqlite_engine)
    senders = set()
    for received in server.received:
        [recipient] = received.recipients
        assert re.fullmatch(r"bounces\+[a-z2-7]+@news\.example", received.sender)
        assert len(received.sender.partition("@")[0]) <= 64
        ref = verp.read_address(BOUNCES, received.sender)
        assert ref == MailRef(by_address[recipient], edition_id)
        assert token_of(received.content) == received.sender[len("bounces+") :].partition("@")[0]
        senders.add(received.sender)
    assert len(senders) == len(PEOPLE)


def test_without_a_bounce_address_the_envelope_sender_stays_the_from_address(
    sqlite_engine: Engine,
) -> None:
    """No VERP: MAIL FROM is the From address, and the header still names each message."""
    transport = RecordingTransport()
    edition_id = sent_edition(sqlite_engine, mail_settings(bounce_address=""), transport)
    by_address = pks(sqlite_engine)
    for sent in transport.sent:
        assert sent.envelope_from == "news@site.example"
        ref = Verp(SECRET).read(token_of(sent.message))
        assert ref == MailRef(by_address[sent.recipient], edition_id)


def test_the_outbox_writes_the_verp_sender_as_return_path(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """A Maildir copy starts with the VERP Return-Path a local delivery would write."""
    settings = mail_settings(outbox_dir=tmp_path / "outbox")
    edition_id = sent_edition(sqlite_engine, settings, transport_from_settings(settings.mail))
    by_address = pks(sqlite_engine)
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    assert len(box) == len(PEOPLE)
    for raw in (box.get_bytes(key) for key in box.iterkeys()):
        found = re.match(rb"Return-Path: <([^>]+)>\nDelivered-To: (\S+)\n", raw)
        assert found is not None
        sender, recipient = found.group(1).decode(), found.group(2).decode()
        assert Verp(SECRET).read_address(BOUNCES, sender) == MailRef(
            by_address[recipient], edition_id
        )


def dkim_key() -> tuple[DkimSigner, bytes]:
    """A signer for site.example and the DNS record of its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimSigner("site.example", "syndicate", pem), b"v=DKIM1; k=rsa; p=" + base64.b64encode(
        public
    )


def test_a_signed_digest_verifies_and_leaves_the_token_unsigned(sqlite_engine: Engine) -> None:
    """DKIM signs the headers it always did; the self-signed token is not among them."""
    signer, record = dkim_key()
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    add_subscribers(sqlite_engine, PEOPLE[:1])
    transport = RecordingTransport()
    plan = plan_send(sqlite_engine, mail_settings(), edition, transport, signer)
    send_edition(sqlite_engine, plan, holder=holder_name())
    [sent] = transport.sent

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"syndicate._domainkey.site.example." else None

    assert dkim.verify(sent.message, dnsfunc=txt)
    signature = str(sent.parsed()["DKIM-Signature"])
    signed = re.search(r"h=([^;]+)", re.sub(r"\s+", "", signature))
    assert signed is not None
    assert "x-syndicate-mail" not in signed.group(1).lower().split(":")
    assert token_of(sent.message)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("News <bounces@news.example>", "not a plain address"),
        ("bounces+x@news.example", "not a plain address"),
        ("bounces@localhost", "not a plain address"),
        ("bounces@news.example\r\nBcc: x@evil.example", "not a plain address"),
        ("bouncés@news.example", "not a plain address"),
        ("a" * 24 + "@news.example", "at most 23 leave room for '+' and the 40-character"),
    ],
)
def test_a_bounce_address_without_room_for_verp_stops_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    """A name, a '+', no domain or too long a local part: one line naming [mail] bounce_address."""
    config = tmp_path / "settings.toml"
    quoted = value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    config.write_text(f'[mail]\nbounce_address = "{quoted}"\n', encoding="utf-8")
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert "mail.bounce_address" in message
    assert "[mail] bounce_address" in message
    assert words in message
    assert "\n" not in message.strip()


def test_the_longest_bounce_address_fits_every_token() -> None:
    """23 characters of local part leave a token for the largest subscriber id within 64 octets."""
    longest = "b" * 23 + "@news.example"
    assert MailSettings(bounce_address=longest).bounce_address == longest
    sender = Verp(SECRET).sender(longest, MailRef(2**63 - 1, "monthly-fa-2150-12-31"))
    assert len(sender.partition("@")[0]) <= 64
    headers.checked_address(sender)  # and any header takes it


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Engine, Path]]:
    """The whole site with VERP on, mailing into a Maildir: its URL, store and outbox."""
    port = free_port()
    settings = site_settings(
        tmp_path, f"http://127.0.0.1:{port}/", mail={"bounce_address": BOUNCES}
    )
    engine = open_database(settings.database.url)
    for served in serve_in_thread(create_site(engine, settings), port):
        yield served, engine, tmp_path / "outbox"
    engine.dispose()


def test_a_confirmation_from_the_site_leaves_from_a_verp_address(
    site: tuple[str, Engine, Path],
) -> None:
    """Subscribing on the form mails a confirmation whose Return-Path names the new subscriber."""
    url, engine, outbox = site
    with httpx.Client(base_url=url) as browser:
        form = browser.get("/subscribe/?lang=en")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf, form.text
        answer = browser.post(
            "/subscribe/",
            data={"csrf": csrf.group(1), "lang": "en", "email": "new@example.org", "name": "",
                  "language": "en", "digests": "daily"},
        )  # fmt: skip
    assert answer.status_code == 200
    raw = wait_for(
        lambda: next((p.read_bytes() for p in (outbox / "new").glob("*")), None),
        30,
        "the confirmation mail",
    )
    assert isinstance(raw, bytes)
    found = re.match(rb"Return-Path: <([^>]+)>\n", raw)
    assert found is not None
    pending = registry.find_by_email(engine, "new@example.org")
    assert pending is not None
    expected = MailRef(pending.pk, CONFIRMATION)
    assert Verp(SECRET).read_address(BOUNCES, found.group(1).decode()) == expected
    assert Verp(SECRET).read(token_of(raw)) == expected


@pytest.mark.parametrize("postmark", [False, True])
def test_postmark_is_given_the_token_only_where_its_webhook_is_set(
    sqlite_engine: Engine, postmark: bool
) -> None:
    """With [bounces.webhooks] postmark_username, each message also carries X-PM-Metadata-syndicate-mail."""
    ingest(sqlite_engine, *digest_corpus())
    edition = build(sqlite_engine)
    add_subscribers(sqlite_engine, PEOPLE[:2])
    settings = mail_settings()
    if postmark:
        webhooks = settings.bounces.webhooks.model_copy(update={"postmark_username": "postmark"})
        bounces = settings.bounces.model_copy(update={"webhooks": webhooks})
        settings = settings.model_copy(update={"bounces": bounces})
    transport = RecordingTransport()
    send_edition(
        sqlite_engine, plan_send(sqlite_engine, settings, edition, transport, None),
        holder=holder_name(),
    )  # fmt: skip
    for sent in transport.sent:
        parsed = sent.parsed()
        given = parsed.get_all("X-PM-Metadata-syndicate-mail") or []
        assert given == ([str(parsed["X-Syndicate-Mail"])] if postmark else [])
