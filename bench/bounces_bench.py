"""Bounce-reading benchmark: `syndicate bounces read` of 10,000 mixed reports, against `mailbox`.

Run it with `make bench` (everything), `bench/run bounces` (this one alone) or
`.venv/bin/python bench/bounces_bench.py [--messages N] [--no-record]`.

It writes a Maildir and an mbox holding the same `--messages` reports (hard and soft DSNs,
Exim's plain bounces, ARF complaints, auto-replies in three languages, delays and replies that
are no report), addressed to the VERP addresses of a store of subscribers, and in one run:
`syndicate bounces read` of each into a fresh copy of that store, then the reference on each:
Python's `mailbox` iterating the same folder and parsing every message with
`email.message_from_bytes(..., policy=default)` (the floor: what reading costs before any
classifying or storing). Messages a second (start-up included) and peak memory are appended
to bench/RESULTS.md with the machine, its load, the command, the code version and the date.
"""

from __future__ import annotations

import argparse
import csv
import mailbox
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feeds_bench import hold_folder, machine, record
from newsletter_bench import code_version, cpu_usage, neighbours, source_fingerprint, timed_child

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "bounces"
RESULTS = ROOT / "bench" / "RESULTS.md"
SYNDICATE = [sys.executable, "-m", "syndicate"]
SECRET = "benchmark secret key, long enough to sign tokens"  # noqa: S105 - not a secret
BOUNCES = "bounces@news.example"
EDITION = "daily-en-2026-11-20"
SUBSCRIBERS = 5_000
REFERENCE = """
import email, mailbox, sys
from email import policy
kind, path = sys.argv[1:3]
box = mailbox.Maildir(path, factory=None, create=False) if kind == "maildir" else mailbox.mbox(path, create=False)
count = 0
for key in box.iterkeys():
    email.message_from_bytes(box.get_bytes(key), policy=policy.default)
    count += 1
print(count)
"""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _dsn(number: int, email: str, verp: str, status: str, action: str, words: str) -> str:
    return f"""From: MAILER-DAEMON@mx.news.example (Mail Delivery System)
To: {verp}
Subject: Undelivered Mail Returned to Sender
Date: Fri, 20 Nov 2026 07:04:12 +0000
Message-Id: <bench-{number}@mx.news.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{number}"

--B{number}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.news.example.

<{email}>: host mx1.mail.example[192.0.2.25] said: {words}

--B{number}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.news.example

Final-Recipient: rfc822; {email}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {words}

--B{number}
Content-Type: text/rfc822-headers

From: Syndicate News <news@news.example>
To: {email}
Subject: Your daily digest
Message-ID: <{EDITION}.{number}@news.example>

--B{number}--
"""


def hard(number: int, email: str, verp: str) -> str:
    return _dsn(number, email, verp, "5.1.1", "failed", "550 5.1.1 User unknown")


def soft(number: int, email: str, verp: str) -> str:
    return _dsn(number, email, verp, "5.2.2", "failed", "552 5.2.2 Mailbox full")


def delayed(number: int, email: str, verp: str) -> str:
    return _dsn(number, email, verp, "4.4.1", "delayed", "connect: Connection timed out")


def exim(number: int, email: str, verp: str) -> str:
    return f"""X-Failed-Recipients: {email}
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@relay.news.example>
To: {verp}
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1bench-{number}@relay.news.example>
Date: Fri, 20 Nov 2026 07:06:01 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {email}
    SMTP error from remote mail server after RCPT TO:<{email}>:
    550 No such user here

------ This is a copy of the message, including all the headers. ------

From: Syndicate News <news@news.example>
To: {email}
Message-ID: <{EDITION}.{number}@news.example>

Today's news.
"""


def complaint(number: int, email: str, verp: str) -> str:
    return f"""From: feedbackloop@yahoo.example
To: fbl@news.example
Subject: FW: Your daily digest
Date: Fri, 20 Nov 2026 12:00:00 +0000
Message-ID: <fbl-{number}@feedback.yahoo.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="A{number}"

--A{number}
Content-Type: text/plain

This is an email abuse report.

--A{number}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: YahooFBL/1.0
Version: 1
Original-Mail-From: <{verp}>
Original-Rcpt-To: <{email}>

--A{number}
Content-Type: message/rfc822

From: Syndicate News <news@news.example>
To: {email}
Message-ID: <{EDITION}.{number}@news.example>

Today's news.

--A{number}--
"""


