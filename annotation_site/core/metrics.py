"""Prometheus metrics of the platform, served at /metrics (staff or the METRICS_TOKEN bearer token).

- realqa_labels_stored_total{source}: labels committed to the database; labels per minute is
  `rate(realqa_labels_stored_total[5m]) * 60`.
- realqa_http_request_duration_seconds{method,route,status}: request latency by URL pattern.
- realqa_celery_task_duration_seconds{task,state} and realqa_celery_task_failures_total{task}:
  recorded by the workers (workers/observability.py).
- realqa_celery_queue_length{queue}: messages waiting in each Celery queue, read from the broker at
  scrape time.

Each process counts for itself. Several processes on one machine (gunicorn workers, a prefork Celery
worker) share their counts when PROMETHEUS_MULTIPROC_DIR names an empty folder they all see (set it
before they start, wipe it at deploy); a worker machine serves its own numbers on CELERY_METRICS_PORT."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

LABELS_STORED = Counter("realqa_labels_stored", "Labels stored (committed annotations)", ["source"])
REQUEST_SECONDS = Histogram(
    "realqa_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TASK_SECONDS = Histogram(
    "realqa_celery_task_duration_seconds",
    "Run time of Celery tasks",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0),
)
TASK_FAILURES = Counter("realqa_celery_task_failures", "Celery tasks that raised", ["task"])


def label_stored(*, source: str) -> None:
    LABELS_STORED.labels(source=source).inc()


class _Forward:
    """Hands an existing registry's metrics to another registry (no describe: no duplicate checks)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


class QueueLengthCollector:
    def __init__(self, queue_lengths: dict[str, int] | None) -> None:
        self._lengths = queue_lengths

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("realqa_celery_queue_length", "Messages waiting in a Celery queue", labels=["queue"])
        for queue, length in sorted((self._lengths or {}).items()):
            gauge.add_metric([queue], length)
        yield gauge
        up = GaugeMetricFamily("realqa_broker_up", "1 when the broker answered this scrape")
        up.add_metric([], 0 if self._lengths is None else 1)
        yield up


def process_registry() -> CollectorRegistry:
    """This machine's counts: every process's when PROMETHEUS_MULTIPROC_DIR is set, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return DEFAULT_REGISTRY


def exposition(*, queue_lengths: dict[str, int] | None) -> bytes:
    """The text a Prometheus scrape receives. queue_lengths: None when the broker did not answer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(process_registry()))
    registry.register(QueueLengthCollector(queue_lengths))
    return generate_latest(registry)
