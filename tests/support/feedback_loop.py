"""The feedback loop for end-to-end tests: a send with VERP, what came back of it, the next send.

`FeedbackLoop` is a newsroom (tests/support/newsroom.py) on a given store, with `[mail]
bounce_address` set, that has sent its daily edition through the project's SMTP transport to
a test SMTP server. `Sent` is one of those messages as the server took it: what a bounce or a
complaint about it carries back (the envelope sender, the Message-ID, our X-Syndicate-Mail
header, the message itself). The loop reads the store as a test asserts on it, and sends the
next day's edition.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from syndicate.settings import Settings
from syndicate.store.schema import delivery, feedback_event, subscriber, suppression
from tests.support.mail_reader import crlf, read_back
from tests.support.newsroom import Newsroom, addresses
from tests.support.queue_workers import Worker
from tests.support.sites import site_settings
from tests.support.smtp_server import Recorder

BOUNCES = "bounces@news.example"  # [mail] bounce_address: envelope senders are bounces+TOKEN@…
PUBLIC_URL = "https://news.example/"
NEXT_DAY = "2026-11-21"  # the day of the edition sent after the reports came back


@dataclass(frozen=True)
class Sent:
    """One message as the SMTP server took it."""

    email: str  # its one recipient
    envelope_sender: str  # MAIL FROM: the VERP address a bounce comes back to
    content: bytes  # the message, CRLF line ends

    @cached_property
    def message(self) -> EmailMessage:
        """The message parsed."""
        return read_back(self.content)

    @property
    def message_id(self) -> str:
        """Its Message-ID, `<…@…>`."""
        return str(self.message["Message-ID"]).strip()

    @property
    def mail_token(self) -> str:
        """Its X-Syndicate-Mail header: the VERP token again, for reports that quote headers."""
        return str(self.message["X-Syndicate-Mail"]).strip()

    @property
    def postmark_metadata(self) -> str:
        """Its X-PM-Metadata-syndicate-mail header: what Postmark hands back as Metadata."""
        return str(self.message["X-PM-Metadata-syndicate-mail"]).strip()

    @property
    def header_block(self) -> bytes:
        """Its header fields as sent (what a relay returns in a text/rfc822-headers part)."""
        return self.content.partition(b"\r\n\r\n")[0] + b"\r\n"

    def header_fields(self) -> list[tuple[str, str]]:
        """Its header fields, unfolded and decoded (as a provider's JSON carries them)."""
        return [(name, str(value)) for name, value in self.message.items()]


class FeedbackLoop:
    """A newsroom on the store at `database_url` that sent its edition with VERP to `server`."""

    def __init__(
        self,
        folder: Path,
        server: Recorder,
        smtp_port: int,
        engine: Engine,
        database_url: str,
        readers: int = 5,
        workers: list[Worker] | None = None,
    ) -> None:
        """Set up the newsroom, send its edition once, and check everyone got it.

        On PostgreSQL the sends are the queue's: a worker is started into `workers` (a list
        the test's `workers` fixture cleans up).
        """
        self.server = server
        self.engine = engine
        self.readers = addresses(readers)
        self.room = Newsroom(
            folder,
            smtp_port,
            readers,
            settings={
                "SYNDICATE_DATABASE__URL": database_url,
                "SYNDICATE_MAIL__BOUNCE_ADDRESS": BOUNCES,
                # The mail goes as through Postmark: each message's token as its metadata too.
                "SYNDICATE_BOUNCES__WEBHOOKS__POSTMARK_USERNAME": "postmark",
            },
        )
        self.edition = self.room.edition
        if engine.dialect.name == "postgresql":
            assert workers is not None, "a send on PostgreSQL needs the workers fixture"
            workers.append(Worker(folder, self.room.env, "feedback").started())
        sent = self.room.send()
        assert sent.returncode == 0, sent.stderr
        assert Counter(server.addresses()) == Counter(self.readers)
        self.first = {email: self.sent(email) for email in self.readers}

    def sent(self, email: str) -> Sent:
        """The first edition's message to `email`, as the server took it."""
        [message] = [found for found in self.server.received if found.recipients == (email,)]
        return Sent(email, message.sender, crlf(message.content))

    def settings(self, **sections: Mapping[str, Any]) -> Settings:
        """The newsroom's settings in this process (its store, secret key, VERP), `sections` added."""
        env = self.room.env
        return site_settings(
            self.room.folder,
            PUBLIC_URL,
            database={"url": env["SYNDICATE_DATABASE__URL"]},
            security={"secret_key": env["SYNDICATE_SECURITY__SECRET_KEY"]},
            mail={"bounce_address": BOUNCES},
            **sections,
        )

    def pk(self, email: str) -> int:
        """The subscriber's pk."""
        with self.engine.connect() as connection:
            found = connection.scalar(select(subscriber.c.pk).where(subscriber.c.email == email))
        assert found is not None, f"no subscriber {email}"
        return int(found)

    def events(self) -> list[tuple[str, str, str, int | None, str | None]]:
        """Every stored event, sorted: (provider, kind, address, subscriber pk, edition)."""
        columns = feedback_event.c
        query = select(columns.provider, columns.kind, columns.email, columns.subscriber_pk,
                       columns.edition_id)  # fmt: skip
        with self.engine.connect() as connection:
            return sorted(
                (str(provider), str(kind), email, pk, edition)
                for provider, kind, email, pk, edition in connection.execute(query)
            )

    def suppressed(self) -> dict[str, str]:
        """The suppression list: address -> reason."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(suppression.c.email, suppression.c.reason))
            return {email: reason for email, reason in rows}

    def store(self) -> tuple[object, ...]:
        """What a report may change: every event (all its columns) and the suppression list."""
        with self.engine.connect() as connection:
            events = connection.execute(select(feedback_event).order_by(feedback_event.c.pk))
            rows = [tuple(row) for row in events]
        return rows, self.suppressed()

    def ledger(self, edition: str) -> dict[str, str]:
        """Each address's status in `edition`'s ledger."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(subscriber.c.email, delivery.c.status)
                .join(delivery, delivery.c.subscriber_pk == subscriber.c.pk)
                .where(delivery.c.edition_id == edition)
            )
            return {email: status for email, status in rows}

    def send_next(self) -> tuple[str, subprocess.CompletedProcess[str], list[str]]:
        """Build the next day's edition and send it: its id, the send, the addresses it reached."""
        built = self.room.cli("digest", "build", "daily", "--date", NEXT_DAY, "--lang", "en")
        edition = built.stdout.strip().splitlines()[-1]
        assert edition == f"daily-en-{NEXT_DAY}", built.stderr
        taken = len(self.server.received)
        sending = self.room.process("digest", "send", edition)
        reached = [email for found in self.server.received[taken:] for email in found.recipients]
        return edition, sending, reached
