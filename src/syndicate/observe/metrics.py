"""The service's counters, served at /metrics in Prometheus text format.

One registry for the process, so tests can read it and nothing of prometheus_client's default
process collectors leaks in unasked. Parts count what they do here; the web front exposes it.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# The *_created series double the output and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

feed_builds = Counter(
    "syndicate_feed_builds", "Feed builds run, by mode (full, incremental).", ["mode"],
    registry=REGISTRY,
)  # fmt: skip
feeds_written = Counter(
    "syndicate_feeds_written", "Feed files written because their bytes changed.", registry=REGISTRY
)
ingest_records = Counter(
    "syndicate_ingest_records",
    "Records read from the sources, by source (inbox, wordpress) and outcome (accepted, rejected).",
    ["source", "outcome"],
    registry=REGISTRY,
)
source_failures = Counter(
    "syndicate_source_failures",
    "Polls of a source that failed (timeout, HTTP error, bad JSON), by source.",
    ["source"],
    registry=REGISTRY,
)
messages = Counter(
    "syndicate_messages",
    "Digest messages by outcome (sent, failed).",
    ["outcome"],
    registry=REGISTRY,
)
websub_notifications = Counter(
    "syndicate_websub_notifications",
    "Feeds announced to the WebSub hub, by result (ok, failed).",
    ["result"],
    registry=REGISTRY,
)
job_runs = Counter(
    "syndicate_job_runs", "Scheduled job runs, by job and result (ok, error).", ["job", "result"],
    registry=REGISTRY,
)  # fmt: skip
job_lag = Gauge(
    "syndicate_job_lag_seconds",
    "How late the last run of each job started after its scheduled time.",
    ["job"],
    registry=REGISTRY,
)


def exposition(*more: CollectorRegistry) -> bytes:
    """Every metric of this process, then those of `more` registries, in Prometheus text format."""
    return b"".join(generate_latest(registry) for registry in (REGISTRY, *more))
