"""The SMTP transport: a pool of reused aiosmtplib connections, rate-limited, with retries.

Every SMTP detail lives in this module. Each of the `pool_size` slots holds one connection,
opened on first use and kept for the next message, and carries at most one message at a time;
a send waits for a free slot. One rate limiter is shared by all slots. A 4xx reply, a timeout or
a lost connection is tried again, `retries` times, after an exponential, jittered, capped delay
during which the message holds no slot (a lost connection is reopened by the next try); a 5xx
reply to RCPT or DATA is a PermanentFailure at once; a 5xx to the session itself (greeting,
STARTTLS, login, MAIL FROM) is a SessionFailure. A transport belongs to one event loop.

aiosmtplib opens the connection, negotiates TLS and logs in; MAIL, RCPT and DATA go through
its `execute_command` (see `_transaction`). Its DATA command is not used for the message: it
rewrites line endings and dot-stuffs the message with regular expressions (three passes over
each message with SIZE), which measured three fifths of a send's CPU time (757 against 2,465
messages of 115 KB a second to Postfix's smtp-sink over four connections). Messages built by
`build_message` (MessageBytes) already end every line with CRLF and start none with ".", so
they are written on aiosmtplib's protocol as they are; any other message has its line ends
mended and its dots stuffed here, with one replace.

An internationalised recipient (a UTF-8 local part, RFC 6531) goes out with SMTPUTF8 on MAIL
FROM when the server offers it (Postfix does), and is `Unsendable` when it does not: no
ASCII form of such an address exists. So is a message whose header carries UTF-8 (RFC 6532).
An address with an IDN domain but an ASCII local part needs nothing: its domain is written in
A-labels. A message with an 8bit part (a confirmation's text, written to be read whole) is
declared BODY=8BITMIME; a server that does not offer 8BITMIME gets that part re-encoded,
quoted-printable or base64 (RFC 6152).

Commands are not pipelined (RFC 2920), though Postfix offers it: aiosmtplib's protocol reads
one reply per command awaited and drops what arrives while a reply waits to be taken, so
replies to commands written together would be lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosmtplib

from syndicate.delivery.encodings import seven_bit
from syndicate.delivery.headers import MessageError, checked_address, mail_address, needs_smtputf8
from syndicate.delivery.message import MessageBytes
from syndicate.delivery.transports import (
    PermanentFailure,
    SessionFailure,
    TransientFailure,
    Unsendable,
)
from syndicate.settings import SmtpSettings

log = logging.getLogger(__name__)

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LOST = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError)


@dataclass
class SmtpStats:
    """What one SmtpTransport has done: for logs, metrics and tests."""

    connections: int = 0  # connections opened (a reused connection counts once)
    sent: int = 0
    retries: int = 0
    refused: int = 0  # permanent failures


class RateLimiter:
    """At most `rate` events a second, shared by every caller (0 for no limit).

    The generic cell rate algorithm with a burst of one: each event is given a start time at
    least 1/rate after the previous one, so any span of T seconds holds at most rate * T + 1.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        """A limiter of `rate` events a second measured on `clock`."""
        self.rate = rate
        self._clock = clock
        self._next = float("-inf")

    def reserve(self) -> float:
        """Claim the next free start time; the seconds from now until it (0 when free now)."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        start = max(now, self._next)
        self._next = start + 1.0 / self.rate
        return start - now

    async def wait(self) -> None:
        """Wait for this caller's turn."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


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
    ) -> None:
        """Send as [mail.smtp] says; `tls_context` for a private CA, backoff in seconds."""
        self.settings = settings
        self.stats = SmtpStats()
        self._tls_context = tls_context
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._limiter = RateLimiter(settings.rate_per_second)
        self._slots = [_Slot() for _ in range(settings.pool_size)]
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
        try:
            checked_address(envelope_from)
        except MessageError as error:
            raise SessionFailure(str(error)) from None
        try:
            recipient = mail_address(recipient)
        except MessageError as error:
            raise Unsendable(str(error)) from None
        utf8 = needs_smtputf8(recipient) or not _header_block(message).isascii()
        eight_bit = not message.isascii()  # a UTF-8 header, or a part sent 8bit
        payload = message if isinstance(message, MessageBytes) else _data_payload(message)
        idle = self._pool()
        failure: TransientFailure | None = None
        for attempt in range(self.settings.retries + 1):
            if failure is not None:
                delay = self._delay(attempt)
                log.info(
                    "smtp_retry attempt=%d wait=%.3f code=%s reason=%r",
                    attempt,
                    delay,
                    failure.code,
                    failure.reply,
                )
                self.stats.retries += 1
                await asyncio.sleep(delay)  # holding no connection: others may use it
            slot = await idle.get()
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

    def _pool(self) -> asyncio.LifoQueue[_Slot]:
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for slot in self._slots:
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
            payload = payload if isinstance(message, MessageBytes) else _data_payload(payload)
        await self._limiter.wait()
        await _transaction(
            client, sender, recipient, payload, size, self.settings.timeout, before_delivery,
            utf8=utf8, eight_bit=eight_bit,
        )  # fmt: skip

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
        except (*_LOST, aiosmtplib.SMTPException) as error:
            await _discard(client)
            raise TransientFailure(f"cannot connect to {where}: {error}") from None
        slot.client = client
        self.stats.connections += 1
        log.debug("smtp_connected server=%s security=%s", where, settings.security)
        return client


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO where EHLO is refused) on a session aiosmtplib has not greeted yet.

    It greets on connecting only when it starts TLS or logs in, and otherwise in `mail`, which
    `_transaction` does not use; greeted now, the first message knows the server's extensions.
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


