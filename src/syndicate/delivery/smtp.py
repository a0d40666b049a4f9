"""The SMTP transport: a pool of reused aiosmtplib connections, rate-limited, with retries.

Every SMTP detail lives in this module and delivery.smtp_transaction. Each of the `pool_size`
slots holds one connection, opened on first use and kept for the next message, and carries at
most one message at a time; a send waits for a free slot. One rate limiter is shared by all
slots. A 4xx reply, a timeout or a lost connection is tried again, `retries` times, after an
exponential, jittered, capped delay during which the message holds no slot (a lost connection
is reopened by the next try); a 5xx reply to RCPT or DATA is a PermanentFailure at once; a 5xx
to the session itself (greeting, STARTTLS, login, MAIL FROM) is a SessionFailure. A transport
belongs to one event loop.

An internationalised recipient (a UTF-8 local part, RFC 6531) goes out with SMTPUTF8 on MAIL
FROM when the server offers it (Postfix does), and is `Unsendable` when it does not: no
ASCII form of such an address exists. So is a message whose header carries UTF-8 (RFC 6532).
An address with an IDN domain but an ASCII local part needs nothing: its domain is written in
A-labels. A message with an 8bit part (a confirmation's text, written to be read whole) is
declared BODY=8BITMIME; a server that does not offer 8BITMIME gets that part re-encoded,
quoted-printable or base64 (RFC 6152).

The transport opens and pools connections; one message's transaction on an open connection
(MAIL, RCPT, DATA) is in delivery.smtp_transaction, the rate limit in delivery.ratelimit (or,
kept with other processes, delivery.shared_rate). `max_connections` caps the pool; with shared
`slots` (delivery.connection_cap) a pool place is used only once it holds a slot of the
cluster's, and the pool works with as many as it got, one at least.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from dataclasses import dataclass

import aiosmtplib

from syndicate.delivery.connection_cap import ConnectionSlots
from syndicate.delivery.encodings import seven_bit
from syndicate.delivery.headers import MessageError, checked_address, mail_address, needs_smtputf8
from syndicate.delivery.message import MessageBytes
from syndicate.delivery.ratelimit import Limiter, RateLimiter
from syndicate.delivery.smtp_transaction import CONNECTION_LOST, data_payload, send_transaction
from syndicate.delivery.transports import (
    PermanentFailure,
    SessionFailure,
    TransientFailure,
    Unsendable,
)
from syndicate.settings import SmtpSettings

log = logging.getLogger(__name__)

# Seconds between tries for one more shared slot while every place that has one is busy: a
# try is a database round trip, and when the cap is reached it fails until a process ends.
GROW_EVERY = 1.0


@dataclass
class SmtpStats:
    """What one SmtpTransport has done: for logs, metrics and tests."""

    connections: int = 0  # connections opened (a reused connection counts once)
    sent: int = 0
    retries: int = 0
    refused: int = 0  # permanent failures


class _Slot:
    """One place in the pool: a connection (when open) that carries one message at a time."""

    def __init__(self) -> None:
        self.client: aiosmtplib.SMTP | None = None

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class SmtpTransport:
    """Sends through one SMTP server over a pool of persistent connections."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        tls_context: ssl.SSLContext | None = None,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        limiter: Limiter | None = None,
        slots: ConnectionSlots | None = None,
    ) -> None:
        """Send as [mail.smtp] says; `tls_context` for a private CA, backoff in seconds.

        `limiter` and `slots` keep the rate and the cap on connections with other processes;
        without, this process keeps them alone.
        """
        self.settings = settings
        self.stats = SmtpStats()
        self._tls_context = tls_context
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._limiter: Limiter | None = limiter
        if limiter is None and settings.rate_per_second > 0:
            self._limiter = RateLimiter(settings.rate_per_second)
        places = settings.pool_size
        if settings.max_connections:
            places = min(places, settings.max_connections)
        self._slots = [_Slot() for _ in range(places)]
        # Places without a shared slot yet: all of them with shared slots, none without.
        self._shared = slots
        self._unpermitted = list(self._slots) if slots is not None else []
        self._growing = False
        self._grow_after = 0.0  # time.monotonic() before which no more slots are asked for
        # Last in, first out: the slot used last, whose connection is surely open, goes next;
        # the others open connections only when sends overlap. Made in the first send's loop.
        self._idle: asyncio.LifoQueue[_Slot] | None = None

    async def send(
        self,
        envelope_from: str,
        recipient: str,
        message: bytes,
        *,
        before_delivery: asyncio.Future[None] | None = None,
    ) -> None:
        """Deliver one message on a free connection, retrying what may succeed later.

        Between tries the message holds no connection, so a retry's backoff never idles one.
        The envelope and the message go out at once; the final dot, which makes the server
        take the message, waits for `before_delivery`.
        """
        recipient = _envelope(envelope_from, recipient)
        utf8 = needs_smtputf8(recipient) or not _header_block(message).isascii()
        eight_bit = not message.isascii()  # a UTF-8 header, or a part sent 8bit
        payload = message if isinstance(message, MessageBytes) else data_payload(message)
        idle = self._pool()
        failure: TransientFailure | None = None
        for attempt in range(self.settings.retries + 1):
            if failure is not None:
                await self._pause(attempt, failure)  # holding no connection: others may use it
            slot = await self._take(idle)
            try:
                await self._attempt(
                    slot, envelope_from, recipient, message, payload, utf8, eight_bit,
                    before_delivery,
                )  # fmt: skip
            except SessionFailure:
                if slot.client is not None:
                    await _discard(slot.client)
                slot.client = None
                raise
            except PermanentFailure:
                self.stats.refused += 1
                raise
            except TransientFailure as transient:
                failure = transient
            else:
                self.stats.sent += 1
                return
            finally:
                idle.put_nowait(slot)
        assert failure is not None  # the loop ran at least once and did not return
        raise failure

    async def close(self) -> None:
        """Say QUIT on every open connection."""
        for slot in self._slots:
            client, slot.client = slot.client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        await asyncio.sleep(0)  # a socket closes on the loop's next turn: let it, before we go
        if self._shared is not None:
            await self._shared.give_back()  # after the connections closed: the cap holds

    async def _take(self, idle: asyncio.LifoQueue[_Slot]) -> _Slot:
        """A free place in the pool, given a shared slot first when the pool may grow."""
        if idle.empty() and self._unpermitted and not self._growing:
            self._growing = True  # one caller at a time asks; the others wait for a place
            try:
                if await self._permit():
                    return self._unpermitted.pop()
            finally:
                self._growing = False
        return await idle.get()

    async def _permit(self) -> bool:
        """Take one more shared slot: waiting for the first, after that only if one is free."""
        assert self._shared is not None
        if len(self._unpermitted) == len(self._slots):
            await self._shared.take()
            return True
        if time.monotonic() < self._grow_after:
            return False
        if await self._shared.try_take():
            return True
        self._grow_after = time.monotonic() + GROW_EVERY
        return False

    def _pool(self) -> asyncio.LifoQueue[_Slot]:
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for slot in self._slots:
                if slot not in self._unpermitted:
                    self._idle.put_nowait(slot)
        return self._idle

    async def _attempt(
        self,
        slot: _Slot,
        sender: str,
        recipient: str,
        message: bytes,
        payload: bytes,
        utf8: bool,
        eight_bit: bool,
        before_delivery: asyncio.Future[None] | None,
    ) -> None:
        """One try on one slot: connect if need be, wait for the rate limit, send.

        A message with an 8bit part goes to a server without 8BITMIME re-encoded, 7-bit.
        """
        client = await self._connected(slot)
        where = f"{self.settings.host}:{self.settings.port}"
        if utf8 and not client.supports_extension("smtputf8"):
            raise Unsendable(
                f"{recipient} needs SMTPUTF8, which the server ({where}) does not offer"
            )
        size = len(message)
        if eight_bit and not utf8 and not client.supports_extension("8bitmime"):
            try:
                payload, eight_bit = seven_bit(message), False
            except MessageError as error:
                raise Unsendable(f"{error}; the server ({where}) lacks 8BITMIME") from None
            size = len(payload)
            payload = payload if isinstance(message, MessageBytes) else data_payload(payload)
        if self._limiter is not None:
            await self._limiter.wait()
        await send_transaction(
            client, sender, recipient, payload, size, self.settings.timeout, before_delivery,
            utf8=utf8, eight_bit=eight_bit,
        )  # fmt: skip

    async def _pause(self, attempt: int, failure: TransientFailure) -> None:
        """Wait before try number `attempt`, after `failure`."""
        delay = self._delay(attempt)
        log.info(
            "smtp_retry attempt=%d wait=%.3f code=%s reason=%r",
            attempt,
            delay,
            failure.code,
            failure.reply,
        )
        self.stats.retries += 1
        await asyncio.sleep(delay)

    def _delay(self, attempt: int) -> float:
        """Exponential backoff, capped, with jitter so that slots retry apart."""
        ceiling: float = min(self._max_backoff, self._backoff * 2.0 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret

    async def _connected(self, slot: _Slot) -> aiosmtplib.SMTP:
        """The slot's connection, opened (TLS, login) when it has none or lost it."""
        if slot.client is not None and slot.client.is_connected:
            return slot.client
        slot.drop()
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=self._tls_context,
            username=settings.username or None,
            password=settings.password.get_secret_value() if settings.username else None,
        )
        where = f"{settings.host}:{settings.port}"
        try:
            await client.connect()
            await _greet(client)
        except aiosmtplib.SMTPResponseException as error:  # greeting, EHLO, STARTTLS, AUTH
            await _discard(client)
            if error.code >= 500:
                raise SessionFailure(
                    f"{where} refused the session: {error.message}", error.code
                ) from None
            raise TransientFailure(error.message, error.code) from None
        except aiosmtplib.SMTPNotSupported as error:  # e.g. no STARTTLS on offer
            await _discard(client)
            raise SessionFailure(f"{where}: {error}") from None
        except (*CONNECTION_LOST, aiosmtplib.SMTPException) as error:
            await _discard(client)
            raise TransientFailure(f"cannot connect to {where}: {error}") from None
        slot.client = client
        self.stats.connections += 1
        log.debug("smtp_connected server=%s security=%s", where, settings.security)
        return client


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO where EHLO is refused) on a session aiosmtplib has not greeted yet.

    It greets on connecting only when it starts TLS or logs in, and otherwise in `mail`, which
    `send_transaction` does not use; greeted now, the first message knows the server's extensions.
    """
    if not client.is_ehlo_or_helo_needed:
        return
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


async def _discard(client: aiosmtplib.SMTP) -> None:
    """Close a connection and let the event loop finish closing its socket.

    A socket closes on one of the loop's next turns (after the TLS shutdown, over TLS); a
    caller that returns at once, ending its loop, would leave it open until garbage collection.
    """
    transport = client.transport
    client.close()
    sock = transport.get_extra_info("socket") if transport is not None else None
    for _ in range(50):  # at most 50 ms, on a path taken only when a session failed
        if sock is not None and sock.fileno() == -1:
            return
        await asyncio.sleep(0.001)


def _envelope(envelope_from: str, recipient: str) -> str:
    """The recipient as written on RCPT TO, once both addresses are known to be sendable.

    A From address that cannot be sent fails every message alike (SessionFailure); a recipient
    that cannot be, only its own (Unsendable).
    """
    try:
        checked_address(envelope_from)
    except MessageError as error:
        raise SessionFailure(str(error)) from None
    try:
        return mail_address(recipient)
    except MessageError as error:
        raise Unsendable(str(error)) from None


def _header_block(message: bytes) -> bytes:
    """The message's header fields: what comes before the first empty line."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        end = message.find(b"\n\n")
    return message if end < 0 else message[:end]
