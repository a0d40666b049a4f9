"""The `syndicate` command for tests: in this process (quick), or in its own (processes matter).

In this process, click's CliRunner gives the command its own standard streams, environment
and folder, as a shell would; what it changed of the process (logging, the store's
connections) is put back afterwards. A subprocess is for what only a process shows: signals,
several processes at once, a port held across processes, start-up itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from syndicate.cli.commands import main
from syndicate.cli.context import Context

SETTINGS_PREFIX = "SYNDICATE_"
NOISY = ("alembic", "apscheduler", "httpx", "procrastinate")  # the loggers setup_logging quiets


@dataclass(frozen=True)
class Ran:
    """What a command did, named as subprocess names it: exit status, output and errors."""

    returncode: int
    stdout: str
    stderr: str


def operator_env(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of this process without its SYNDICATE_ settings, then `settings` added."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIX)
    }
    environment.update(settings or {})
    return environment


def syndicate(
    *args: str, cwd: Path, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> Ran:
    """Run `syndicate ARGS` in this process, in `cwd`, with only the SYNDICATE_ settings of `env`."""
    settings: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith(SETTINGS_PREFIX)
    }
    settings.update(
        {key: value for key, value in (env or {}).items() if key.startswith(SETTINGS_PREFIX)}
    )
    with (
        contextlib.chdir(cwd),
        _process_state_put_back(),
        CliRunner().isolation(input=stdin, env=settings) as (stdout, stderr, _),
    ):
        # Made here, as the command would make it, so that it logs to this standard error.
        context = Context()
        code: object = 0
        try:
            main.main(args=list(args), prog_name="syndicate", obj=context)
        except SystemExit as exit:
            code = exit.code
        finally:
            if context._engine is not None:  # the store's connections, closed as an exit would
                context._engine.dispose()
        sys.stdout.flush()
        sys.stderr.flush()
        return Ran(_status(code), stdout.getvalue().decode(), stderr.getvalue().decode())


def _status(code: object) -> int:
    """The exit status `sys.exit(code)` gives a process."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


@contextlib.contextmanager
def _process_state_put_back() -> Iterator[None]:
    """Undo what a command sets for its whole process: its logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in NOISY}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, quiet_level in quiet.items():
            logging.getLogger(name).setLevel(quiet_level)


def run_process(
    *args: str, cwd: Path, env: Mapping[str, str], stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `syndicate ARGS` in a process of its own, with `env` as its whole environment."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd, env=dict(env), input=stdin, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def start_process(*args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start `syndicate ARGS` in the background; its output is piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
