"""The command line: what it prints where, and what its exit status says.

The commands run in this process (tests.support.cli), as quick as a function call; a taken port
is tried from a process of its own, as an operator would meet it.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import click
import pytest

from syndicate.cli import context as cli_context
from syndicate.cli.commands import main
from syndicate.settings import WebSettings
from syndicate.web.server import ListenError, listen
from tests.support.cli import Ran, operator_env, run_process, syndicate
from tests.support.fixture_corpus import FIXTURES
from tests.support.ports import free_port


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
    assert not (tmp_path / "var").exists()  # and no empty store is left behind


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


# -- options after the subcommand ----------------------------------------------------------


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_every_command_takes_the_shared_options() -> None:
    """Every command and group, new ones too, carries the one --config and --log-level."""
    paths = list(_commands(main))
    assert ("digest", "send") in paths
    for path in [(), *paths]:
        options = {param.name: param for param in _command(path).params}
        assert options["config"].callback is cli_context._take_config, path
        assert options["log_level"].callback is cli_context._take_log_level, path


# Every command that reads the settings, with the arguments it needs.
SETTINGS_COMMANDS = [
    ["config"],
    ["status"],
    ["build"],
    ["serve"],
    ["run"],
    ["ingest", "-"],
    ["digest", "build", "daily"],
    ["digest", "send", "daily-en-2026-11-23"],
    ["digest", "preview", "daily"],
    ["subscribers", "import", "people.csv"],
    ["subscribers", "export"],
]


@pytest.mark.parametrize("args", SETTINGS_COMMANDS, ids=" ".join)
def test_config_after_the_subcommand_is_read(tmp_path: Path, args: list[str]) -> None:
    """`syndicate status --config x.toml` reads x.toml, as `syndicate --config x.toml status` does."""
    result = syndicate(*args, "--config", "missing.toml", cwd=tmp_path, stdin="")
    assert result.returncode == 2
    assert result.stderr.strip() == "syndicate: settings file missing.toml does not exist"


def test_config_after_the_subcommand_wins_over_one_before(tmp_path: Path) -> None:
    """Given before and after the subcommand, the last --config is the one read."""
    (tmp_path / "first.toml").write_text('[site]\ntitle = "First"\n')
    (tmp_path / "second.toml").write_text('[site]\ntitle = "Second"\n')
    result = syndicate("--config", "first.toml", "config", "--config", "second.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'title = "Second"' in result.stdout


def test_log_level_after_the_subcommand_is_applied(tmp_path: Path) -> None:
    """`syndicate digest send ID --log-level warning` logs no info lines; debug shows debug ones."""
    assert syndicate("ingest", str(FIXTURES / "corpus.jsonl"), cwd=tmp_path).returncode == 0
    built = syndicate("digest", "build", "daily", "--lang", "en", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    edition = built.stdout.split()[-1]
    assert "level=info" in built.stderr  # the default level shows info lines
    quiet = syndicate("digest", "send", edition, "--log-level", "warning", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "level=info" not in quiet.stderr
    loud = syndicate(
        "--log-level", "warning", "digest", "send", edition, "--log-level", "debug", cwd=tmp_path
    )
    assert loud.returncode == 0, loud.stderr
    assert "level=debug" in loud.stderr


# -- a missing database ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["build"],
        ["serve"],
        ["digest", "build", "daily"],
        ["digest", "send", "daily-en-2026-11-23"],
        ["digest", "preview", "daily"],
        ["subscribers", "export"],
    ],
    ids=" ".join,
)
def test_a_missing_database_is_an_error_naming_its_path_and_setting(
    tmp_path: Path, args: list[str]
) -> None:
    """Run from another folder, a command that reads the store says so, and creates nothing."""
    env = {"SYNDICATE_WEB__PORT": str(free_port())}
    if args == ["serve"]:  # it holds its port from the start: only its process's end frees it
        result: Ran | CompletedProcess[str] = run_process(
            *args, cwd=tmp_path, env=operator_env(env), timeout=120
        )
    else:
        result = syndicate(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"syndicate: no database at {tmp_path / 'var' / 'syndicate.db'} ")
    assert "[database] url" in line
    assert "SYNDICATE_DATABASE__URL" in line
    assert not (tmp_path / "var").exists()


def test_subscribers_import_creates_the_database(tmp_path: Path) -> None:
    """Importing subscribers into a new store creates it, as ingest does."""
    (tmp_path / "people.csv").write_text(
        "email,name,language,digests,topics\na@b.example,A,en,daily,\n"
    )
    result = syndicate("subscribers", "import", "people.csv", "--confirmed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "syndicate.db").is_file()
    exported = syndicate("subscribers", "export", cwd=tmp_path)
    assert "a@b.example" in exported.stdout


# -- a taken port ----------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_taken_port_is_one_line_naming_it_and_its_setting(
    tmp_path: Path, taken_port: int, command: str
) -> None:
    """No banner, no build: one line saying which address is taken and what changes it, exit 2."""
    if command == "serve":  # serve needs a store; run would make its own
        assert syndicate("ingest", str(FIXTURES / "corpus.jsonl"), cwd=tmp_path).returncode == 0
    # A process of its own: the port is held by another process, as it would be in production.
    env = operator_env({"SYNDICATE_WEB__PORT": str(taken_port)})
    result = run_process(command, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert f"127.0.0.1:{taken_port}" in line
    assert "[web] port" in line
    assert "SYNDICATE_WEB__PORT" in line
    assert not (tmp_path / "feeds").exists()  # nothing was built before the port was tried
    if command == "run":
        assert not (tmp_path / "var").exists()


def test_a_port_is_held_from_the_moment_it_is_taken() -> None:
    """A second start on the same port is refused at once, not after its build (two runs)."""
    web = WebSettings(port=free_port())
    taken = f"127.0.0.1:{web.port}: the port is taken"
    with listen(web), pytest.raises(ListenError, match=taken):
        listen(web)


# -- demo-data ------------------------------------------------------------------------------


def test_demo_data_with_the_same_now_is_the_same_bytes(tmp_path: Path) -> None:
    """Same arguments and --now, same bytes (the README's promise); another hour, other bytes."""
    args = ["demo-data", "--articles", "60", "--tags", "50", "--seed", "3"]
    first = syndicate(*args, "--now", "2026-11-24T09:00:00+0000", cwd=tmp_path)
    same_moment = syndicate(*args, "--now", "2026-11-24T12:30:00+0330", cwd=tmp_path)
    later = syndicate(*args, "--now", "2026-11-24T10:00:00+0000", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n") > 60
    assert same_moment.stdout == first.stdout
    assert later.stdout != first.stdout


# -- JSON errors ----------------------------------------------------------------------------


def test_invalid_json_names_the_column_of_the_fault(tmp_path: Path) -> None:
    """The column counts the line as written, not its line break, and reads as a sentence."""
    lines = [
        '{"type": "article", "id": "x",}',  # the fault is the "}" at column 31
        '{"type": "article", "id": "x"',  # the line ends (column 30) where a "," or "}" belongs
        '{"type": "article", "id": "x\ty"}',  # a raw tab inside the string, column 29
        '{"type": "article", "id": "x',  # the string that never ends starts at column 27
    ]
    result = syndicate("ingest", "-", cwd=tmp_path, stdin="\n".join(lines) + "\n")
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("line ")] == [
        "line 1: invalid JSON: Expecting property name enclosed in double quotes at column 31",
        "line 2: invalid JSON: Expecting ',' delimiter at column 30",
        "line 3: invalid JSON: Invalid control character at column 29",
        "line 4: invalid JSON: Unterminated string starting at column 27",
    ]


@pytest.mark.parametrize("on_path", [False, True], ids=["not-on-path", "on-path"])
def test_the_banner_names_the_command_as_the_operator_can_call_it(
    monkeypatch: pytest.MonkeyPatch, on_path: bool
) -> None:
    """After `make run`, .venv/bin is not on PATH: the banner gives the path and how to fix it."""
    from syndicate.cli.commands import _banner
    from syndicate.settings import Settings

    bin_dir = Path(sys.executable).parent
    project = bin_dir.parent.parent
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "argv", [str(bin_dir / "syndicate"), "run"])
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin" if on_path else "/usr/bin:/bin")
    banner = _banner(Settings())
    if on_path:
        assert "  Status         syndicate status" in banner
        assert "activate" not in banner
    else:
        relative = bin_dir.relative_to(project)
        assert f"  Status         {relative}/syndicate status" in banner
        assert f"`. {relative}/activate` puts `syndicate` on PATH" in banner