async def _transaction(
    client: aiosmtplib.SMTP,
    sender: str,
    recipient: str,
    payload: bytes,
    size: int,
    timeout: float,
    before_delivery: asyncio.Future[None] | None = None,
    *,
    utf8: bool = False,
    eight_bit: bool = False,
) -> None:
    """MAIL, RCPT, DATA and the message on an open connection, failures classified.

    The final dot waits for `before_delivery`; if that fails, the connection is dropped
    before the dot, so the server discards the message, and the error propagates.

    The commands go through aiosmtplib's `execute_command` rather than its `mail` and `rcpt`,
    which parse each address again with the email package (a sixth of a send's CPU time);
    `send` has checked both addresses have the shape `local@domain` and nothing else. With
    `utf8` (the server offers SMTPUTF8), MAIL FROM asks for it and RCPT TO is UTF-8; an
    `eight_bit` message is declared BODY=8BITMIME (RFC 6152) where the server offers it. One
    deadline, moved on for each reply, bounds every wait to `timeout`, instead of a
    `wait_for` for each reply.
    """
    loop = asyncio.get_running_loop()
    mail = [b"MAIL", b"FROM:<" + sender.encode("ascii") + b">"]
    if client.supports_extension("size"):
        mail.append(b"SIZE=%d" % size)
    if utf8:
        mail.append(b"SMTPUTF8")
    if eight_bit and client.supports_extension("8bitmime"):  # a UTF-8 header is 8-bit too
        mail.append(b"BODY=8BITMIME")
    try:
        async with asyncio.timeout(None) as deadline:
            deadline.reschedule(loop.time() + timeout)
            response = await client.execute_command(*mail, timeout=None)
            if response.code != 250:
                if response.code >= 500:
                    raise SessionFailure(
                        f"sender {sender} refused: {response.message}", response.code
                    )
                raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
            deadline.reschedule(loop.time() + timeout)
            to = b"TO:<" + recipient.encode("utf-8" if utf8 else "ascii") + b">"
            response = await client.execute_command(b"RCPT", to, timeout=None)
            if response.code not in (250, 251):
                raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)
            deadline.reschedule(loop.time() + timeout)
            response = await client.execute_command(b"DATA", timeout=None)
            if response.code != 354:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
            protocol = client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost before the message")
            if before_delivery is None or before_delivery.done():
                # One write: a second for the final dot costs a system call and the sink a read.
                _check(before_delivery, client)
                protocol.write(payload + b".\r\n")
            else:
                protocol.write(payload)
                deadline.reschedule(None)  # our own wait: the server allows minutes here
                await asyncio.wait([before_delivery])
                _check(before_delivery, client)
                protocol.write(b".\r\n")
            deadline.reschedule(loop.time() + timeout)
            response = await protocol.read_response(timeout=None)
            if response.code != 250:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
    except aiosmtplib.SMTPResponseException as error:
        if 500 <= error.code < 600:
            await _reset(client)
            raise PermanentFailure(error.code, error.message) from None
        if 400 <= error.code < 500:
            await _reset(client)
        else:  # not a reply at all: the conversation is out of step, start afresh
            client.close()
        raise TransientFailure(error.message, error.code) from None
    except _LOST as error:
        client.close()
        raise TransientFailure(f"connection lost: {error or type(error).__name__}") from None


def _check(before_delivery: asyncio.Future[None] | None, client: aiosmtplib.SMTP) -> None:
    """Raise the gate's error, if it failed, after dropping the connection before the dot."""
    if before_delivery is not None and before_delivery.exception() is not None:
        client.close()
        before_delivery.result()


async def _reset(client: aiosmtplib.SMTP) -> None:
    """RSET after a refusal, so the connection can carry the next message."""
    if not client.is_connected:
        return
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _data_payload(message: bytes) -> bytes:
    """What goes after DATA but the final ".": CRLF line ends, a "." starting a line doubled."""
    if message.count(b"\n") != message.count(b"\r\n") or message.count(b"\r") != message.count(
        b"\n"
    ):
        message = _LINE_ENDS.sub(b"\r\n", message)  # not built here: mend its line ends
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _header_block(message: bytes) -> bytes:
    """The message's header fields: what comes before the first empty line."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        end = message.find(b"\n\n")
    return message if end < 0 else message[:end]
