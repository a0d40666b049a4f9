"""Subscriber lists as CSV: importing an operator's list and exporting the current one."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.store import open_database
from syndicate.subscribers import registry
from syndicate.subscribers.csvfile import CsvHeaderError, ImportReport, export_csv, import_csv
from tests.conftest import LANGUAGES, ingest_text

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
        receivers = registry.recipients(connection, "daily", "en", 0, 10)
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
        "email,name,language,digests,topics,status",
        "a@example.com,Ali,ar,daily weekly,kurds nato,confirmed",
        'b@example.com,"\'=HYPERLINK(""http://evil.example"")",en,monthly,,confirmed',
        "c@example.com,Cyrus,fa,daily,,bounced",
        "d@example.com,Dana,en,weekly,resistance,unsubscribed",
        "pending@example.com,,en,daily,,pending",
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
            receivers = registry.recipients(connection, "daily", "fa", 0, 10)
        assert receivers == [], "a bounced address stays suppressed in the new store"
    finally:
        fresh.dispose()


def test_export_carries_nothing_that_could_forge_a_link(engine: Engine) -> None:
    """The export has the documented columns only: no keys, tokens or database ids."""
    _import(engine, "email\nreader@example.com\n", confirmed=True)
    header, row = _export(engine).splitlines()
    assert header == "email,name,language,digests,topics,status"
    assert row == "reader@example.com,,en,daily,,confirmed"
