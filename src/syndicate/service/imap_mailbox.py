"""One IMAP folder of reports, as the bounce poller reads it: every imaplib detail lives here.

The standard library's imaplib is enough for the few commands needed (LOGIN, SELECT, UID
SEARCH, UID FETCH, UID MOVE or COPY/STORE/EXPUNGE, CREATE), so no dependency is added. It does
not quote arguments: folder and user names are quoted here (RFC 3501 quoted strings), a
folder's name in modified UTF-7 (RFC 3501 5.1.3), so any name [bounces.imap] gives is sent as
one argument.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from syndicate.settings.bounces import ImapSettings

TIMEOUT = 60.0  # seconds to wait for the server to answer any one command


class MailboxError(Exception):
    """The IMAP server could not be reached, refused the login or a command."""


class ImapMailbox:
    """The IMAP folder [bounces.imap] names, opened for each look."""

    def __init__(self, settings: ImapSettings, *, tls_context: ssl.SSLContext | None = None):
        """Read as `settings` say; `tls_context` for a private CA (the default verifies)."""
        self.settings = settings
        self.tls_context = tls_context or ssl.create_default_context()

    @contextmanager
    def opened(self) -> Iterator[ImapFolder]:
        """Connect, log in and select the folder; log out when done."""
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        try:
            client = self._connect()
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxError(f"cannot connect to {where}: {error}") from None
        try:
            try:
                client.login(quoted(settings.username), settings.password.get_secret_value())
            except imaplib.IMAP4.error as error:
                raise MailboxError(f"{where} refused the login: {error}") from None
            try:
                yield ImapFolder(client, settings)
            except imaplib.IMAP4.error as error:  # a BAD answer, or the connection lost
                raise MailboxError(f"{where}: {error}") from None
        finally:
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                client.shutdown()

    def _connect(self) -> imaplib.IMAP4:
        settings = self.settings
        if settings.security == "tls":
            return imaplib.IMAP4_SSL(
                settings.host, settings.port, ssl_context=self.tls_context, timeout=TIMEOUT
            )
        client = imaplib.IMAP4(settings.host, settings.port, timeout=TIMEOUT)
        if settings.security == "starttls":
            try:
                client.starttls(ssl_context=self.tls_context)
            except BaseException:  # not offered, or the certificate refused: close the socket
                with contextlib.suppress(OSError):  # (a failed handshake closed it already)
                    client.shutdown()
                raise
        return client


class ImapFolder:
    """The selected folder: its waiting messages, each fetched and then marked done."""

    def __init__(self, client: imaplib.IMAP4, settings: ImapSettings) -> None:
        """Select `settings.folder` on a logged-in `client` (read-write: flags are set)."""
        self.client = client
        self.settings = settings
        self.where = f"imap://{settings.username}@{settings.host}/{settings.folder}"
        _ok(client.select(mailbox_name(settings.folder)), f"select {settings.folder}")
        _, validity = client.response("UIDVALIDITY")
        self.uid_validity = _text(validity[0]) if validity and validity[0] else ""
        self.moves = "MOVE" in client.capabilities
        self.uid_expunge = "UIDPLUS" in client.capabilities
        if settings.processed_folder:
            # CREATE fails when the folder exists; either way it is there afterwards (or the
            # first move says why not).
            client.create(mailbox_name(settings.processed_folder))

    def waiting(self) -> list[str]:
        """The UIDs to read: every message, or only the unseen ones when nothing is moved."""
        criterion = "ALL" if self.settings.processed_folder else "UNSEEN"
        data = _ok(self.client.uid("SEARCH", criterion), "search")
        return [uid for chunk in data if chunk for uid in _text(chunk).split()]

    def fetch(self, uid: str) -> bytes | None:
        """Message `uid` whole, leaving it unseen (BODY.PEEK); None if it is gone."""
        data = _ok(self.client.uid("FETCH", uid, "(BODY.PEEK[])"), f"fetch {uid}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    def done(self, uid: str) -> None:
        """Move message `uid` to the processed folder, or flag it seen when there is none."""
        client, target = self.client, self.settings.processed_folder
        if not target:
            _ok(client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)"), f"flag {uid}")
        elif self.moves:
            _ok(client.uid("MOVE", uid, mailbox_name(target)), f"move {uid} to {target}")
        else:
            _ok(client.uid("COPY", uid, mailbox_name(target)), f"copy {uid} to {target}")
            _ok(client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), f"delete {uid}")
            # UID EXPUNGE removes this message alone; a plain EXPUNGE, all flagged \Deleted.
            if self.uid_expunge:
                _ok(client.uid("EXPUNGE", uid), f"expunge {uid}")
            else:
                _ok(client.expunge(), "expunge")

    def reference(self, uid: str) -> str:
        """Where message `uid` was read, as an IMAP URL (RFC 5092)."""
        return f"{self.where};UIDVALIDITY={self.uid_validity}/;UID={uid}"


def quoted(text: str) -> str:
    """`text` (a user name) as an IMAP quoted string: printable ASCII only."""
    if _UNPRINTABLE.search(text):
        raise MailboxError(f"{text!r} is not printable ASCII, which IMAP's LOGIN needs")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_name(name: str) -> str:
    """A folder's `name` as IMAP sends it: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    return quoted(_UNPRINTABLE.sub(lambda run: _utf7(run.group()), name.replace("&", "&-")))


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")  # a run of what modified UTF-7 must encode


def _utf7(run: str) -> str:
    """A run of characters outside printable ASCII: "&", base64 of its UTF-16 (, for /), "-"."""
    encoded = base64.b64encode(run.encode("utf-16-be")).decode("ascii").rstrip("=")
    return "&" + encoded.replace("/", ",") + "-"


def _ok(answer: tuple[str, list[Any]], what: str) -> list[Any]:
    """The data of an OK answer; MailboxError naming `what` otherwise."""
    kind, data = answer
    if kind != "OK":
        detail = " ".join(_text(item) for item in data if isinstance(item, bytes | str))
        raise MailboxError(f"{what}: {kind} {detail}".strip())
    return data


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value
