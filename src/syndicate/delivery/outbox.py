"""The outbox transport: every message becomes a file in a Maildir, so no mail server is needed.

`make run` sends here by default (`[mail] outbox_dir`, under `var/`). Maildir delivery is atomic:
a message is written under tmp/ and then moved into new/, so a reader (a mail client, `mutt -f`,
Python's `mailbox`) never sees half a message. Each file starts with the Return-Path and
Delivered-To lines a local delivery adds, which keep the envelope. A local delivery needs no
SMTPUTF8: an internationalised address is written as it is, in UTF-8 (RFC 6532).
"""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path

from syndicate.delivery.headers import MessageError, checked_address, mail_address
from syndicate.delivery.transports import SessionFailure, TransientFailure, Unsendable


class OutboxTransport:
    """Delivers into a Maildir folder, created on first use."""

    def __init__(self, maildir: Path) -> None:
        """Deliver into `maildir` (with its tmp/, new/ and cur/), creating it if missing."""
        maildir.parent.mkdir(parents=True, exist_ok=True)
        self.path = maildir
        self._box = mailbox.Maildir(maildir, factory=None, create=True)

    async def send(
        self,
        envelope_from: str,
        recipient: str,
        message: bytes,
        *,
        before_delivery: asyncio.Future[None] | None = None,
    ) -> None:
        """Write `message` into new/ with its envelope; local files take no waiting worth a thread."""
        if before_delivery is not None:
            await before_delivery
        try:
            sender = checked_address(envelope_from)
        except MessageError as error:  # the same for every message: stop the send
            raise SessionFailure(str(error)) from None
        try:
            to = mail_address(recipient)
        except MessageError as error:
            raise Unsendable(str(error)) from None
        envelope = f"Return-Path: <{sender}>\nDelivered-To: {to}\n".encode()
        # Files in a Maildir end lines with LF, as a local delivery agent writes them.
        try:
            self._box.add(envelope + message.replace(b"\r\n", b"\n"))
        except OSError as error:  # a full disk, say: the message may be written later
            raise TransientFailure(f"cannot write to the outbox {self.path}: {error}") from None

    async def close(self) -> None:
        """Nothing to release: every message is complete on disk once `send` returns."""
