"""The confirmation mail as its reader gets it: a link whole in the raw file, and a way out.

The site is the one `syndicate serve` wires (`create_site`) on a real uvicorn server, mailing
into a Maildir; the SMTP tests send the same mail to aiosmtpd, with and without 8BITMIME.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from syndicate.delivery.smtp import SmtpTransport
from syndicate.delivery.transports import Unsendable
from syndicate.send.confirmation import confirmation_message
from syndicate.settings import (
    Settings,
    SmtpSettings,
)
from syndicate.store import open_database
from syndicate.subscribers import registry
from syndicate.subscribers.links import ConfirmationRequest
from syndicate.web.site import create_site
from tests.support.letters import dkim_signer
from tests.support.mail_reader import read_back
from tests.support.ports import free_port
from tests.support.sites import SITE_TITLES, site_settings
from tests.support.smtp_server import Recorder
from tests.support.waiting import wait_for
from tests.support.web_server import serve_in_thread

CONFIRMED = {"en": "Subscription confirmed", "ar": "تم تأكيد الاشتراك", "fa": "اشتراک تأیید شد"}
CANNOT_CONFIRM = {
    "en": "This subscription cannot be confirmed",
    "ar": "لا يمكن تأكيد هذا الاشتراك",
    "fa": "این اشتراک را نمی‌توان تأیید کرد",
}


@dataclass
class Site:
    """The site on a loopback port, its store, and the Maildir it mails into."""

    url: str
    engine: Engine
    outbox: Path

    def subscribe(self, email: str, language: str) -> None:
        """Ask for the daily digest on the form, as a browser would."""
        with httpx.Client(base_url=self.url) as browser:
            form = browser.get(f"/subscribe/?lang={language}")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf, form.text
            data = {"csrf": csrf.group(1), "lang": language, "email": email, "name": "Sara"}
            answer = browser.post(
                "/subscribe/", data={**data, "language": language, "digests": "daily"}
            )
        assert answer.status_code == 200, answer.text

    def mailed(self, email: str) -> bytes:
        """The raw bytes of the Maildir file mailed to `email`, once it is there."""

        def found() -> bytes | None:
            for path in sorted((self.outbox / "new").glob("*")):
                raw = path.read_bytes()
                if f"\nDelivered-To: {email}\n".encode() in raw:
                    return raw
            return None

        raw = wait_for(found, 30, f"the confirmation mail to {email}")
        assert isinstance(raw, bytes)
        return raw


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The whole site, mailing into a Maildir under `tmp_path`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = site_settings(
        tmp_path,
        f"{url}/",
        site={"title": SITE_TITLES["en"], "titles": SITE_TITLES},
        subscribers={"subscribe_per_hour": 100},
    )
    engine = open_database(settings.database.url)
    for served in serve_in_thread(create_site(engine, settings), port):
        yield Site(served, engine, tmp_path / "outbox")
    engine.dispose()


def link_lines(raw: bytes, path: str) -> list[str]:
    """Every line of the raw file that is a whole link to the site's `path`, as `cat` shows it."""
    pattern = rb"^http://127\.0\.0\.1:\d+" + re.escape(path.encode()) + rb"\?token=[\w-]+&lang=\w+$"
    return [line.decode() for line in re.findall(pattern, raw, re.MULTILINE)]


@pytest.mark.parametrize("language", ["en", "ar", "fa"])
def test_the_confirmation_link_reads_whole_in_the_maildir_file(site: Site, language: str) -> None:
    """The link stands on one line of the raw file, as copied from `cat` it confirms."""
    email = f"reader-{language}@example.org"
    site.subscribe(email, language)
    raw = site.mailed(email)
    [link] = link_lines(raw, "/subscribe/confirm")
    assert link.endswith(f"&lang={language}")
    text = read_back(raw).get_body(("plain",))
    assert text is not None
    assert text["Content-Transfer-Encoding"] == ("7bit" if language == "en" else "8bit")
    assert link in text.get_content()
    assert all(len(line) <= 998 for line in raw.split(b"\n"))
    confirmed = httpx.get(link)
    assert confirmed.status_code == 200
    assert CONFIRMED[language] in confirmed.text
    assert registry.find_by_email(site.engine, email).status == "confirmed"  # type: ignore[union-attr]


