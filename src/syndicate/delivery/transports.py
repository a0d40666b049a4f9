"""How a message leaves: the `Transport` interface and its failures.

A transport delivers one message to one recipient at a time and says how it went: it returns
when the message was accepted, raises `PermanentFailure` when the receiving server refused it
for good (a 5xx reply to the recipient or the message), `TransientFailure` when it could not
be delivered now and may be tried again later, and `Unsendable` when it cannot carry this
message at all (an address no server takes, or one that needs SMTPUTF8 from a server that
does not offer it). The sender decides what to record. Which transport [mail] names is
delivery.configured's to say.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class DeliveryFailure(Exception):
    """A message that was not delivered; `code` is the SMTP reply code when there was one."""

    def __init__(self, reply: str, code: int | None = None) -> None:
        """A failure with the server's reply (or what went wrong) and its code."""
        super().__init__(f"{code} {reply}" if code is not None else reply)
        self.reply = reply
        self.code = code


class TransientFailure(DeliveryFailure):
    """Not delivered now (a 4xx reply, a timeout, a lost connection): try again later."""


class SessionFailure(TransientFailure):
    """The server refused the session itself (greeting, TLS, login or sender), not the recipient.

    Nothing is known about the recipient, so nothing is to be counted against them; every
    message will fail the same way until the settings or the server change, so stop sending.
    """


class Unsendable(DeliveryFailure):
    """A message the transport cannot carry: nothing was sent and nothing learnt.

    The address is unusable as it is stored, or needs what the server lacks (SMTPUTF8). No
    receiving server refused it, so the address is not suppressed; a later send tries again
    (after the address is mended, or through a server that offers what it needs).
    """


class PermanentFailure(DeliveryFailure):
    """The receiving server refused this message for this recipient for good (a 5xx reply)."""

    code: int

    def __init__(self, code: int, reply: str) -> None:
        """A refusal with the server's reply code and text."""
        super().__init__(reply, code)


class Transport(Protocol):
    """Somewhere messages go: an outbox folder, an SMTP server, or a list in memory."""

    async def send(
        self,
        envelope_from: str,
        recipient: str,
        message: bytes,
        *,
        before_delivery: asyncio.Future[None] | None = None,
    ) -> None:
        """Deliver `message` to `recipient`, raising a DeliveryFailure when it was not.

        `before_delivery` is awaited before the step that makes the message delivered (SMTP's
        final dot, the outbox's file); whatever precedes that step may overlap with it. If it
        raises, the message is not delivered and the error propagates.
        """
        ...

    async def close(self) -> None:
        """Release connections and files; the transport is not used afterwards."""
        ...
