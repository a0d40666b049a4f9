"""Sending an edition with `syndicate digest send` to a real SMTP server: once each, resumably."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.servicerun import wait_for
from tests.smtpserver import Recorder, Serve

POOL = 4
DAY = "2026-11-20"


def syndicate(
    env: dict[str, str], *args: str, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the command line as an operator would, with `env` as its settings."""
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if check and result.returncode not in (0, 1):
        raise AssertionError(f"syndicate {' '.join(args)} failed:\n{result.stderr}")
    return result


def start(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen[str]:
    """Start the command line in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def addresses(count: int) -> list[str]:
    """`count` subscriber addresses."""
    return [f"reader{number:05d}@example.org" for number in range(count)]


class Newsroom:
    """A store with a demo corpus, `count` confirmed English subscribers and a built edition."""

    def __init__(self, folder: Path, smtp_port: int, count: int) -> None:
        """Set it all up through the command line, as an operator would."""
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE_")}
        self.env.update(
            {
                "SYNDICATE_DATABASE__URL": f"sqlite:///{folder / 'store.db'}",
                "SYNDICATE_FEEDS__DIR": str(folder / "feeds"),
                "SYNDICATE_MAIL__TRANSPORT": "smtp",
                "SYNDICATE_MAIL__SMTP__HOST": "127.0.0.1",
                "SYNDICATE_MAIL__SMTP__PORT": str(smtp_port),
                "SYNDICATE_MAIL__SMTP__POOL_SIZE": str(POOL),
                "SYNDICATE_MAIL__SMTP__RETRIES": "2",
                "SYNDICATE_SECURITY__SECRET_KEY": "a test secret that is long enough",
                "SYNDICATE_WEB__PUBLIC_URL": "https://news.example/",
            }
        )
        corpus = folder / "corpus.jsonl"
        demo = syndicate(
            self.env, "demo-data", "--articles", "400", "--now", "2026-11-21T12:00:00+0000",
            cwd=folder,
        )  # fmt: skip
        corpus.write_text(demo.stdout)
        syndicate(self.env, "ingest", str(corpus), cwd=folder)
        rows = "".join(
            f"{address},Reader {n},en,daily,\n" for n, address in enumerate(addresses(count))
        )
        (folder / "subscribers.csv").write_text("email,name,language,digests,topics\n" + rows)
        imported = syndicate(
            self.env, "subscribers", "import", str(folder / "subscribers.csv"), "--confirmed",
            cwd=folder,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        built = syndicate(
            self.env, "digest", "build", "daily", "--date", DAY, "--lang", "en", cwd=folder
        )
        self.edition = built.stdout.strip().splitlines()[-1]
        assert self.edition == f"daily-en-{DAY}"

    def send(self) -> subprocess.CompletedProcess[str]:
        """`syndicate digest send` of the edition, to completion."""
        return syndicate(self.env, "digest", "send", self.edition, cwd=self.folder)


@pytest.fixture
def newsroom(tmp_path: Path, serve: Serve) -> tuple[Newsroom, Recorder]:
    """200 subscribers and a daily edition, with a real SMTP server to send to."""
    server, settings = serve()
    return Newsroom(tmp_path, settings.port, 200), server


@pytest.mark.parametrize("processes", ["1", "2"])
def test_every_subscriber_gets_the_edition_once(
    newsroom: tuple[Newsroom, Recorder], processes: str
) -> None:
    """A send reaches each subscriber exactly once, in one process or two; a second sends none."""
    room, server = newsroom
    room.env["SYNDICATE_MAIL__PROCESSES"] = processes
    first = room.send()
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().startswith(f"{room.edition}: 200 sent, 0 failed, 0 suppressed")
    assert Counter(server.addresses()) == Counter(addresses(200))
    again = room.send()
    assert again.returncode == 0
    assert "0 sent, 0 failed, 0 suppressed, 200 skipped" in again.stdout
    assert len(server.received) == 200


def test_each_message_is_personal_and_carries_list_headers(
    newsroom: tuple[Newsroom, Recorder],
) -> None:
    """Each reader's message greets them, links their own unsubscribe page, and has list headers."""
    room, server = newsroom
    room.send()
    by_address = {
        m.recipients[0]: message_from_bytes(m.content, policy=policy.default)
        for m in server.received
    }
    first, second = by_address["reader00000@example.org"], by_address["reader00001@example.org"]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["List-Id"].endswith("<daily.en.site.example>")
    assert first["List-Unsubscribe"] != second["List-Unsubscribe"]
    assert "https://news.example/subscribe/unsubscribe?token=" in first["List-Unsubscribe"]
    html = first.get_body(("html",)).get_content()
    assert "Reader 0" in html
    assert "Reader 1" not in html
    assert first["Message-ID"] != second["Message-ID"]


def test_refused_address_is_bounced_suppressed_and_not_retried(
    newsroom: tuple[Newsroom, Recorder],
) -> None:
    """A 550 for one reader: counted as failed (exit 1), suppressed, and never tried again."""
    room, server = newsroom
    server.refuse["reader00007@example.org"] = "550 5.1.1 no such user"
    result = room.send()
    assert result.returncode == 1
    assert "199 sent, 1 failed" in result.stdout, result.stderr
    assert "reader00007@example.org" not in server.addresses()
    del server.refuse["reader00007@example.org"]
    again = room.send()
    assert "0 sent, 0 failed, 1 suppressed" in again.stdout
    exported = syndicate(room.env, "subscribers", "export", cwd=room.folder).stdout
    assert "reader00007@example.org" in exported
    assert "bounced" in next(line for line in exported.splitlines() if "reader00007" in line)


def test_passing_refusals_are_retried_and_delivered(newsroom: tuple[Newsroom, Recorder]) -> None:
    """Two 451 replies on the way: the messages still arrive, once each."""
    room, server = newsroom
    server.rcpt_replies.extend(["451 4.3.0 try later", "451 4.3.0 try later"])
    result = room.send()
    assert result.returncode == 0, result.stderr
    assert Counter(server.addresses()) == Counter(addresses(200))


@pytest.mark.parametrize("processes", ["1", "2"])
def test_killed_send_resumes_and_skips_nobody(tmp_path: Path, serve: Serve, processes: str) -> None:
    """SIGKILL mid-send, then send again: everyone has it, repeats at most one per connection."""
    server, settings = serve()
    room = Newsroom(tmp_path, settings.port, 1500)
    room.env["SYNDICATE_MAIL__PROCESSES"] = processes
    server.delay = 0.002
    sending = start(room.env, "digest", "send", room.edition, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while len(server.received) < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    sending.send_signal(signal.SIGKILL)
    sending.communicate()  # reaps it and closes its pipes
    # Every sending process is gone once every connection is: what was on the wire has landed.
    wait_for(lambda: server.connections == 0, 60, "the killed send's connections to close")
    killed_at = len(server.received)
    assert killed_at >= 400
    assert killed_at < 1500, "a sending process outlived the killed send and finished it"
    server.delay = 0
    resumed = room.send()
    assert resumed.returncode == 0, resumed.stderr
    counts = Counter(server.addresses())
    assert set(counts) == set(addresses(1500))  # nobody skipped
    repeats = sum(count - 1 for count in counts.values())
    assert repeats <= POOL, f"{repeats} repeats, more than one per connection"


def test_second_send_of_the_same_edition_refuses_to_start(tmp_path: Path, serve: Serve) -> None:
    """While one send runs, another of the same edition stops at once and sends nothing."""
    server, settings = serve()
    room = Newsroom(tmp_path, settings.port, 600)
    server.gate = threading.Event()  # the first send cannot finish while the second starts
    first = start(room.env, "digest", "send", room.edition, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not server.peers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.peers, "the first send never reached the server"
    second = syndicate(room.env, "digest", "send", room.edition, cwd=tmp_path, check=False)
    server.gate.set()
    assert second.returncode == 2
    assert "not sending" in second.stderr
    assert "held by" in second.stderr
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert Counter(server.addresses()) == Counter(addresses(600))


@pytest.mark.parametrize("offered", [False, True], ids=["no-smtputf8", "smtputf8"])
def test_an_internationalised_subscriber_never_stops_the_send(
    tmp_path: Path, serve: Serve, offered: bool
) -> None:
    """`üñí@exämple.com` imported --confirmed: mailed with SMTPUTF8, else failed; all others mailed."""
    server, settings = serve(enable_SMTPUTF8=offered)
    room = Newsroom(tmp_path, settings.port, 0)
    rows = [f"reader{n:02d}@example.org,Reader,en,daily," for n in range(10)]
    rows[3:3] = ["üñí@exämple.com,Üñí,en,daily,", "plain@exämple.com,Plain,en,daily,"]
    (tmp_path / "more.csv").write_text("email,name,language,digests,topics\n" + "\n".join(rows))
    imported = syndicate(
        room.env, "subscribers", "import", str(tmp_path / "more.csv"), "--confirmed", cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    assert "line 5: note: üñí@xn--exmple-cua.com needs SMTPUTF8" in imported.stderr
    assert imported.stdout.strip().endswith("; 1 address needs SMTPUTF8")
    sent = room.send()
    everyone = [f"reader{n:02d}@example.org" for n in range(10)] + ["plain@xn--exmple-cua.com"]
    if offered:
        assert sent.returncode == 0, sent.stderr
        assert "12 sent, 0 failed" in sent.stdout
        everyone.append("üñí@xn--exmple-cua.com")
    else:
        assert sent.returncode == 1, sent.stderr
        assert "11 sent, 1 failed" in sent.stdout
        assert "needs SMTPUTF8, which the server" in sent.stderr
    assert Counter(server.addresses()) == Counter(everyone)
    status = syndicate(room.env, "status", cwd=tmp_path).stdout
    failed = 0 if offered else 1
    assert f"{room.edition}  {12 - failed} sent, 0 bounced, 0 deferred, {failed} failed" in status
