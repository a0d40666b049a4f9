"""A newsroom for send tests: a store with a demo corpus, confirmed subscribers and an edition.

It is set up through the command line, as an operator would, in this process (quick); the
sends themselves run as processes of their own, since processes are what they are about.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.support.cli import Ran, operator_env, run_process, syndicate

POOL = 4  # SMTP connections each sending process keeps
DAY = "2026-11-20"  # the day of the newsroom's daily edition


def addresses(count: int) -> list[str]:
    """`count` subscriber addresses."""
    return [f"reader{number:05d}@example.org" for number in range(count)]


def subscribers_csv(rows: list[str]) -> str:
    """A subscribers file for `syndicate subscribers import`: the header, then `rows`."""
    return "email,name,language,digests,topics\n" + "".join(f"{row}\n" for row in rows)


class Newsroom:
    """A store with a demo corpus, `count` confirmed English subscribers and a built edition."""

    def __init__(
        self, folder: Path, smtp_port: int, count: int, settings: Mapping[str, str] | None = None
    ) -> None:
        """Set it all up through the command line, mailing through the SMTP server on `smtp_port`.

        `settings` (SYNDICATE_ variables) add to or replace the newsroom's own, e.g. its store.
        """
        self.folder = folder
        self.env = operator_env(
            {
                "SYNDICATE_DATABASE__URL": f"sqlite:///{folder / 'store.db'}",
                "SYNDICATE_FEEDS__DIR": str(folder / "feeds"),
                "SYNDICATE_MAIL__TRANSPORT": "smtp",
                "SYNDICATE_MAIL__SMTP__HOST": "127.0.0.1",
                "SYNDICATE_MAIL__SMTP__PORT": str(smtp_port),
                "SYNDICATE_MAIL__SMTP__POOL_SIZE": str(POOL),
                "SYNDICATE_MAIL__SMTP__RETRIES": "2",
                "SYNDICATE_SECURITY__SECRET_KEY": "a test secret that is long enough",
                "SYNDICATE_WEB__PUBLIC_URL": "https://news.example/",
                **(settings or {}),
            }
        )
        demo = self.cli("demo-data", "--articles", "400", "--now", "2026-11-21T12:00:00+0000")
        (folder / "corpus.jsonl").write_text(demo.stdout)
        self.cli("ingest", str(folder / "corpus.jsonl"))
        rows = [f"{address},Reader {n},en,daily," for n, address in enumerate(addresses(count))]
        (folder / "subscribers.csv").write_text(subscribers_csv(rows))
        imported = self.cli("subscribers", "import", str(folder / "subscribers.csv"), "--confirmed")
        assert imported.returncode == 0, imported.stderr
        built = self.cli("digest", "build", "daily", "--date", DAY, "--lang", "en")
        self.edition = built.stdout.strip().splitlines()[-1]
        assert self.edition == f"daily-en-{DAY}"

    def cli(self, *args: str) -> Ran:
        """Run a quick command in this process, with the newsroom's settings; it must run."""
        ran = syndicate(*args, cwd=self.folder, env=self.env)
        assert ran.returncode in (0, 1), f"syndicate {' '.join(args)} failed:\n{ran.stderr}"
        return ran

    def send(self) -> subprocess.CompletedProcess[str]:
        """`syndicate digest send` of the edition, to completion, in a process of its own."""
        return self.process("digest", "send", self.edition)

    def process(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in a process of its own, with the newsroom's settings.

        With `check`, it must have run (exit 0 or 1, not 2: could not start or go on).
        """
        result = run_process(*args, cwd=self.folder, env=self.env)
        if check:
            assert result.returncode in (0, 1), f"syndicate {' '.join(args)}:\n{result.stderr}"
        return result
