r"""Bounce mailboxes the service reads: a local Maildir and an IMAP folder of reports.

Each message is taken in (feedback.intake: parsed, recorded, the address suppressed when the
rules say so) and only then marked read: a crash between reading and recording leaves it
where it was, and reading it again records nothing new (its event key is stored). A message
whose recording fails stays for the next poll. Marked read means:

- Maildir: moved from new/ to cur/ with the S (seen) flag, as a mail client marks a message it
  has shown; a message in cur/ without S is read too. Nothing is deleted, so an operator can
  look at any report later (`mutt -f`), and a client reading the same Maildir sees the reports
  Syndicate has not taken yet as unread.
- IMAP: moved to `processed_folder` (UID MOVE, or COPY, \Deleted and UID EXPUNGE where the
  server lacks MOVE), or, with that empty, flagged \Seen; then only unseen messages are read.
  The message is fetched with BODY.PEEK, which leaves it unseen until it is recorded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.feedback.intake import TakenReport, feedback_rules, take_report
from syndicate.feedback.record import FeedbackRules
from syndicate.observe.logs import logfmt
from syndicate.service.imap_mailbox import ImapMailbox, MailboxError
from syndicate.settings import Settings

log = logging.getLogger(__name__)

INFO = ":2,"  # a Maildir file name's info part starts here: "unique:2,FLAGS"
SEEN = "S"


@dataclass
class MailboxReading:
    """What one look at one mailbox did."""

    source: str  # "maildir" or "imap"
    messages: int = 0  # read this time
    recorded: int = 0  # reports recorded (or found recorded before) and marked read
    ignored: int = 0  # not reports (auto-replies, ...): marked read, nothing recorded
    failed: int = 0  # could not be recorded: left unread for the next poll
    error: str = ""  # why the mailbox could not be read (or a message not recorded), if so

    @property
    def ok(self) -> bool:
        """Whether every message read was dealt with."""
        return not (self.failed or self.error)

    def summary(self) -> str:
        """`source=imap messages=3 recorded=2 ignored=1 failed=0`, and the error if any."""
        text = (
            f"source={self.source} messages={self.messages} recorded={self.recorded} "
            f"ignored={self.ignored} failed={self.failed}"
        )
        return text + (f" error={logfmt(self.error)}" if self.error else "")


Take = Callable[[bytes, str], TakenReport]


def configured(settings: Settings) -> bool:
    """Whether [bounces] names a mailbox to read (a Maildir, an IMAP host)."""
    return settings.bounces.maildir is not None or bool(settings.bounces.imap.host)


def read_bounce_mailboxes(
    engine: Engine, settings: Settings, stop: threading.Event | None = None
) -> list[MailboxReading]:
    """Read every configured bounce mailbox once: the Maildir, then the IMAP folder.

    Setting `stop` ends a reading between two messages; the rest wait for the next poll.
    """
    bounces = settings.bounces
    if not configured(settings):
        return []
    take = _taker(engine, feedback_rules(engine, settings))
    stop = stop or threading.Event()
    readings = []
    if bounces.maildir is not None:
        readings.append(read_maildir(bounces.maildir, take, stop))
    if bounces.imap.host and not stop.is_set():
        readings.append(read_imap(ImapMailbox(bounces.imap), take, stop))
    for reading in readings:
        busy = reading.messages or not reading.ok
        (log.info if busy else log.debug)("bounces read %s", reading.summary())
    return readings


def _taker(engine: Engine, rules: FeedbackRules) -> Take:
    def take(raw: bytes, reference: str) -> TakenReport:
        return take_report(engine, raw, rules, reference=reference)

    return take


def _take_one(reading: MailboxReading, take: Take, raw: bytes, reference: str) -> bool:
    """Take one message in, counting it; whether it may be marked read.

    A store that fails stops the reading (SQLAlchemyError propagates): every other message
    would fail alike, and they all stay for the next poll.
    """
    reading.messages += 1
    try:
        taken = take(raw, reference)
    except SQLAlchemyError:
        reading.failed += 1
        raise
    except Exception as error:  # one message that cannot be read must not stop the others
        reading.failed += 1
        where = logfmt(reference)
        log.exception("bounce not recorded source=%s reference=%s", reading.source, where)
        reading.error = reading.error or reason(error)
        return False
    if taken.ignored:
        reading.ignored += 1
    else:
        reading.recorded += 1
    for line in taken.lines():
        log.info(
            "bounce source=%s reference=%s outcome=%s",
            reading.source, logfmt(reference), logfmt(line),
        )  # fmt: skip
    return True


# Maildir ------------------------------------------------------------------------------------


def read_maildir(folder: Path, take: Take, stop: threading.Event) -> MailboxReading:
    """Take in every unseen message of the Maildir `folder`, marking each seen once recorded."""
    reading = MailboxReading("maildir")
    try:
        for path in unseen_messages(folder):
            if stop.is_set():
                break
            try:
                raw = path.read_bytes()
            except FileNotFoundError:  # a client moved it meanwhile: it is read next time
                continue
            if _take_one(reading, take, raw, f"maildir:{path.name.partition(INFO)[0]}"):
                mark_seen(folder, path)
    except (OSError, SQLAlchemyError) as error:
        reading.error = reason(error)
    return reading


def unseen_messages(folder: Path) -> Iterator[Path]:
    """Messages of the Maildir not yet flagged seen: all of new/, and cur/ without S."""
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(folder / sub)):
            if name.startswith("."):
                continue
            flags = name.partition(INFO)[2]
            if sub == "new" or SEEN not in flags:
                yield folder / sub / name


def mark_seen(folder: Path, path: Path) -> Path:
    """Move a message to cur/ with the S flag added to its others (a rename: atomic)."""
    unique, _, flags = path.name.partition(INFO)
    flags = "".join(sorted(set(flags) | {SEEN}))
    target = folder / "cur" / f"{unique}{INFO}{flags}"
    os.rename(path, target)
    return target


# IMAP ---------------------------------------------------------------------------------------


def read_imap(mailbox: ImapMailbox, take: Take, stop: threading.Event) -> MailboxReading:
    """Take in the folder's waiting messages, each moved or flagged once it is recorded."""
    reading = MailboxReading("imap")
    try:
        with mailbox.opened() as folder:
            for uid in folder.waiting():
                if stop.is_set():
                    break
                raw = folder.fetch(uid)
                if raw is None:  # expunged by someone else meanwhile
                    continue
                if _take_one(reading, take, raw, folder.reference(uid)):
                    folder.done(uid)
    except (MailboxError, OSError, SQLAlchemyError) as error:
        reading.error = reason(error)
    return reading


def reason(error: Exception) -> str:
    """An error as one short line: its type and its first line (not a statement's parameters)."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()
