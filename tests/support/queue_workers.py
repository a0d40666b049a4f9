"""Real `syndicate worker` processes for tests: started, watched through their logs, stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.store import open_database
from tests.support.cli import operator_env, syndicate
from tests.support.waiting import PATIENCE, wait_for

StartWorker = Callable[[str], "Worker"]


class Worker:
    """A real `syndicate worker` process whose log lines land in a file the test can read."""

    def __init__(self, folder: Path, env: dict[str, str], name: str) -> None:
        """Start the worker (`started` waits until it says it has)."""
        self.name = name
        self.log = folder / f"{name}.log"
        with self.log.open("w") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syndicate", "worker", "--name", name],
                cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=sink, text=True,
            )  # fmt: skip

    def started(self) -> Worker:
        """The worker, once its log says it has started."""
        self.wait_for_line(f"worker started name={self.name} queues=all")
        return self

    def lines(self) -> list[str]:
        """The log lines written so far."""
        return self.log.read_text().splitlines()

    def wait_for_line(self, fragment: str) -> str:
        """The first log line holding `fragment`, once the worker has written it."""

        def found() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited:\n{self.log.read_text()}")
            return next((line for line in self.lines() if fragment in line), None)

        return str(wait_for(found, PATIENCE, f"a worker log line with {fragment!r}"))

    def stop(self) -> int:
        """SIGTERM, then its exit status once it has ended."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=PATIENCE)


@pytest.fixture
def start_worker(tmp_path: Path, env: dict[str, str]) -> Iterator[StartWorker]:
    """Starts a named worker on the test's store (the `env` fixture); all killed at the end."""
    workers: list[Worker] = []

    def start(name: str) -> Worker:
        workers.append(Worker(tmp_path, env, name))
        return workers[-1].started()

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers a test starts itself (with its own settings); those still running are killed."""
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def demo_store(env: dict[str, str], folder: Path) -> Engine:
    """The store `env` names, migrated and holding a demo corpus of 1,500 articles (~600 feeds)."""
    corpus = syndicate(
        "demo-data", "--articles", "1500", "--seed", "5", "--now", "2026-11-25T00:00:00Z",
        cwd=folder,
    ).stdout  # fmt: skip
    assert syndicate("ingest", "-", cwd=folder, stdin=corpus, env=env).returncode == 0
    return open_database(env["SYNDICATE_DATABASE__URL"])


def queue_env(store_url: str, folder: Path, **settings: str) -> dict[str, str]:
    """An operator's environment for queue tests: the PostgreSQL store, feeds under `folder`.

    `settings` adds more, as SYNDICATE_ variables (feeds__websub_hub="…").
    """
    return operator_env(
        {
            "SYNDICATE_DATABASE__URL": store_url,
            "SYNDICATE_FEEDS__DIR": str(folder / "feeds"),
            "SYNDICATE_SECURITY__SECRET_KEY": "a queue test secret that is long enough",
            **{f"SYNDICATE_{key.upper()}": value for key, value in settings.items()},
        }
    )
