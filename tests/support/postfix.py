"""A real Postfix for tests: a private instance on a free loopback port, its files under tmp_path.

Debian's postfix (installed by .ci/run). The instance has its own config_directory, queue and
data folders (`postfix -c DIR`); nothing of /etc/postfix is read but the package's list of its
own files. It listens on 127.0.0.1 only, takes mail from loopback clients and relays all of it,
bounces included, to one next hop (a test's aiosmtpd server), with no DNS. Postfix needs root
to start (its daemons drop to the `postfix` user); without root or the binary, tests skip,
saying so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.waiting import PATIENCE, wait_for

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

MAIN_CF = """\
# A private Postfix for one test: loopback only, everything relayed to one next hop.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-syndicate-test
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mx.syndicate.test
mydomain = syndicate.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{relay_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtputf8_enable = yes
alias_maps =
alias_database =
local_recipient_maps =
notify_classes =
delay_warning_time = 0
biff = no
"""

# Only what relaying and bouncing need; nothing chrooted (the queue is under tmp_path).
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix:
    """A running private Postfix: its SMTP port, and its log for a failing test to show."""

    root: Path
    port: int
    data: Path  # the data_directory, outside tmp_path

    def log(self) -> str:
        """What Postfix logged so far."""
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _postfix(config: Path, *command: str) -> subprocess.CompletedProcess[str]:
    # Output to a file rather than a pipe: the master daemonises and would hold a pipe open.
    out = config.parent / "postfix.out"
    with out.open("a") as sink:
        done = subprocess.run(
            [POSTFIX, "-c", str(config), *command], stdin=subprocess.DEVNULL, stdout=sink,
            stderr=sink, check=False, text=True,
        )  # fmt: skip
    return done


def start_postfix(root: Path, relay_port: int) -> Postfix:
    """Start a private Postfix under `root` relaying to 127.0.0.1:`relay_port`."""
    if not os.path.exists(POSTFIX):
        pytest.skip("postfix is not installed (Debian's postfix; .ci/run installs it)")
    if os.geteuid() != 0:
        pytest.skip("a private postfix needs root to start (.ci/run runs as root)")
    config = root / "etc"
    config.mkdir(parents=True)
    (root / "queue").mkdir()  # postfix makes its folders inside
    port = free_port()
    # The daemons reach the queue from inside it (they change into it as root), but the data
    # folder by its path as the `postfix` user, which may not pass pytest's private (0700)
    # folders: it is a folder of its own under /tmp.
    data = Path(tempfile.mkdtemp(prefix="syndicate-postfix-"))
    owner = pwd.getpwnam("postfix")
    os.chown(data, owner.pw_uid, owner.pw_gid)
    (config / "main.cf").write_text(MAIN_CF.format(root=root, data=data, relay_port=relay_port))
    (config / "master.cf").write_text(MASTER_CF.format(port=port))
    postfix = Postfix(root, port, data)
    started = _postfix(config, "start")
    if started.returncode != 0:
        shutil.rmtree(data)
        raise AssertionError(f"postfix did not start: {postfix.log()}")
    wait_for(lambda: _listening(port), PATIENCE, f"postfix to listen on port {port}")
    return postfix


def stop_postfix(postfix: Postfix) -> None:
    """Stop the instance and wait until its master has gone."""
    pid = int((postfix.root / "queue" / "pid" / "master.pid").read_text())
    _postfix(postfix.root / "etc", "stop")
    wait_for(lambda: not _alive(pid), PATIENCE, "postfix to stop")
    shutil.rmtree(postfix.data)


@pytest.fixture
def postfix_relay(tmp_path: Path) -> Iterator[Callable[[int], Postfix]]:
    """Start private Postfix instances relaying to a given port; stopped after the test."""
    running: list[Postfix] = []

    def start(relay_port: int) -> Postfix:
        postfix = start_postfix(tmp_path / f"postfix{len(running)}", relay_port)
        running.append(postfix)
        return postfix

    yield start
    for postfix in running:
        stop_postfix(postfix)
