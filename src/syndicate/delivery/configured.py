"""The transport the settings name: the outbox folder (the default) or an SMTP server.

Apart from delivery.transports because both transports import their failures from there.
Given a PostgreSQL store, the SMTP transport keeps [mail.smtp] rate_per_second and
max_connections with every process sharing it, on any machine; otherwise (SQLite, one
machine) each process keeps them alone.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from syndicate.delivery.connection_cap import SharedSlots
from syndicate.delivery.outbox import OutboxTransport
from syndicate.delivery.shared_rate import SharedRateLimiter
from syndicate.delivery.smtp import SmtpTransport
from syndicate.delivery.transports import Transport
from syndicate.settings import MailSettings, SmtpSettings
from syndicate.store.shared_limits import Booking, book_span


def transport_from_settings(mail: MailSettings, engine: Engine | None = None) -> Transport:
    """The transport [mail] names; its limits shared through `engine` when that is PostgreSQL."""
    if mail.transport != "smtp":
        return OutboxTransport(mail.outbox_dir)
    if engine is None or engine.dialect.name != "postgresql":
        return SmtpTransport(mail.smtp)
    return shared_smtp_transport(mail.smtp, engine)


def shared_smtp_transport(smtp: SmtpSettings, engine: Engine) -> SmtpTransport:
    """An SMTP transport whose rate and connections count with every process on `engine`."""
    server = f"smtp:{smtp.host}:{smtp.port}"

    async def book(seconds: float) -> Booking:
        return await asyncio.to_thread(book_span, engine, server, seconds)

    limiter = SharedRateLimiter(book, smtp.rate_per_second) if smtp.rate_per_second else None
    slots = SharedSlots(engine, server, smtp.max_connections) if smtp.max_connections else None
    return SmtpTransport(smtp, limiter=limiter, slots=slots)
