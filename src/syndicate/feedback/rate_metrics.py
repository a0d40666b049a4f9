"""Deliverability at /metrics: read from the store at each scrape, so every process agrees.

Reports are recorded by several processes (the web's webhooks, the service's mailbox poller,
`syndicate bounces read`), so a counter kept in one process's memory would see only its own
share; these are read from the database instead. Label sets are bounded: providers and kinds
are fixed lists, and the gauges describe only the newest sent edition of each kind and
language (at most nine), never one series an edition. Rates over days are for PromQL
(`increase(syndicate_feedback_events_total[1d])`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.feedback.rates import Rates, latest_editions
from syndicate.observe.logs import logfmt
from syndicate.store.database import reading
from syndicate.store.tallies import SentEdition, feedback_counts

log = logging.getLogger(__name__)

EDITION_LABELS = ["kind", "language"]


class DeliverabilityCollector(Collector):
    """Feedback events by provider and kind; the newest edition of each kind and language."""

    def __init__(self, engine: Engine) -> None:
        """Read from `engine` at each scrape."""
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """The metrics as the store has them now; none (and a warning) if it cannot be read."""
        try:
            with reading(self.engine).connect() as connection:
                counts = feedback_counts(connection)
            latest = latest_editions(self.engine)
        except SQLAlchemyError as error:  # /metrics still serves the process's own counters
            log.warning("deliverability metrics unreadable error=%s", logfmt(str(error)))
            return
        events = CounterMetricFamily(
            "syndicate_feedback_events",
            "Bounces, complaints and deliveries recorded, by provider and kind.",
            labels=["provider", "kind"],
        )
        for (provider, kind), count in sorted(counts.items()):
            events.add_metric([provider, kind], count)
        yield events
        yield from _latest_edition_metrics(latest)


def _latest_edition_metrics(
    latest: dict[tuple[str, str], tuple[SentEdition, Rates]],
) -> Iterator[Metric]:
    date = GaugeMetricFamily(
        "syndicate_latest_edition_date_seconds",
        "The date of the newest sent edition of each kind and language (midnight UTC).",
        labels=EDITION_LABELS,
    )
    sent = GaugeMetricFamily(
        "syndicate_latest_edition_sent",
        "Messages the newest edition of each kind and language was sent in (refusals included).",
        labels=EDITION_LABELS,
    )
    addresses = GaugeMetricFamily(
        "syndicate_latest_edition_feedback",
        "Addresses of the newest edition that bounced hard or soft or complained.",
        labels=[*EDITION_LABELS, "outcome"],
    )
    rates = GaugeMetricFamily(
        "syndicate_latest_edition_rate",
        "Hard bounces, soft bounces and complaints of the newest edition, as a share of sent.",
        labels=[*EDITION_LABELS, "outcome"],
    )
    for (kind, language), (edition, rated) in sorted(latest.items()):
        day = datetime.strptime(edition.date, "%Y-%m-%d").replace(tzinfo=UTC)
        date.add_metric([kind, language], day.timestamp())
        sent.add_metric([kind, language], rated.sent)
        for outcome, count in (
            ("hard", rated.hard),
            ("soft", rated.soft),
            ("complaint", rated.complained),
        ):
            addresses.add_metric([kind, language, outcome], count)
            rates.add_metric([kind, language, outcome], rated.rate(count))
    yield from (date, sent, addresses, rates)


def deliverability_registry(engine: Engine) -> CollectorRegistry:
    """A registry of its own for the deliverability metrics, served beside the process's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliverabilityCollector(engine))
    return registry
