"""`syndicate bounces read`: a message, an mbox, a Maildir or standard input, one line a message."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from syndicate.store.schema import feedback_event
from syndicate.subscribers import registry
from syndicate.subscribers.verp import MailRef, Verp
from tests.support.cli import Ran, syndicate
from tests.support.subscribers import add_subscribers, confirmed

SAMPLES = Path(__file__).parent / "data" / "bounces"
SECRET = "bounce test secret"
BOUNCES = "bounces@news.example"
EDITION = "daily-en-2026-11-20"
# A mailbox's worth: a hard bounce, a soft one, a complaint, an auto-reply and a reply.
MIXED = (
    "dsn-postfix-user-unknown",
    "plain-yahoo-mailbox-full",
    "arf-yahoo-abuse",
    "auto-reply-persian-subject",
    "not-a-report",
)
MIXED_LINES = [
    f"bounced hard gone@mail.example {EDITION}",
    "bounced soft packed@yahoo.com (no edition)",
    "complained annoyed@yahoo.example (no edition)",
    "ignored: auto-reply",
    "ignored: not a report",
]


def _sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def _read(tmp_path: Path, database_url: str, *args: str, stdin: str | None = None) -> Ran:
    env = {
        "SYNDICATE_DATABASE__URL": database_url,
        "SYNDICATE_MAIL__BOUNCE_ADDRESS": BOUNCES,
        "SYNDICATE_SECURITY__SECRET_KEY": SECRET,
    }
    return syndicate("bounces", "read", *args, cwd=tmp_path, stdin=stdin, env=env)


def _verp(engine: Engine, email: str) -> str:
    """The envelope sender `email`'s copy of EDITION left with."""
    found = registry.find_by_email(engine, email)
    assert found is not None
    return Verp(SECRET).sender(BOUNCES, MailRef(found.pk, EDITION))


def _with_envelope(name: str, recipient: str) -> bytes:
    """A sample delivered to `recipient`, as a local delivery agent adds Delivered-To."""
    return f"Delivered-To: {recipient}\n".encode() + _sample(name).replace(
        b"Delivered-To:", b"X-Was:"
    )


def _readers(engine: Engine) -> None:
    add_subscribers(engine, ["gone@mail.example", "packed@yahoo.com"])
    confirmed(engine, "annoyed@yahoo.example")


def _events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(feedback_event)) or 0)


def _mixed(engine: Engine) -> list[bytes]:
    verp = _verp(engine, "gone@mail.example")
    return [_with_envelope(name, verp) if name == MIXED[0] else _sample(name) for name in MIXED]


def test_one_message_is_one_line_and_suppresses(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    """A hard bounce to a VERP address names subscriber and edition and suppresses at once."""
    _readers(engine)
    ran = _read(
        tmp_path, database_url, str(SAMPLES / "dsn-postfix-user-unknown.eml"),
        "--recipient", _verp(engine, "gone@mail.example"),
    )  # fmt: skip
    assert (ran.returncode, ran.stdout) == (0, f"bounced hard gone@mail.example {EDITION}\n")
    assert ran.stderr.splitlines()[-1] == "1 message read: 1 hard bounce, 1 address suppressed"
    assert registry.suppression_reason(engine, "gone@mail.example") == "bounced"
    assert registry.suppression_reason(engine, "packed@yahoo.com") is None


def test_an_mbox_is_read_message_by_message_and_twice_records_once(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    """Each message's line carries its place in the mbox; reading it again changes nothing."""
    _readers(engine)
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for raw in _mixed(engine):
        box.add(raw)
    box.close()
    path = str(tmp_path / "bounces.mbox")
    first = _read(tmp_path, database_url, path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{path}:{number}: {line}" for number, line in enumerate(MIXED_LINES, start=1)
    ]
    assert first.stderr.splitlines()[-1] == (
        "5 messages read: 1 hard bounce, 1 soft bounce, 1 complaint, 2 ignored, "
        "2 addresses suppressed"
    )
    assert registry.suppression_reason(engine, "annoyed@yahoo.example") == "complained"
    again = _read(tmp_path, database_url, path)
    assert again.returncode == 0
    assert again.stdout.splitlines()[:3] == [
        f"{path}:1: bounced hard gone@mail.example {EDITION} (already recorded)",
        f"{path}:2: bounced soft packed@yahoo.com (no edition) (already recorded)",
        f"{path}:3: complained annoyed@yahoo.example (no edition) (already recorded)",
    ]
    assert _events(engine) == 3


def test_a_maildir_is_read_and_a_message_that_cannot_be_is_named(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    """Every readable message is taken; the one that is not is named and the exit status is 1."""
    _readers(engine)
    folder = mailbox.Maildir(tmp_path / "Maildir")
    keys = [folder.add(raw) for raw in _mixed(engine)]
    folder.close()
    (tmp_path / "Maildir" / "new" / "9999.broken").mkdir()  # no file: cannot be read
    ran = _read(tmp_path, database_url, str(tmp_path / "Maildir"))
    assert ran.returncode == 1
    names = {key: tmp_path / "Maildir" / "new" / key for key in keys}
    expected = dict(zip(keys, MIXED_LINES, strict=True))
    assert sorted(ran.stdout.splitlines()) == sorted(f"{names[k]}: {expected[k]}" for k in keys)
    assert f"syndicate: {tmp_path}/Maildir/new/9999.broken: could not be read:" in ran.stderr
    assert ran.stderr.splitlines()[-1].endswith("; 1 could not be read")
    assert _events(engine) == 3


def test_standard_input_is_one_message_as_a_pipe_transport_passes_it(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    """`-` reads one message; `--recipient` is the envelope recipient the transport names."""
    _readers(engine)
    verp = _verp(engine, "packed@yahoo.com")
    raw = _sample("plain-yahoo-mailbox-full").decode()
    ran = _read(tmp_path, database_url, "--recipient", verp, "-", stdin=raw)
    assert (ran.returncode, ran.stdout) == (0, f"bounced soft packed@yahoo.com {EDITION}\n")
    reply = _read(tmp_path, database_url, stdin=_sample("auto-reply-arabic-subject").decode())
    assert (reply.returncode, reply.stdout) == (0, "ignored: auto-reply\n")
    assert registry.suppression_reason(engine, "packed@yahoo.com") is None  # one soft bounce


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda tmp: tmp / "missing.eml", "missing.eml: No such file or directory"),
        (lambda tmp: tmp, "a folder, but not a Maildir"),
        (lambda tmp: _write(tmp / "notes.txt", b"just some words\n"), "not a mail message"),
        (lambda tmp: _write(tmp / "empty.eml", b""), "not a mail message"),
    ],
)
def test_input_that_is_no_mailbox_stops_before_anything_is_read(
    tmp_path: Path, engine: Engine, database_url: str, make: object, said: str
) -> None:
    """A missing file or one that is no mail is exit 2, and the good input beside it is not read."""
    assert callable(make)
    _readers(engine)
    good = str(SAMPLES / "dsn-postfix-user-unknown.eml")
    ran = _read(tmp_path, database_url, good, str(make(tmp_path)))
    assert ran.returncode == 2
    assert said in ran.stderr
    assert ran.stdout == ""
    assert _events(engine) == 0


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_a_report_the_store_cannot_take_asks_the_pipe_to_try_again(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    """The store locked past its timeout: exit 75, so the mail server keeps the report; later it is taken."""
    from tests.support.sqlite_lock import LockHolder

    _readers(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    raw = _sample("dsn-postfix-user-unknown").decode()
    holder = LockHolder(Path(str(sqlite_engine.url.database)))
    holder.hold()
    try:
        locked = syndicate(
            "bounces", "read", "-", cwd=tmp_path, stdin=raw,
            env={"SYNDICATE_DATABASE__URL": url, "SYNDICATE_DATABASE__LOCK_TIMEOUT": "0.1",
                 "SYNDICATE_SECURITY__SECRET_KEY": SECRET},
        )  # fmt: skip
    finally:
        holder.release()
        holder.close()
    assert locked.returncode == 75, locked.stderr
    assert "the store failed" in locked.stderr
    assert _events(sqlite_engine) == 0
    retried = _read(tmp_path, url, "-", stdin=raw)
    assert retried.returncode == 0, retried.stderr
    assert _events(sqlite_engine) == 1
