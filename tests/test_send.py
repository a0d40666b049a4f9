"""Sending an edition with `syndicate digest send` to a real SMTP server: once each, resumably."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.support.cli import start_process
from tests.support.newsroom import POOL, Newsroom, addresses, subscribers_csv
from tests.support.smtp_server import Recorder, Serve
from tests.support.waiting import PATIENCE, wait_for


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


def test_processes_on_one_machine_split_the_rate_and_the_connection_cap(
    newsroom: tuple[Newsroom, Recorder],
) -> None:
    """On SQLite two sending processes share rate_per_second and max_connections between them.

    Only the upper bounds are asserted: a busy machine can slow a send, never speed it past
    the limit. Without the split, two processes would reach twice the rate and four connections.
    """
    room, server = newsroom
    room.env.update(
        {
            "SYNDICATE_MAIL__PROCESSES": "2",
            "SYNDICATE_MAIL__SMTP__RATE_PER_SECOND": "40",
            "SYNDICATE_MAIL__SMTP__MAX_CONNECTIONS": "2",
        }
    )
    sent = room.send()
    assert sent.returncode == 0, sent.stderr
    assert Counter(server.addresses()) == Counter(addresses(200))
    assert server.most_connections <= 2
    assert server.rate() <= 42


def test_every_sending_process_logs_at_the_commands_level(
    newsroom: tuple[Newsroom, Recorder],
) -> None:
    """`--log-level warning` quiets the helper process too; at info each part says what it sent."""
    room, _server = newsroom
    room.env["SYNDICATE_MAIL__PROCESSES"] = "2"
    quiet = room.process("digest", "send", room.edition, "--log-level", "warning")
    assert quiet.returncode == 0, quiet.stderr
    assert "level=info" not in quiet.stderr
    again = room.process("digest", "send", room.edition)
    assert again.returncode == 0, again.stderr
    sent_lines = [line for line in again.stderr.splitlines() if "edition sent" in line]
    assert len(sent_lines) == 2, again.stderr  # this process's part and the helper's


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
    exported = room.cli("subscribers", "export").stdout
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
    # The server takes 400 messages, then holds each further one before taking it: the send
    # is mid-way when it is killed, however fast or slow the machine.
    server.gate, server.hold_from = threading.Event(), 400
    room.env["SYNDICATE_MAIL__SMTP__TIMEOUT"] = "600"  # a held message never times out
    sending = start_process("digest", "send", room.edition, cwd=tmp_path, env=room.env)
    wait_for(lambda: len(server.received) == 400, PATIENCE, "400 messages to arrive")
    sending.send_signal(signal.SIGKILL)
    sending.communicate()  # reaps it and closes its pipes
    # Every sending process is gone once every connection is: what was held was not taken.
    wait_for(lambda: server.connections == 0, PATIENCE, "the killed send's connections to close")
    assert len(server.received) == 400, "a sending process outlived the killed send"
    server.gate.set()
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
    room.env["SYNDICATE_MAIL__SMTP__TIMEOUT"] = "600"  # nor time out, however long that takes
    first = start_process("digest", "send", room.edition, cwd=tmp_path, env=room.env)
    wait_for(lambda: server.peers, PATIENCE, "the first send to reach the server")
    second = room.process("digest", "send", room.edition, check=False)
    server.gate.set()
    assert second.returncode == 2
    assert "not sending" in second.stderr
    assert "held by" in second.stderr
    _, err = first.communicate(timeout=300)
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
    (tmp_path / "more.csv").write_text(subscribers_csv(rows))
    imported = room.cli("subscribers", "import", str(tmp_path / "more.csv"), "--confirmed")
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
    status = room.cli("status").stdout
    failed = 0 if offered else 1
    assert f"{room.edition}  {12 - failed} sent, 0 bounced, 0 deferred, {failed} failed" in status
