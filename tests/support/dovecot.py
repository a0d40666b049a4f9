"""A real IMAP server for tests: a private Dovecot on free loopback ports, its files under tmp_path.

Debian's dovecot-imapd (installed by .ci/run). The instance has its own configuration (nothing
of /etc/dovecot is read), state and mail location under the test's folder (but for the mail
when run as root, and base_dir, see the fixture), one passwd-file user with a plain password,
plaintext login allowed (on loopback), and TLS on a second port (STARTTLS on the first) with
a self-signed certificate for 127.0.0.1. A test without the binary is skipped, saying so.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from syndicate.settings.bounces import ImapSettings
from tests.support.certificates import write_certificate
from tests.support.ports import free_port
from tests.support.waiting import PATIENCE, wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "bounces"
PASSWORD = "a password for the test mailbox"

CONFIG = """\
# A private Dovecot for one test: nothing outside {root} is read or written.
instance_name = syndicate-test-{port}
base_dir = {run}
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {system_user}
}}
service auth-worker {{
  user = {system_user}
}}
service imap {{
  user = {system_user}
}}
"""


@dataclass
class Dovecot:
    """A running private Dovecot: how to reach its one mailbox, and a client to fill it."""

    root: Path
    port: int  # plain IMAP, and STARTTLS
    tls_port: int  # IMAP over TLS

    def settings(self, security: str = "none", **changes: object) -> ImapSettings:
        """[bounces.imap] for this server's mailbox (plain IMAP on loopback by default)."""
        fields: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.tls_port if security == "tls" else self.port,
            "security": security,
            "username": USER,
            "password": PASSWORD,
            **changes,
        }
        return ImapSettings(**fields)  # type: ignore[arg-type]

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and checks its name)."""
        return ssl.create_default_context(cafile=str(self.root / "cert.pem"))

    def client(self) -> imaplib.IMAP4:
        """A logged-in IMAP client of the mailbox (log it out when done)."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=PATIENCE)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message in `folder` (IMAP APPEND), as a mail server delivering it would."""
        client = self.client()
        try:
            client.create(folder)
            kind, data = client.append(folder, None, None, raw)
            assert kind == "OK", data
        finally:
            client.logout()

    def messages(self, folder: str = "INBOX") -> list[tuple[bytes, bool]]:
        """Each message of `folder` and whether it is flagged seen, in UID order."""
        client = self.client()
        try:
            kind, data = client.select(folder, readonly=True)
            if kind != "OK":
                return []
            kind, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            found = []
            for item in data:
                if isinstance(item, tuple):
                    found.append((item[1], b"\\Seen" in item[0]))
            return found
        finally:
            client.logout()


def _running(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """A private Dovecot serving one mailbox (user `bounces`) on a free loopback port."""
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot is not installed (Debian's dovecot-imapd; .ci/run installs it)")
    root = tmp_path / "dovecot"
    (root / "state").mkdir(parents=True)
    port, tls_port = free_port(), free_port()
    write_certificate(root / "cert.pem", root / "key.pem")
    account = pwd.getpwuid(os.getuid())
    with ExitStack() as folders:
        # Dovecot's sockets live under base_dir, and a socket's path may be at most 107 bytes:
        # a short folder of its own, as pytest's folders grow long (xdist adds a level).
        run = Path(folders.enter_context(tempfile.TemporaryDirectory(prefix="dovecot-")))
        if account.pw_uid == 0:
            # Dovecot runs neither login processes nor mail access as root. As root (CI), they
            # run as the package's unprivileged users and `nobody`, and the mail lives in a
            # folder of its own under /tmp: `nobody` may not pass pytest's private (0700) ones.
            login_user, internal_user = "dovenull", "dovecot"
            mail_account = pwd.getpwnam("nobody")
            temporary = tempfile.TemporaryDirectory(prefix="syndicate-dovecot-")
            mail = Path(folders.enter_context(temporary))
            os.chown(mail, mail_account.pw_uid, mail_account.pw_gid)
        else:
            login_user = internal_user = account.pw_name
            mail_account = account
            mail = root / "mail"
            mail.mkdir()
        config = root / "dovecot.conf"
        config.write_text(
            CONFIG.format(
                root=root, run=run, mail=mail, port=port, tls_port=tls_port,
                uid=mail_account.pw_uid, gid=mail_account.pw_gid, system_user=account.pw_name,
                login_user=login_user, internal_user=internal_user,
            )
        )  # fmt: skip
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        _start(root, config)
        try:
            both = (port, tls_port)
            wait_for(lambda: all(map(_running, both)), PATIENCE, f"dovecot on ports {both}")
            yield Dovecot(root, port, tls_port)
        finally:
            subprocess.run(
                [DOVECOT, "-c", str(config), "stop"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            pid_file = run / "master.pid"
            wait_for(lambda: not pid_file.exists(), PATIENCE, "dovecot to stop")


def _start(root: Path, config: Path) -> None:
    """Start the master, which daemonises, or fail with what it and its log said."""
    # Its output goes to a file, as a pipe would be held open by the daemon.
    errors = root / "start.err"
    with errors.open("wb") as sink:
        started = subprocess.run(
            [DOVECOT, "-c", str(config)], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
            check=False,
        )  # fmt: skip
    if started.returncode != 0:
        log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
        raise AssertionError(f"dovecot did not start: {errors.read_text()}{log}")
