"""Sending processes for tests: real OS processes, each sending through its own SMTP transport.

Each builds its transport as the application does (delivery.configured, on the test's store),
says it is ready, waits for the word to go (so that several start sending together), sends its
messages over as many connections as its pool has, and reports what its transport did.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.smtp import SmtpTransport
from syndicate.settings import MailSettings, SmtpSettings

CONTEXT = multiprocessing.get_context("spawn")
SENDER = "bounces@site.example"


@dataclass
class Sender:
    """A sending process, its log file, and the events that start it and say it is ready."""

    process: SpawnProcess
    log: Path
    ready: Event
    go: Event

    def lines(self) -> list[str]:
        """What the process has logged so far."""
        return self.log.read_text().splitlines() if self.log.exists() else []


def start_sender(
    database_url: str, smtp: SmtpSettings, recipients: list[str], log: Path, results: Any
) -> Sender:
    """Start a process that sends one message to each of `recipients` once told to go."""
    ready, go = CONTEXT.Event(), CONTEXT.Event()
    arguments = (database_url, smtp, recipients, str(log), ready, go, results)
    process = CONTEXT.Process(target=_send_all, args=arguments, name=log.stem)
    process.start()
    return Sender(process, log, ready, go)


def _send_all(
    database_url: str,
    smtp: SmtpSettings,
    recipients: list[str],
    log: str,
    ready: Event,
    go: Event,
    results: Any,
) -> None:
    logging.basicConfig(filename=log, level=logging.INFO, format="%(message)s")
    engine = create_engine(database_url)
    transport = transport_from_settings(MailSettings(transport="smtp", smtp=smtp), engine)
    assert isinstance(transport, SmtpTransport)
    ready.set()
    go.wait()
    asyncio.run(_send(transport, recipients))
    engine.dispose()
    results.put({"sent": transport.stats.sent, "connections": transport.stats.connections})


async def _send(transport: SmtpTransport, recipients: list[str]) -> None:
    """Send to every recipient, as many at once as the pool has places."""
    todo = list(reversed(recipients))

    async def one_connection() -> None:
        while todo:
            recipient = todo.pop()
            message = f"To: {recipient}\r\nSubject: test\r\n\r\nHello\r\n".encode()
            await transport.send(SENDER, recipient, message)

    try:
        await asyncio.gather(*(one_connection() for _ in range(transport.settings.pool_size)))
    finally:
        await transport.close()
