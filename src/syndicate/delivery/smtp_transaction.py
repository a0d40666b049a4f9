"""One message's SMTP transaction on an open connection: MAIL, RCPT, DATA, failures classified.

aiosmtplib opens the connection, negotiates TLS and logs in (see delivery.smtp); MAIL, RCPT
and DATA go through its `execute_command` (see `send_transaction`). Its DATA command is not
used for the message: it rewrites line endings and dot-stuffs the message with regular
expressions (three passes over each message with SIZE), which measured three fifths of a
send's CPU time (757 against 2,465 messages of 115 KB a second to Postfix's smtp-sink over four
connections). Messages built by `build_message` (MessageBytes) already end every line with CRLF
and start none with ".", so they are written on aiosmtplib's protocol as they are; any other
message has its line ends mended and its dots stuffed here (`data_payload`), with one replace.

Commands are not pipelined (RFC 2920), though Postfix offers it: aiosmtplib's protocol reads
one reply per command awaited and drops what arrives while a reply waits to be taken, so
replies to commands written together would be lost.
"""

from __future__ import annotations

import asyncio
import re

import aiosmtplib

from syndicate.delivery.transports import PermanentFailure, SessionFailure, TransientFailure

_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
# What a lost or silent connection raises: the message may go through on a fresh one.
CONNECTION_LOST = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,
    TimeoutError,
)


async def send_transaction(
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
    the transport has checked both addresses have the shape `local@domain` and nothing else.
    With `utf8` (the server offers SMTPUTF8), MAIL FROM asks for it and RCPT TO is UTF-8; an
    `eight_bit` message is declared BODY=8BITMIME (RFC 6152) where the server offers it. One
    deadline, moved on for each reply, bounds every wait to `timeout`, instead of a
    `wait_for` for each reply.
    """
    mail = _mail_from(client, sender, size, utf8=utf8, eight_bit=eight_bit)
    try:
        await _converse(
            client, mail, sender, recipient, payload, timeout, before_delivery, utf8=utf8
        )
    except aiosmtplib.SMTPResponseException as error:
        if 500 <= error.code < 600:
            await _reset(client)
            raise PermanentFailure(error.code, error.message) from None
        if 400 <= error.code < 500:
            await _reset(client)
        else:  # not a reply at all: the conversation is out of step, start afresh
            client.close()
        raise TransientFailure(error.message, error.code) from None
    except CONNECTION_LOST as error:
        client.close()
        raise TransientFailure(f"connection lost: {error or type(error).__name__}") from None


def _mail_from(
    client: aiosmtplib.SMTP, sender: str, size: int, *, utf8: bool, eight_bit: bool
) -> list[bytes]:
    """The MAIL FROM command, with the parameters the message needs and the server offers."""
    mail = [b"MAIL", b"FROM:<" + sender.encode("ascii") + b">"]
    if client.supports_extension("size"):
        mail.append(b"SIZE=%d" % size)
    if utf8:
        mail.append(b"SMTPUTF8")
    if eight_bit and client.supports_extension("8bitmime"):  # a UTF-8 header is 8-bit too
        mail.append(b"BODY=8BITMIME")
    return mail


async def _converse(
    client: aiosmtplib.SMTP,
    mail: list[bytes],
    sender: str,
    recipient: str,
    payload: bytes,
    timeout: float,
    before_delivery: asyncio.Future[None] | None,
    *,
    utf8: bool,
) -> None:
    """MAIL (the command `mail`), RCPT, DATA and the message, each reply awaited in `timeout`."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as deadline:
        deadline.reschedule(loop.time() + timeout)
        response = await client.execute_command(*mail, timeout=None)
        if response.code != 250:
            if response.code >= 500:
                raise SessionFailure(f"sender {sender} refused: {response.message}", response.code)
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
        protocol = await _write_message(client, payload, before_delivery, deadline)
        deadline.reschedule(loop.time() + timeout)
        response = await protocol.read_response(timeout=None)
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)


async def _write_message(
    client: aiosmtplib.SMTP,
    payload: bytes,
    before_delivery: asyncio.Future[None] | None,
    deadline: asyncio.Timeout,
) -> aiosmtplib.protocol.SMTPProtocol:
    """Write the message after DATA, and the final dot once `before_delivery` allows it."""
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
    return protocol


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


def data_payload(message: bytes) -> bytes:
    """What goes after DATA but the final ".": CRLF line ends, a "." starting a line doubled."""
    if message.count(b"\n") != message.count(b"\r\n") or message.count(b"\r") != message.count(
        b"\n"
    ):
        message = _LINE_ENDS.sub(b"\r\n", message)  # not built here: mend its line ends
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed
