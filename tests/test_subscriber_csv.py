"""Subscriber lists as CSV: importing an operator's list and exporting the current one."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from syndicate.delivery.message import build_message
from syndicate.feedback.model import Feedback, FeedbackKind, Provider
from syndicate.feedback.record import FeedbackRules, record_feedback
from syndicate.store import open_database
from syndicate.store.schema import subscriber
from syndicate.subscribers import audience, registry
from syndicate.subscribers.csvfile import (
    CsvHeaderError,
    ImportReport,
    export_csv,
    import_csv,
    open_csv,
)
from tests.support.cli import syndicate
from tests.support.fixture_corpus import LANGUAGES, ingest_text
from tests.support.letters import HEADERS, LETTER
from tests.support.mail_reader import read_back, shown_name

KINDS = ("daily", "weekly", "monthly")
TOPICS = "\n".join(
    json.dumps(
        {"type": "topic", "slug": slug, "name": slug.title(), "language": "en", "description": "."}
    )
    for slug in ("kurds", "nato", "resistance")
)


def _import(
    engine: Engine, text: str, *, confirmed: bool = False
) -> tuple[ImportReport, list[str]]:
    errors: list[str] = []
    report = import_csv(
        engine,
        io.StringIO(text, newline=""),
        confirmed=confirmed,
        languages=LANGUAGES,
        kinds=KINDS,
        on_error=lambda line, reason: errors.append(f"line {line}: {reason}"),
    )
    return report, errors


def _export(engine: Engine) -> str:
    out = io.StringIO(newline="")
    export_csv(engine, out)
    return out.getvalue()


def test_bad_rows_are_named_by_line_and_the_rest_imported(engine: Engine) -> None:
    """Each bad row is reported as its line in the file; every good row is stored."""
    ingest_text(engine, TOPICS)
    report, errors = _import(
        engine,
        "email,name,language,digests,topics\n"
        "one@example.com,One,en,daily,kurds\n"
        "not an address,Two,en,daily,\n"
        'three@example.com,"Three,\nwith a line break",en,daily,\n'
        "four@example.com,Four,de,daily,\n"
        "five@example.com,Five,en,hourly,\n"
        "\n"
        "six@example.com,Six,ar,weekly;monthly,nato resistance\n"
        "seven@example.com,Seven,en,daily,atlantis\n"
        "eight@example.com,Eight,en,daily,,extra\n"
        "nine@example.com,,,,\n",
    )
    expected = [
        "line 3: email: 'not an address' is not a valid email address: ",
        "line 4: name: the name contains a control character (U+000A)",
        "line 6: language: 'de' is not a site language",
        "line 7: digests: unknown digest 'hourly'",
        "line 10: topics: unknown topic 'atlantis'",
        "line 11: 6 cells, but the first row names 5 columns",
    ]
    assert len(errors) == len(expected)
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start)
    assert (report.created, report.rejected) == (3, 6)
    six = registry.find_by_email(engine, "six@example.com")
    assert six is not None
    assert (six.language, six.digests, six.topics) == (
        "ar",
        ("weekly", "monthly"),
        ("nato", "resistance"),
    )
    nine = registry.find_by_email(engine, "nine@example.com")
    assert nine is not None
    assert (nine.language, nine.digests, nine.topics) == ("en", ("daily",), ()), "defaults"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("one@example.com,One\n", "unknown column 'one@example.com'"),
        ("name,language\nOne,en\n", "'email'"),
        ("email,email\na@example.com,b@example.com\n", "named twice"),
        ("email,phone\na@example.com,123\n", "unknown column 'phone'"),
    ],
)
def test_a_header_row_is_required(engine: Engine, text: str, message: str) -> None:
    """Without a header naming known columns the file is refused whole and nothing is stored."""
    with pytest.raises(CsvHeaderError, match=message):
        _import(engine, text)
    assert list(registry.all_subscribers(engine)) == []


def test_spellings_of_one_address_merge_into_one_subscriber(engine: Engine) -> None:
    """Rows whose addresses normalise alike become one subscriber with the choices combined."""
    ingest_text(engine, TOPICS)
    report, errors = _import(
        engine,
        "\ufeffEmail, Name ,Language,Digests,Topics\n"
        "Reader@Example.com,Leila,ar,daily,kurds\n"
        " reader@EXAMPLE.com ,,,weekly,nato\n",
    )
    assert errors == []
    assert (report.created, report.updated) == (1, 1)
    people = [person for person, _reason in registry.all_subscribers(engine)]
    assert len(people) == 1
    person = people[0]
    assert person.email == "reader@example.com"
    assert (person.name, person.language) == ("Leila", "ar")
    assert (person.digests, person.topics) == (("daily", "weekly"), ("kurds", "nato"))


def test_confirmed_flag_makes_an_existing_list_receive_digests(engine: Engine) -> None:
    """--confirmed marks imported people confirmed; without it they wait for confirmation."""
    _import(engine, "email,digests\npending@example.com,daily\n")
    _import(engine, "email,digests\nconfirmed@example.com,daily\n", confirmed=True)
    with engine.connect() as connection:
        receivers = audience.recipients(connection, "daily", "en", 0, 10)
    assert [r.email for r in receivers] == ["confirmed@example.com"]
    pending = registry.find_by_email(engine, "pending@example.com")
    assert pending is not None
    assert pending.status == "pending"


def test_an_import_never_downgrades_a_confirmed_subscriber(engine: Engine) -> None:
    """Re-importing a confirmed person without --confirmed keeps them confirmed."""
    _import(engine, "email\nreader@example.com\n", confirmed=True)
    _import(engine, "email,language\nreader@example.com,fa\n")
    person = registry.find_by_email(engine, "reader@example.com")
    assert person is not None
    assert (person.status, person.language) == ("confirmed", "fa")


@pytest.mark.parametrize("reason", ["unsubscribed", "bounced", "complained"])
def test_suppressed_addresses_are_not_resubscribed_by_an_import(
    engine: Engine, reason: str
) -> None:
    """An address on the suppression list is reported by line and left suppressed."""
    registry.suppress(engine, "gone@example.com", reason, "")  # type: ignore[arg-type]
    report, errors = _import(engine, "email\nkept@example.com\nGone@Example.com\n", confirmed=True)
    assert errors == ["line 3: gone@example.com is on the suppression list; not subscribed again"]
    assert (report.created, report.suppressed) == (1, 1)
    assert registry.find_by_email(engine, "gone@example.com") is None
    assert registry.suppression_reason(engine, "gone@example.com") == reason


def test_export_round_trips_through_import(engine: Engine, tmp_path: Path) -> None:
    """An export imported into an empty store exports the same bytes, suppressions included."""
    ingest_text(engine, TOPICS)
    _import(
        engine,
        "email,name,language,digests,topics\n"
        "a@example.com,Ali,ar,daily weekly,kurds;nato\n"
        'b@example.com,"=HYPERLINK(""http://evil.example"")",en,monthly,\n'
        "c@example.com,Cyrus,fa,daily,\n"
        "d@example.com,Dana,en,weekly,resistance\n",
        confirmed=True,
    )
    _import(engine, "email\npending@example.com\n")
    registry.suppress(engine, "c@example.com", "bounced", "550")
    d = registry.find_by_email(engine, "d@example.com")
    assert d is not None
    registry.unsubscribe(engine, d.pk)
    exported = _export(engine)
    assert exported.splitlines() == [
        "email,name,language,digests,topics,status,suppressed_because",
        "a@example.com,Ali,ar,daily weekly,kurds nato,confirmed,",
        'b@example.com,"\'=HYPERLINK(""http://evil.example"")",en,monthly,,confirmed,',
        "c@example.com,Cyrus,fa,daily,,bounced,bounced: 550",
        "d@example.com,Dana,en,weekly,resistance,unsubscribed,unsubscribed",
        "pending@example.com,,en,daily,,pending,",
    ]
    fresh = open_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        ingest_text(fresh, TOPICS)
        report, errors = _import(fresh, exported, confirmed=True)
        assert errors == []
        assert report.created == 5
        assert _export(fresh) == exported
        b = registry.find_by_email(fresh, "b@example.com")
        assert b is not None
        assert b.name == '=HYPERLINK("http://evil.example")', "the apostrophe guard comes off"
        with fresh.connect() as connection:
            receivers = audience.recipients(connection, "daily", "fa", 0, 10)
        assert receivers == [], "a bounced address stays suppressed in the new store"
    finally:
        fresh.dispose()


def _report(
    engine: Engine, kind: FeedbackKind, email: str, key: str, provider: Provider, **more: Any
) -> None:
    """Record what a report or webhook says, the way every path records it."""
    record_feedback(
        engine,
        Feedback(provider, kind, email, key, datetime.now(UTC) - timedelta(hours=1), **more),
        FeedbackRules(soft_limit=3, soft_days=14),
    )


def test_the_export_says_why_each_address_is_suppressed_and_imports_back(
    engine: Engine, tmp_path: Path
) -> None:
    """Bounces, complaints and soft bounces recorded as reports show their reason and survive import."""
    people = ["hard@example.com", "spam@example.com", "full@example.com", "fine@example.com"]
    _import(engine, "email\n" + "\n".join(people) + "\n", confirmed=True)
    diagnostic = "=cmd|' /C calc'!A0 550 5.1.1 user unknown"  # a remote server's words
    _report(engine, FeedbackKind.HARD, people[0], "dsn-1", Provider.MAIL, status="5.1.1",
            diagnostic=diagnostic)  # fmt: skip
    _report(engine, FeedbackKind.COMPLAINT, people[1], "ses-1", Provider.SES)
    for number in range(3):
        _report(engine, FeedbackKind.SOFT, people[2], f"soft-{number}", Provider.POSTMARK,
                status="4.2.2", diagnostic="mailbox full")  # fmt: skip
    exported = _export(engine)
    because = {
        row["email"]: row["suppressed_because"] for row in csv.DictReader(io.StringIO(exported))
    }
    assert because == {
        "hard@example.com": "bounced: mail 5.1.1 " + diagnostic,  # the reason first: no formula
        "spam@example.com": "complained: ses",
        "full@example.com": "bounced: 3 soft bounces in 14 days; last: postmark 4.2.2 mailbox full",
        "fine@example.com": "",
    }
    fresh = open_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        report, errors = _import(fresh, exported, confirmed=True)
        assert (errors, report.created) == ([], 4)
        assert _export(fresh) == exported
        assert registry.suppression_reason(fresh, "spam@example.com") == "complained"
    finally:
        fresh.dispose()


def test_export_carries_nothing_that_could_forge_a_link(engine: Engine) -> None:
    """The export has the documented columns only: no keys, tokens or database ids."""
    _import(engine, "email\nreader@example.com\n", confirmed=True)
    header, row = _export(engine).splitlines()
    assert header == "email,name,language,digests,topics,status,suppressed_because"
    assert row == "reader@example.com,,en,daily,,confirmed,"


# Bytes that are not UTF-8, and rows of garbage ---------------------------------------------


def _import_file(engine: Engine, path: Path, **options: Any) -> tuple[ImportReport, list[str]]:
    errors: list[str] = []
    with open_csv(path) as stream:
        report = import_csv(
            engine,
            stream,
            confirmed=True,
            languages=LANGUAGES,
            kinds=KINDS,
            on_error=lambda line, reason: errors.append(f"line {line}: {reason}"),
            **options,
        )
    return report, errors


def test_a_byte_that_is_not_utf8_rejects_its_row_alone(engine: Engine, tmp_path: Path) -> None:
    """One Latin-1 byte: that row is named by line (and cell), every other row is imported."""
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"email,name,language\n"
        b"one@example.com,One,en\n"
        b"two@example.com,Jos\xe9,en\n"
        b'three@example.com,"Three,\nthen J\xfcrgen",en\n'
        b"four@example.com,Four,en\n"
    )
    report, errors = _import_file(engine, path)
    assert errors == [
        "line 3: not valid UTF-8: byte 0xE9 in the name cell; save the file as UTF-8",
        "line 4: not valid UTF-8: byte 0xFC in the name cell on line 5; save the file as UTF-8",
    ]
    assert (report.created, report.rejected) == (2, 2)
    assert [person.email for person, _ in registry.all_subscribers(engine)] == [
        "one@example.com",
        "four@example.com",
    ]


def test_a_header_that_is_not_utf8_refuses_the_file(engine: Engine, tmp_path: Path) -> None:
    """A first row that is not UTF-8 cannot name the columns: nothing is imported."""
    path = tmp_path / "list.csv"
    path.write_bytes(b"email,n\xe4me\none@example.com,One\n")
    with pytest.raises(CsvHeaderError, match="not valid UTF-8"):
        _import_file(engine, path)


def test_the_command_names_the_line_imports_the_rest_and_exits_1(tmp_path: Path) -> None:
    """`subscribers import` with a bad byte: `line N: not valid UTF-8`, a summary, exit 1."""
    path = tmp_path / "list.csv"
    path.write_bytes(b"email,name\na@example.com,A\nb@example.com,\xff\nc@example.com,C\n")
    env = {"SYNDICATE_DATABASE__URL": f"sqlite:///{tmp_path / 'store.db'}"}
    result = syndicate("subscribers", "import", str(path), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "line 3: not valid UTF-8: byte 0xFF in the name cell" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == (
        "2 created, 0 updated, 1 rejected, 0 suppressed and left alone"
    )


def test_addresses_that_need_smtputf8_are_named_and_counted(engine: Engine) -> None:
    """Each imported address with a UTF-8 local part is noted by line, once, and counted."""
    notes: list[str] = []
    report = import_csv(
        engine,
        io.StringIO(
            "email\nÜñí@exämple.com\nplain@exämple.com\nüñí@xn--exmple-cua.com\nرضا@example.com\n",
            newline="",
        ),
        confirmed=True,
        languages=LANGUAGES,
        kinds=KINDS,
        on_error=lambda line, reason: pytest.fail(f"line {line}: {reason}"),
        on_notice=lambda line, note: notes.append(f"line {line}: {note}"),
    )
    assert notes == [
        "line 2: üñí@xn--exmple-cua.com needs SMTPUTF8 (its local part is not ASCII)",
        "line 5: رضا@example.com needs SMTPUTF8 (its local part is not ASCII)",
    ]
    assert report.smtputf8 == ["üñí@xn--exmple-cua.com", "رضا@example.com"]
    assert report.summary().endswith("; 2 addresses need SMTPUTF8")


GOOD = st.builds(
    lambda local, name, language: (f"{local}@example.com", name, language),
    st.text(st.sampled_from("abcdefgh0123456789"), min_size=1, max_size=10),
    st.text(st.sampled_from("AbcDé عل "), max_size=12).map(str.strip),
    st.sampled_from(LANGUAGES),
)
# Garbage for one line: bytes with at least one that is never UTF-8, or text without an "@"
# (so it is no address). No quote, which would run on into the next lines as one cell.
BAD_BYTES = st.builds(
    lambda head, tail: head + b"\xff" + tail,
    st.binary(max_size=20).map(lambda data: data.translate(None, b'"\r\n')),
    st.binary(max_size=20).map(lambda data: data.translate(None, b'"\r\n')),
)
BAD_TEXT = st.text(max_size=30).map(
    lambda text: (
        "x" + "".join(c for c in text if c not in '"@\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029')
    )
)
ROWS = st.lists(
    st.one_of(
        GOOD.map(lambda row: ("good", row)),
        BAD_BYTES.map(lambda row: ("bad", row)),
        BAD_TEXT.map(lambda row: ("bad", row)),
    ),
    max_size=15,
)


@given(rows=ROWS)
def test_garbage_rows_are_named_by_line_and_every_good_row_imported(
    sqlite_engine: Engine, tmp_path: Path, rows: list[tuple[str, Any]]
) -> None:
    """Any mix of valid rows and garbage lines: no traceback, good rows in, bad ones by line."""
    with sqlite_engine.begin() as connection:
        connection.execute(subscriber.delete())
    lines = [b"email,name,language"]
    expected: dict[str, tuple[str, str]] = {}
    bad_lines: list[int] = []
    for number, (kind, row) in enumerate(rows, start=2):
        if kind == "good":
            email, name, language = row
            email = f"r{number}{email}"  # each row its own address
            out = io.StringIO()
            csv.writer(out).writerow([email, name, language])
            lines.append(out.getvalue().rstrip("\r\n").encode())
            expected[email] = (" ".join(name.split()), language)
        else:
            lines.append(row if isinstance(row, bytes) else row.encode())
            bad_lines.append(number)
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report, errors = _import_file(sqlite_engine, path)
    stored = {
        person.email: (person.name, person.language)
        for person, _ in registry.all_subscribers(sqlite_engine)
    }
    assert stored == expected
    named = [int(error.split(":")[0].removeprefix("line ")) for error in errors]
    assert named == bad_lines
    assert report.rejected == len(bad_lines)


NAMES = st.one_of(
    st.text(max_size=220),
    st.lists(
        st.sampled_from(
            ['"', "\\", ",", "<", ">", "=?", "?=", "=?utf-8?q?=0D=0A", "\r\n", "é", " "]
        )
        | st.text(max_size=3),
        max_size=30,
    ).map("".join),
)


@given(name=NAMES)
def test_a_name_from_a_csv_file_is_mailed_as_written_or_refused_by_line(
    sqlite_engine: Engine, name: str
) -> None:
    """Any name cell: its row is refused by line, or the subscriber's mail shows it as typed."""
    with sqlite_engine.begin() as connection:
        connection.execute(subscriber.delete())
    out = io.StringIO(newline="")
    csv.writer(out).writerows([["email", "name"], ["reader@example.com", name]])
    _, errors = _import(sqlite_engine, out.getvalue(), confirmed=True)
    person = registry.find_by_email(sqlite_engine, "reader@example.com")
    if errors:
        assert [error.split(": ")[0:2] for error in errors] == [["line 2", "name"]]
        assert person is None
        return
    assert person is not None
    shown = " ".join(unicodedata.normalize("NFC", name).split())
    assert person.name == shown
    raw = build_message(replace(LETTER, to_email=person.email, to_name=person.name))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert re.findall(rb"^([^ \r\n][^:]*):", head, re.MULTILINE) == [h.encode() for h in HEADERS]
    assert [to.addr_spec for to in read_back(raw)["To"].addresses] == ["reader@example.com"]
    assert shown_name(raw, "To") == shown
