"""The command line: what it prints where, and what its exit status says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def syndicate(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `syndicate` as a user would, in `cwd`, with none of the caller's SYNDICATE_ settings."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")
    }
    return subprocess.run(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd, env=environment, input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_help_lists_the_commands(tmp_path: Path) -> None:
    """`syndicate --help` names every command people rely on."""
    result = syndicate("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("ingest", "demo-data", "build", "serve", "run", "config"):
        assert command in result.stdout


def test_ingest_good_file_exits_zero(tmp_path: Path) -> None:
    """All records accepted: exit 0 and a summary on standard output."""
    result = syndicate("ingest", str(FIXTURES / "corpus.jsonl"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "17 accepted (17 stored, 0 unchanged), 0 rejected"
    assert (tmp_path / "var" / "syndicate.db").is_file()


def test_ingest_with_rejects_exits_one_and_names_lines(tmp_path: Path) -> None:
    """Some records rejected: each named on standard error by line, the rest stored, exit 1."""
    lines = (FIXTURES / "corpus.jsonl").read_text().splitlines()
    lines.insert(3, '{"type": "article", "id": "x"}')
    lines.insert(6, "not json at all")
    result = syndicate("ingest", "-", cwd=tmp_path, stdin="\n".join(lines) + "\n")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert errors[0].startswith("line 4: article 'x': url: Field required")
    assert errors[1].startswith("line 7: invalid JSON")
    assert len(errors) == 2
    assert result.stdout.strip() == "17 accepted (17 stored, 0 unchanged), 2 rejected"


def test_ingest_unreadable_input_exits_two(tmp_path: Path) -> None:
    """A file that cannot be read: a clear message and exit 2."""
    result = syndicate("ingest", str(tmp_path / "missing.jsonl"), cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "missing.jsonl" in result.stderr


def test_build_prints_a_summary_and_writes_the_index(tmp_path: Path) -> None:
    """`syndicate build` writes the feeds and says what it did on standard output."""
    syndicate("ingest", str(FIXTURES / "corpus.jsonl"), cwd=tmp_path)
    result = syndicate("build", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("full build: ")
    assert (tmp_path / "feeds" / "index.opml").is_file()
    again = syndicate("build", cwd=tmp_path)
    assert again.stdout.startswith("incremental build: 0 feeds, 0 files written")


@pytest.mark.parametrize("args", [["demo-data", "--articles", "0"], ["ingest"], ["nope"]])
def test_usage_errors_exit_two(tmp_path: Path, args: list[str]) -> None:
    """Wrong arguments are a usage error: exit 2."""
    assert syndicate(*args, cwd=tmp_path).returncode == 2
