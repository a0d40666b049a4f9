"""The service's counters at /metrics, in Prometheus text format, from a real server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.observe import metrics
from syndicate.web.app import create_app
from tests.support.fixture_corpus import NOW, ingest_text
from tests.support.ports import free_port
from tests.support.web_server import serve_in_thread


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _scraped(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics answers with, as a Prometheus server would read it."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def server(feed_config: FeedConfig) -> Iterator[str]:
    """The web front over an empty feeds folder."""
    Path(feed_config.feeds_dir).mkdir(parents=True, exist_ok=True)
    yield from serve_in_thread(create_app(feed_config.feeds_dir), free_port())


def test_metrics_are_served_in_prometheus_text_format(server: str) -> None:
    """/metrics has Prometheus's content type, is never cached, and lists the service's counters."""
    response = httpx.get(f"{server}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == metrics.CONTENT_TYPE
    assert response.headers["cache-control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "syndicate_feed_builds",
        "syndicate_feeds_written",
        "syndicate_ingest_records",
        "syndicate_messages",
        "syndicate_websub_notifications",
        "syndicate_job_lag_seconds",
    } <= names


def test_a_build_counts_itself_and_the_files_it_wrote(
    server: str, sqlite_engine: Engine, corpus_text: str, feed_config: FeedConfig
) -> None:
    """Each build adds one to its mode's counter and the files it wrote to feeds_written."""
    full_before = _value("syndicate_feed_builds_total", {"mode": "full"})
    incremental_before = _value("syndicate_feed_builds_total", {"mode": "incremental"})
    written_before = _value("syndicate_feeds_written_total")
    ingest_text(sqlite_engine, corpus_text)
    first = build_feeds(sqlite_engine, feed_config, now=NOW)
    assert first.written > 0
    second = build_feeds(sqlite_engine, feed_config, now=NOW + timedelta(minutes=1))
    assert second.mode == "incremental"
    scraped = _scraped(server)
    assert scraped[("syndicate_feed_builds_total", (("mode", "full"),))] == full_before + 1
    assert (
        scraped[("syndicate_feed_builds_total", (("mode", "incremental"),))]
        == incremental_before + 1
    )
    assert scraped[("syndicate_feeds_written_total", ())] == (
        written_before + first.written + second.written
    )
