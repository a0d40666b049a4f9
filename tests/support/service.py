"""A real `syndicate run` in a subprocess, on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.articles import article_record, pick_record
from tests.support.ports import free_port
from tests.support.waiting import wait_for

SECRET = "an end-to-end secret that is long enough"


def an_hour_ago(zone: str) -> tuple[str, datetime]:
    """A daily_at setting (HH:MM:SS in `zone`) whose latest time was an hour ago, and that time.

    The digest is then next due in 23 hours: it never fires by itself while a test runs, and
    the test asks for it with `syndicate digest run` when it wants it.
    """
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S"), moment


class Site:
    """A folder with a store, settings in the environment, and the demo corpus ingested."""

    def __init__(self, folder: Path, corpus: Path) -> None:
        """Settings for everything under `folder`; the corpus is ingested by the CLI."""
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE_")}
        self.env.update(
            {
                "SYNDICATE_DATABASE__URL": f"sqlite:///{folder / 'var' / 'store.db'}",
                "SYNDICATE_FEEDS__DIR": str(folder / "feeds"),
                "SYNDICATE_MAIL__OUTBOX_DIR": str(folder / "var" / "outbox"),
                "SYNDICATE_SOURCES__INBOX_DIR": str(folder / "var" / "inbox"),
                "SYNDICATE_SOURCES__SETTLE_SECONDS": "0.2",
                "SYNDICATE_SCHEDULE__POLL_SECONDS": "1",
                "SYNDICATE_SECURITY__SECRET_KEY": SECRET,
                "SYNDICATE_DIGESTS__KINDS": '["daily"]',
            }
        )
        if corpus.stat().st_size:
            self.cli("ingest", str(corpus))

    @property
    def inbox(self) -> Path:
        """The inbox folder the service polls."""
        return self.folder / "var" / "inbox"

    @property
    def outbox(self) -> Path:
        """The Maildir the outbox transport writes to."""
        return self.folder / "var" / "outbox"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `syndicate` command as an operator would; fail if it could not run."""
        result = subprocess.run(
            [sys.executable, "-m", "syndicate", *args],
            cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        assert result.returncode in (0, 1), f"syndicate {' '.join(args)}:\n{result.stderr}"
        return result

    def subscribe(self, addresses: list[str]) -> None:
        """Import confirmed English daily subscribers."""
        rows = "".join(f"{address},Reader,en,daily,\n" for address in addresses)
        (self.folder / "people.csv").write_text("email,name,language,digests,topics\n" + rows)
        assert self.cli("subscribers", "import", str(self.folder / "people.csv"), "--confirmed")

    def feature(self, identifier: str, published: datetime) -> None:
        """Ingest an English Editor's Choice article of `published`, for that day's digest."""
        path = self.folder / f"{identifier}.jsonl"
        path.write_text(
            article_record(identifier, f"Featured {identifier}", published)
            + pick_record(identifier, 1, published)
        )
        assert self.cli("ingest", str(path)).returncode == 0

    def ask_digest(self, kind: str, *options: str) -> str:
        """`syndicate digest run KIND …`, which must queue the run; what it printed."""
        result = self.cli("digest", "run", kind, *options)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, **settings: str) -> Service:
        """Start `syndicate run`, settings given here (`schedule__daily_at=…`) kept for later."""
        self.env.update({f"SYNDICATE_{key.upper()}": value for key, value in settings.items()})
        service = Service(self)
        service.wait_healthy()
        return service


class Service:
    """One running `syndicate run`; its standard error goes to a log file."""

    def __init__(self, site: Site) -> None:
        """Start the process on a free port, with the site's settings."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            "SYNDICATE_WEB__PUBLIC_URL": self.base + "/",  # unless the site sets its own
            **site.env,
            "SYNDICATE_WEB__PORT": str(self.port),
        }
        self.log_path = site.folder / f"service-{self.port}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "run"],
            cwd=site.folder, env=env, stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    @property
    def log(self) -> str:
        """Everything the service has logged so far."""
        return self.log_path.read_text()

    def wait_healthy(self, timeout: float = 300) -> None:
        """Wait until /healthz answers 200 (a build is on disk and the server is up)."""

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"syndicate run exited early:\n{self.log}")
            try:
                return httpx.get(f"{self.base}/healthz", timeout=10).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, timeout, "the service to be healthy")

    def wait_logged(self, text: str, timeout: float = 120) -> None:
        """Wait until the log contains `text`."""
        wait_for(lambda: text in self.log, timeout, f"{text!r} in the log:\n{self.log}")

    def get(self, path: str, **options: object) -> httpx.Response:
        """GET a path of the service."""
        return httpx.get(self.base + path, timeout=30, **options)  # type: ignore[arg-type]

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM the service and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """End the process at once, if it still runs (test cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo corpus dated up to this hour, written once for the session."""
    folder = tmp_path_factory.mktemp("corpus")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00+0000")
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "demo-data", "--articles", "240", "--tags", "300",
         "--now", now],
        capture_output=True, text=True, timeout=300, check=True, cwd=folder,
    )  # fmt: skip
    path = folder / "corpus.jsonl"
    path.write_text(result.stdout)
    return path


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Services a test starts; any still running at its end are killed."""
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()
