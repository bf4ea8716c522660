"""The router's Prometheus metrics. Prefix ``router_``, never ``vllm:``: engines keep theirs.

Counters and histograms are updated on the request path (a lock and an add each); GPU, circuit,
EMA and tier gauges are read at scrape time from the live objects by a collector, so nothing
polls to keep them fresh.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip
DECISION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.000075, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01,
)  # fmt: skip
SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))


class RouterMetrics:
    """All metric objects, registered on a registry of their own (one per app instance)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "router_requests",
            "Requests answered, by client model, serving tier, routing reason and HTTP status.",
            ["model", "tier", "reason", "status"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "router_decision_seconds",
            "Time to decide a tier (scoring and rules).",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.complexity_score = Histogram(
            "router_complexity_score",
            "Complexity score of routed prompts (0 easy .. 1 hard).",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.ttft_seconds = Histogram(
            "router_ttft_seconds",
            "Time from request received to the tier's first byte, per serving tier.",
            ["tier"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_duration_seconds = Histogram(
            "router_request_duration_seconds",
            "Time from request received to the last byte sent, per serving tier.",
            ["tier"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "router_upstream_errors",
            "Failures talking to a tier, by kind (connect, timeout, status_5xx, loading, "
            "midstream, protocol).",
            ["tier", "kind"],
            registry=r,
        )
        self.failovers = Counter(
            "router_failovers",
            "Requests retried on the other tier after a failure before the first byte.",
            ["from_tier", "to_tier"],
            registry=r,
        )
        self.client_disconnects = Counter(
            "router_client_disconnects",
            "Streams whose client went away before the end (the upstream request is closed).",
            ["tier"],
            registry=r,
        )
        self.in_flight = Gauge(
            "router_in_flight_requests",
            "Requests the router has in flight to each tier.",
            ["tier"],
            registry=r,
        )
        self.build_info = Gauge(
            "router_build_info",
            "Router version and Python version (value is always 1).",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)

    def add_collector(self, collect: Callable[[], Iterator[Metric]]) -> None:
        """Register ``collect`` to produce gauges from live state at scrape time."""
        self.registry.register(_FunctionCollector(collect))


class _FunctionCollector(Collector):
    def __init__(self, collect: Callable[[], Iterator[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        return self._collect()


def gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)
