"""A real SMTP server for tests: aiosmtpd on a free loopback port, recording what it accepts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from syndicate.settings import SmtpSettings
from tests.support.ports import free_port


@dataclass
class Received:
    """One message the test server accepted."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes
    peer: Any
    tls: bool
    login: bytes | None
    smtputf8: bool = False  # MAIL FROM asked for SMTPUTF8 (RFC 6531)
    at: float = 0.0  # time.monotonic() when the server took it (after the final dot)


@dataclass
class Recorder:
    """An aiosmtpd handler: records what it accepts, answers as the test tells it to."""

    received: list[Received] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)  # client ends of connections that sent RCPT
    rcpt_replies: list[str] = field(default_factory=list)  # answered before accepting RCPT
    data_replies: list[str] = field(default_factory=list)  # answered instead of accepting DATA
    drops: int = 0  # connections to drop at RCPT
    refuse: dict[str, str] = field(default_factory=dict)  # address -> reply, every time
    refused: list[str] = field(default_factory=list)  # addresses refused so far, repeats included
    delay: float = 0.0  # seconds each DATA takes, to stretch a send out
    gate: threading.Event | None = None  # when given, DATA waits until it is set …
    hold_from: int = 0  # … once this many messages have been taken (0: every DATA waits)
    connections: int = 0  # sessions open just now (a test waits for 0 after killing a sender)
    most_connections: int = 0  # the most sessions ever open at once
    arrived: bytearray = field(default_factory=bytearray)  # every byte read from clients
    # Called in the server's thread as message N (from 1) ends, before it is taken: a test acts
    # at a given moment of a send (records a complaint, say), the sender waiting for the reply.
    at_message: dict[int, Callable[[], None]] = field(default_factory=dict)

    def rate(self) -> float:
        """Messages a second: the least-squares slope of the count over the arrival times."""
        times = sorted(message.at for message in self.received)
        mean_time = sum(times) / len(times)
        mean_count = (len(times) - 1) / 2
        covariance = sum((at - mean_time) * (n - mean_count) for n, at in enumerate(times))
        return covariance / sum((at - mean_time) ** 2 for at in times)

    def held(self) -> bool:
        """Whether a DATA that ends now must wait for the gate."""
        return (
            self.gate is not None
            and not self.gate.is_set()
            and len(self.received) >= self.hold_from
        )

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse, drop the connection, or accept, as told."""
        self.peers.add(session.peer)
        if self.drops:
            self.drops -= 1
            assert server.transport is not None
            server.transport.abort()
            return "421 4.3.0 going away"
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        if address in self.refuse:
            self.refused.append(address)
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Refuse as told, else keep the message."""
        if self.delay:
            await asyncio.sleep(self.delay)
        while self.held():
            await asyncio.sleep(0.01)  # the test holds the message until it has looked
        action = self.at_message.pop(len(self.received) + 1, None)
        if action is not None:
            action()
        if self.data_replies:
            return self.data_replies.pop(0)
        assert isinstance(envelope.content, bytes)
        assert envelope.mail_from is not None
        self.received.append(
            Received(
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                envelope.content,
                session.peer,
                server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                session.auth_data,
                envelope.smtp_utf8,
                time.monotonic(),
            )
        )
        return "250 2.0.0 queued"

    def addresses(self) -> list[str]:
        """Every recipient address of every accepted message, repeats included."""
        return [address for message in self.received for address in message.recipients]


class _Counting(SMTP):
    """aiosmtpd's SMTP session, counting itself in its recorder while its connection is open."""

    def connection_made(self, transport: Any) -> None:
        """Count the session in."""
        self.event_handler.connections += 1
        handler = self.event_handler
        handler.most_connections = max(handler.most_connections, handler.connections)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Note the bytes as they arrive (a test can see a message that waits for its dot)."""
        self.event_handler.arrived += data
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        """Count the session out."""
        self.event_handler.connections -= 1
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Counting(self.handler, **self.SMTP_kwargs)


Serve = Callable[..., tuple[Recorder, SmtpSettings]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start aiosmtpd servers on free loopback ports; each call returns its recorder and settings.

    Options go to aiosmtpd's SMTP. Its Controller offers SMTPUTF8 unless told otherwise:
    `enable_SMTPUTF8=False` is a server without it, which refuses a UTF-8 address.
    """
    controllers: list[Controller] = []

    def start(**server_options: Any) -> tuple[Recorder, SmtpSettings]:
        recorder = Recorder()
        port = free_port()
        controller = _Controller(recorder, hostname="127.0.0.1", port=port, **server_options)
        controller.start()
        controllers.append(controller)
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5, retries=3, pool_size=2)
        return recorder, settings

    yield start
    for controller in controllers:
        controller.stop()
