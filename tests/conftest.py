"""Shared fixtures: real databases, servers and a browser (from tests/support), and a corpus."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from syndicate.feeds.config import FeedConfig
from tests.support.databases import check_postgres_url
from tests.support.fixture_corpus import FIXTURES, LANGUAGES
from tests.support.sites import SITE_TITLES

pytest_plugins = [
    "tests.support.databases",  # database_url (both), store_url and postgres_store (PostgreSQL), engine, sqlite_engine
    "tests.support.smtp_server",  # serve: aiosmtpd servers on loopback
    "tests.support.chromium",  # browser: headless Chromium, for the browser tests
    "tests.support.service",  # demo_corpus, services: `syndicate run` in a subprocess
    "tests.support.dovecot",  # dovecot: a private IMAP server on loopback
    "tests.support.postfix",  # postfix_relay: private Postfix instances on loopback
    "tests.support.s3_server",  # s3_server, s3_bucket: SeaweedFS's S3 gateway on loopback
    "tests.support.queue_workers",  # start_worker (needs `env`), workers: `syndicate worker`s
]

# Property tests must not depend on the machine's speed: no per-example deadline, no health
# check that fails a slow (loaded) machine, and in CI the same examples on every run.
settings.register_profile(
    "syndicate",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=bool(os.environ.get("CI")),
    print_blob=True,
)
settings.load_profile("syndicate")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a run whose PostgreSQL URL cannot be parsed, before any test starts."""
    check_postgres_url()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Sum up skipped tests in one line a reason, so that failures are not lost among them."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("skipped, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.line(f"{count:5d}  {reason}")


@pytest.fixture
def corpus_text() -> str:
    """The fixture corpus: three languages, hostile HTML, nasty tags, a draft, a future article."""
    return (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8")


@pytest.fixture
def feed_config(tmp_path: Path) -> FeedConfig:
    """Feed settings writing to a temporary folder, five items a feed."""
    return FeedConfig(
        site_url="https://site.example/",
        site_titles=SITE_TITLES,
        languages=LANGUAGES,
        feeds_dir=str(tmp_path / "feeds"),
        feeds_url="https://feeds.example/feeds/",
        items=5,
    )