AUTO_SUBJECTS = ("Automatic reply: Your daily digest", "=?utf-8?B?2LHYryDYqtmE2YLYp9im2Yo=?=",
                 "=?utf-8?B?2b7Yp9iz2K4g2K7ZiNiv2qnYp9ix?=")  # fmt: skip


def auto_reply(number: int, email: str, verp: str) -> str:
    return f"""From: <{email}>
To: {verp}
Subject: {AUTO_SUBJECTS[number % 3]}
Date: Fri, 20 Nov 2026 07:00:30 +0000
Message-ID: <ooo-{number}@mail.example>
Content-Type: text/plain; charset=utf-8

I am out of the office until 30 November.
"""


def reply(number: int, email: str, verp: str) -> str:
    return f"""From: <{email}>
To: news@news.example
Subject: Re: Your daily digest
Date: Fri, 20 Nov 2026 09:00:00 +0000
Message-ID: <reply-{number}@mail.example>
Content-Type: text/plain; charset=utf-8

Thanks for the piece on the timetable.
"""


# Twenty messages in a cycle: the mix a bounce mailbox might hold.
MIX: list[Callable[[int, str, str], str]] = (
    [hard] * 6 + [soft] * 3 + [exim] * 2 + [complaint] * 2 + [auto_reply] * 3 + [delayed]
    + [reply] * 3
)  # fmt: skip


