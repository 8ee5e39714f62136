"""Prometheus metrics of the collector (GET /metrics). With several worker processes the
prometheus_client multiprocess mode sums them (PROMETHEUS_MULTIPROC_DIR, set by collector.server)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "adagg_collector"
RECEIVED = Counter(f"{PREFIX}_events_received", "Events received, valid or not", ["endpoint"])
ACCEPTED = Counter(f"{PREFIX}_events_accepted", "Events durably written to the raw topic", ["endpoint"])
REJECTED = Counter(f"{PREFIX}_events_rejected", "Events refused, by reason code", ["endpoint", "reason"])
UNAVAILABLE = Counter(f"{PREFIX}_events_unavailable", "Events answered 503: not written, retry", ["endpoint"])
REQUESTS = Counter(f"{PREFIX}_requests", "HTTP requests by endpoint and status", ["endpoint", "status"])
PRODUCE_LATENCY = Histogram(f"{PREFIX}_produce_latency_seconds",
                            "From produce to the last delivery report of a request's records",
                            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
QUEUE_DEPTH = Gauge(f"{PREFIX}_queue_depth", "Records produced and waiting for their delivery report",
                    multiprocess_mode="livesum")
KAFKA_UP = Gauge(f"{PREFIX}_kafka_up", "1 when the last Kafka probe succeeded", multiprocess_mode="livemin")


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
