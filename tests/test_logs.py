"""Log lines stay one `key=value` line each, whatever the values hold."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from syndicate.observe.logs import LogfmtFormatter, logfmt

# One logfmt pair: a bare value, or a double-quoted one with \" and \\ escaped.
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')


def _pairs(text: str) -> dict[str, str]:
    """`text` read as nothing but key=value pairs, as a logfmt reader splits them (quotes kept)."""
    found = PAIR.findall(text)
    assert " ".join(f"{key}={value}" for key, value in found) == text, "not pairs alone"
    return dict(found)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("two words", '"two words"'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\path", r'"C:\\path"'),
        ("a=b", '"a=b"'),
        ("", '""'),
        ("line one\nline two", '"line one line two"'),
    ],
)
def test_logfmt_quotes_only_what_needs_it(value: str, written: str) -> None:
    """A value is bare when it can be, else quoted with its quotes and backslashes escaped."""
    assert logfmt(value) == written


def test_an_exception_with_quotes_stays_one_value() -> None:
    """An exception whose message holds double quotes is one `error=` value, not several."""
    try:
        raise ValueError('bad "key" = 3')
    except ValueError:
        record = logging.LogRecord(
            "syndicate.test", logging.ERROR, __file__, 1, "job failed job=%s", ("poll",),
            sys.exc_info(),
        )  # fmt: skip
    line = LogfmtFormatter().format(record)
    assert "\n" not in line
    head, fields = line.split(" job failed ")
    assert set(_pairs(head)) == {"ts", "level", "logger"}
    pairs = _pairs(fields)
    assert pairs["job"] == "poll"
    assert pairs["error"].startswith('"Traceback')
    assert r'ValueError: bad \"key\" = 3"' in pairs["error"]
    assert set(pairs) == {"job", "error"}
