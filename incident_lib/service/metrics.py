"""`GET /metrics` of `incident serve` in Prometheus text format (prometheus_client).

    incident_queue_up                        1 when the queue answered this scrape, else 0
    incident_queue_depth                     jobs waiting to be claimed (queued + render)
    incident_jobs{state}                     jobs per state (on a shared queue: all replicas)
    incident_run_duration_seconds{mode,outcome}   histogram of jobs this replica's workers ran
    incident_webhook_requests_total{code}    webhook requests this replica answered, by code
    incident_workers{kind}                   this replica's worker slots: size, busy, warm

Each app has its own registry, so several apps in one process (tests) never share counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

__all__ = ["ServiceMetrics", "CONTENT_TYPE_LATEST"]

# An investigation takes from seconds (a re-render) to many minutes (a large window).
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600)


class _QueueCollector(Collector):
    """Reads the queue at scrape time (the depth is the shared queue's, not a local guess)."""

    def __init__(self, queue: Any, pool: Any) -> None:
        self.queue = queue
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        workers = GaugeMetricFamily("incident_workers", "Worker slots of this replica",
                                    labels=["kind"])
        workers.add_metric(["size"], self.pool.size)
        workers.add_metric(["busy"], self.pool.busy())
        workers.add_metric(["warm"], self.pool.warm())
        yield workers
        try:
            counts = self.queue.counts()
        except Exception:  # noqa: BLE001 - a scrape must answer; up=0 says why
            yield GaugeMetricFamily("incident_queue_up", "1 if the queue answered", value=0)
            return
        yield GaugeMetricFamily("incident_queue_up", "1 if the queue answered", value=1)
        yield GaugeMetricFamily("incident_queue_depth", "Jobs waiting to be claimed",
                                value=counts.get("queued", 0) + counts.get("render", 0))
        jobs = GaugeMetricFamily("incident_jobs", "Jobs per state", labels=["state"])
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        yield jobs


class ServiceMetrics:
    """The counters and histogram one app updates, plus the queue read at scrape time."""

    def __init__(self, queue: Any, pool: Any) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter("incident_webhook_requests", "Webhook requests answered",
                                ["code"], registry=self.registry)
        self.durations = Histogram("incident_run_duration_seconds",
                                   "Wall time of the jobs this replica's workers ran",
                                   ["mode", "outcome"], buckets=DURATION_BUCKETS,
                                   registry=self.registry)
        self.registry.register(_QueueCollector(queue, pool))

    def job_finished(self, job: Any, seconds: float, outcome: str) -> None:
        """Record one finished job (WorkerPool.on_finish)."""
        self.durations.labels(mode=job.mode, outcome=outcome).observe(seconds)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
