"""A transport that keeps what it is given in memory: for tests, previews and dry runs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from syndicate.delivery.transports import DeliveryFailure


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message a RecordingTransport accepted, with its envelope."""

    envelope_from: str
    recipient: str
    message: bytes

    def parsed(self) -> EmailMessage:
        """The message parsed by the email package (modern policy: decoded headers)."""
        return message_from_bytes(self.message, policy=policy.default)


class RecordingTransport:
    """Accepts every message into `sent`, except recipients it was told to fail."""

    def __init__(self, failures: Mapping[str, DeliveryFailure] | None = None) -> None:
        """Record messages; raise `failures[recipient]` for the recipients it names."""
        self.sent: list[SentMessage] = []
        self.failures = dict(failures or {})
        self.closed = False

    async def send(
        self,
        envelope_from: str,
        recipient: str,
        message: bytes,
        *,
        before_delivery: asyncio.Future[None] | None = None,
    ) -> None:
        """Keep the message, or raise the failure set for this recipient."""
        if before_delivery is not None:
            await before_delivery
        if self.closed:
            raise RuntimeError("send on a closed RecordingTransport")
        failure = self.failures.get(recipient)
        if failure is not None:
            raise failure
        self.sent.append(SentMessage(envelope_from, recipient, message))

    async def close(self) -> None:
        """Mark the transport closed; what was sent stays readable."""
        self.closed = True

    def to(self, recipient: str) -> list[SentMessage]:
        """The messages sent to `recipient`, in order."""
        return [sent for sent in self.sent if sent.recipient == recipient]
