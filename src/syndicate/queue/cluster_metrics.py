"""The cluster at /metrics: the queue read from the store at each scrape, as every node sees it.

Labels stay bounded: job kinds are the registry's, statuses procrastinate's; a worker's series
lasts while its row does (procrastinate deletes it when the worker stops, or prunes it once
dead), and a send's while it runs. The web serves this off its event loop, in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.observe.logs import logfmt
from syndicate.queue.cluster import STATES, Cluster, read_cluster

log = logging.getLogger(__name__)


class ClusterCollector(Collector):
    """Jobs by kind and status, workers and their heartbeats, stalled jobs, running sends."""

    def __init__(self, engine: Engine, stalled_seconds: float) -> None:
        """Read from `engine` at each scrape; workers silent for `stalled_seconds` are dead."""
        self.engine = engine
        self.stalled_seconds = stalled_seconds

    def collect(self) -> Iterator[Metric]:
        """The metrics as the queue has them now; none (and a warning) if it cannot be read."""
        try:
            cluster = read_cluster(self.engine, self.stalled_seconds)
        except SQLAlchemyError as error:  # /metrics still serves the process's own counters
            log.warning("cluster metrics unreadable error=%s", logfmt(str(error)))
            return
        if cluster is not None:
            yield from _job_metrics(cluster)
            yield from _send_metrics(cluster)


def _job_metrics(cluster: Cluster) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "syndicate_queue_jobs",
        "Jobs in the work queue by kind (task) and status (todo: waiting, doing, failed).",
        labels=["task", "status"],
    )
    for task in cluster.kinds:
        for status in STATES:
            jobs.add_metric([task, status], cluster.count(task, status))
    yield jobs
    yield GaugeMetricFamily(
        "syndicate_queue_workers_live",
        "Workers whose heartbeat is recent enough to count them alive.",
        value=len(cluster.live_workers),
    )
    ages = GaugeMetricFamily(
        "syndicate_queue_worker_heartbeat_age_seconds",
        "Seconds since each registered worker's last heartbeat: procrastinate's worker id,"
        " and the --name and host it gave (empty until it has).",
        labels=["worker", "name", "host"],
    )
    for worker in cluster.workers:
        name, host = (worker.name.name, worker.name.host) if worker.name else ("", "")
        ages.add_metric([str(worker.id), name, host], worker.age)
    yield ages
    yield GaugeMetricFamily(
        "syndicate_queue_jobs_stalled",
        "Running jobs whose worker stopped beating or is gone; a worker queues them again.",
        value=len(cluster.stalled),
    )


def _send_metrics(cluster: Cluster) -> Iterator[Metric]:
    sent = GaugeMetricFamily(
        "syndicate_send_sent",
        "Recipients the ledger has done for each running send.",
        labels=["edition"],
    )
    audience = GaugeMetricFamily(
        "syndicate_send_audience",
        "Recipients each running send will have reached when done.",
        labels=["edition"],
    )
    ratio = GaugeMetricFamily(
        "syndicate_send_progress_ratio",
        "The share of each running send's audience done, 0 to 1.",
        labels=["edition"],
    )
    batches = GaugeMetricFamily(
        "syndicate_send_batches",
        "Each running send's batches by state (waiting, running, done, failed).",
        labels=["edition", "state"],
    )
    for send in cluster.sends:
        sent.add_metric([send.edition_id], send.sent)
        if send.audience is not None:
            audience.add_metric([send.edition_id], send.audience)
            ratio.add_metric([send.edition_id], send.ratio)
        for state, count in send.batches.items():
            batches.add_metric([send.edition_id, state], count)
    yield from (sent, audience, ratio, batches)


def cluster_registry(engine: Engine, stalled_seconds: float) -> CollectorRegistry:
    """A registry of its own for the cluster metrics, served beside the process's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(engine, stalled_seconds))
    return registry