def environment(database: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")}
    env["SYNDICATE_DATABASE__URL"] = f"sqlite:///{database}"
    env["SYNDICATE_MAIL__BOUNCE_ADDRESS"] = BOUNCES
    env["SYNDICATE_SECURITY__SECRET_KEY"] = SECRET
    return env


def base_store() -> Path:
    """A store of SUBSCRIBERS confirmed subscribers, made once and copied for each run."""
    database = OUT / f"subscribers-{SUBSCRIBERS}.db"
    if not database.exists():
        listing = OUT / "subscribers.csv"
        with listing.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "name", "language", "digests", "topics"])
            for number in range(SUBSCRIBERS):
                writer.writerow([f"reader{number}@mail.example", "", "en", "daily", ""])
        partial = database.with_suffix(".partial")
        subprocess.run([*SYNDICATE, "subscribers", "import", str(listing), "--confirmed"],
                       env=environment(partial), cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        partial.rename(database)
    return database


def mailboxes(store: Path, messages: int) -> tuple[Path, Path]:
    """A Maildir and an mbox holding the same `messages` reports, written once and reused."""
    maildir, mbox = OUT / f"Maildir-{messages}", OUT / f"reports-{messages}.mbox"
    if maildir.exists() and mbox.exists():
        return maildir, mbox
    sys.path.insert(0, str(ROOT / "src"))
    from syndicate.subscribers.verp import MailRef, Verp

    verp = Verp(SECRET)
    with sqlite3.connect(store) as connection:
        readers = connection.execute("SELECT pk, email FROM subscriber ORDER BY pk").fetchall()
    log(f"writing {messages:,} reports to {maildir.name} and {mbox.name}")
    shutil.rmtree(maildir, ignore_errors=True)
    mbox.unlink(missing_ok=True)
    folder, box = mailbox.Maildir(maildir), mailbox.mbox(mbox)
    for number in range(messages):
        pk, email = readers[number % len(readers)]
        sender = verp.sender(BOUNCES, MailRef(pk, EDITION))
        raw = MIX[number % len(MIX)](number, email, sender).encode()
        folder.add(raw)
        box.add(raw)
    box.close()
    return maildir, mbox


def fresh_copy(store: Path, name: str) -> Path:
    database = OUT / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copy(store, database)
    return database


def read(store: Path, path: Path, messages: int, name: str) -> dict[str, Any]:
    """Time `syndicate bounces read PATH` into a fresh copy of the store."""
    database = fresh_copy(store, name)
    run = timed_child([*SYNDICATE, "bounces", "read", str(path)], environment(database))
    lines = run.stdout.count("\n")
    if lines < messages:
        raise SystemExit(f"bounces read {path.name}: {lines} lines for {messages} messages")
    with sqlite3.connect(database) as connection:
        events = connection.execute("SELECT count(*) FROM feedback_event").fetchone()[0]
    rate = messages / run.seconds
    log(f"syndicate bounces read {path.name}: {messages:,} in {run.seconds:.1f} s = "
        f"{rate:,.0f}/s, peak {run.peak} MiB, {events:,} events")  # fmt: skip
    return {"seconds": run.seconds, "rate": rate, "peak": run.peak, "events": events}


def reference(kind: str, path: Path, messages: int) -> dict[str, Any]:
    """Time Python's `mailbox` reading and parsing every message of `path`."""
    run = timed_child([sys.executable, "-c", REFERENCE, kind, str(path)], dict(os.environ))
    if int(run.stdout) != messages:
        raise SystemExit(f"mailbox read {run.stdout.strip()} of {messages} from {path}")
    rate = messages / run.seconds
    log(f"mailbox + email.message_from_bytes, {kind}: {messages:,} in {run.seconds:.1f} s = "
        f"{rate:,.0f}/s, peak {run.peak} MiB")  # fmt: skip
    return {"seconds": run.seconds, "rate": rate, "peak": run.peak}


def main() -> None:
    """Read both mailboxes with Syndicate and with `mailbox`, and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    _held = hold_folder(OUT, "bounce")  # the lock lasts while this name does: the whole run
    store = base_store()
    maildir, mbox = mailboxes(store, args.messages)
    version, fingerprint = code_version(), source_fingerprint()

    machine_before = cpu_usage()
    started = time.perf_counter()
    ours = {"Maildir": read(store, maildir, args.messages, "maildir"),
            "mbox": read(store, mbox, args.messages, "mbox")}  # fmt: skip
    floor = {"Maildir": reference("maildir", maildir, args.messages),
             "mbox": reference("mbox", mbox, args.messages)}  # fmt: skip
    shared = neighbours(machine_before, time.perf_counter() - started)
    if source_fingerprint() != fingerprint:
        version += " (**src/ changed while the benchmark ran**)"

    command = os.environ.get("BENCH_COMMAND") or " ".join(
        [".venv/bin/python bench/bounces_bench.py", *sys.argv[1:]]
    )
    rows = "\n".join(
        f"| {kind} | {ours[kind]['rate']:,.0f} messages/s ({ours[kind]['seconds']:.1f} s; "
        f"{ours[kind]['events']:,} events) | {ours[kind]['peak']} MiB | "
        f"{floor[kind]['rate']:,.0f} messages/s ({floor[kind]['seconds']:.1f} s) | "
        f"{floor[kind]['peak']} MiB | {ours[kind]['rate'] / floor[kind]['rate']:.2f} |"
        for kind in ("Maildir", "mbox")
    )
    row = f"""
## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: bounces

- Machine: {machine()}
- Command: `{command}`
- Code: {version}
- Mailboxes: {args.messages:,} reports to the VERP addresses of {SUBSCRIBERS:,} subscribers, the same in a Maildir and an mbox ({mbox.stat().st_size / 1e6:,.1f} MB): 30 % hard DSNs, 15 % soft (5.2.2), 10 % Exim plain bounces, 10 % ARF complaints, 15 % auto-replies (English, Arabic, Persian subjects), 5 % delays, 15 % replies that are no report
- `syndicate bounces read` into a fresh copy of the SQLite store (each report parsed, attributed and recorded, suppressions written); the reference is Python's `mailbox` iterating the same folder and parsing each message with `email.message_from_bytes(..., policy=default)`; both timed from process start

| mailbox | `syndicate bounces read` | peak memory | `mailbox` + `email` (the floor) | peak memory | ratio Syndicate / floor |
| --- | --- | --- | --- | --- | --- |
{rows}

Shared the machine: {shared}.
"""
    print(row)
    if args.no_record:
        return
    record(row)


if __name__ == "__main__":
    main()