@pytest.mark.parametrize("language", ["en", "fa"])
def test_one_click_in_the_confirmation_mail_cancels_the_subscription(
    site: Site, language: str
) -> None:
    """List-Unsubscribe posts one click (RFC 8058) that cancels it; the link then confirms nothing."""
    email = f"not-me-{language}@example.org"
    site.subscribe(email, language)
    raw = site.mailed(email)
    message = read_back(raw)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"].endswith(f"<confirmation.{language}.site.example>")
    https, mailto = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert mailto == "mailto:unsubscribe@site.example?subject=unsubscribe"
    assert re.match(r"http://127\.0\.0\.1:\d+/subscribe/unsubscribe\?token=", https)
    # A mail client posts the one click itself: no cookie, no form token.
    answer = httpx.post(https, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    stored = registry.find_by_email(site.engine, email)
    assert stored is not None
    assert stored.status == "unsubscribed"
    [link] = link_lines(raw, "/subscribe/confirm")
    refused = httpx.get(link)
    assert refused.status_code == 410
    assert CANNOT_CONFIRM[language] in refused.text


# Over SMTP ------------------------------------------------------------------------------


@dataclass
class EightBitRecorder(Recorder):
    """A server that offers 8BITMIME or not, recording each message's MAIL FROM options."""

    eight_bit_mime: bool = True
    options: list[list[str]] = field(default_factory=list)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """The greeting aiosmtpd gives, without 8BITMIME when the server is not to offer it."""
        session.host_name = hostname
        return [line for line in responses if self.eight_bit_mime or "8BITMIME" not in line]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Note the options, then accept as Recorder does."""
        self.options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp_server() -> Iterator[tuple[EightBitRecorder, SmtpSettings]]:
    """An aiosmtpd server on a free loopback port; the test says whether it offers 8BITMIME."""
    recorder = EightBitRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, SmtpSettings(host="127.0.0.1", port=port, timeout=5, pool_size=1)
    controller.stop()


def confirmation(language: str) -> bytes:
    """A confirmation mail in `language`."""
    request = ConfirmationRequest(
        f"reader-{language}@example.org", "Sara", language,
        f"https://news.example/subscribe/confirm?token=abc_-123&lang={language}",
        f"https://news.example/subscribe/unsubscribe?token=def_-456&lang={language}",
    )  # fmt: skip
    return confirmation_message(Settings(), request)


def send(settings: SmtpSettings, message: bytes) -> None:
    """Send `message` over a new transport and close it."""

    async def main() -> None:
        transport = SmtpTransport(settings)
        try:
            await transport.send("bounces@site.example", "reader@example.org", message)
        finally:
            await transport.close()

    asyncio.run(main())


def plain_text(raw: bytes) -> EmailMessage:
    """The text part of a message."""
    part = read_back(raw).get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return part


@pytest.mark.parametrize("offered", [True, False])
def test_an_8bit_confirmation_reaches_any_server_as_valid_mail(
    smtp_server: tuple[EightBitRecorder, SmtpSettings], offered: bool
) -> None:
    """Sent as it is with BODY=8BITMIME, or re-encoded 7-bit where the server lacks 8BITMIME."""
    server, settings = smtp_server
    server.eight_bit_mime = offered
    message = confirmation("ar")
    send(settings, message)
    [received] = server.received
    [options] = server.options
    if offered:
        assert "BODY=8BITMIME" in options
        assert received.content == message
    else:
        assert "BODY=8BITMIME" not in options
        assert received.content.isascii()
        assert plain_text(received.content)["Content-Transfer-Encoding"] == "base64"
    assert plain_text(received.content).get_content() == plain_text(message).get_content()
    assert read_back(received.content)["List-Unsubscribe"] == read_back(message)["List-Unsubscribe"]


def test_a_signed_8bit_message_is_unsendable_to_a_server_without_8bitmime(
    smtp_server: tuple[EightBitRecorder, SmtpSettings],
) -> None:
    """Re-encoding would break its DKIM signature: Unsendable, saying why; nothing is sent."""
    server, settings = smtp_server
    server.eight_bit_mime = False
    signed = dkim_signer().sign(confirmation("fa"))
    with pytest.raises(Unsendable, match=r"DKIM-signed.*lacks 8BITMIME"):
        send(settings, signed)
    assert server.received == []
