"""The router's Prometheus metrics. Prefix ``router_``, never ``vllm:``: engines keep theirs.

Counters and histograms are updated on the request path (a lock and an add each, through
children looked up once per label set); GPU, circuit, EMA and tier gauges are read at scrape
time from the live objects (:mod:`.collector`), so nothing polls to keep them fresh.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .. import __version__

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip
DECISION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.000075, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05,
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
            "Time to decide a tier (scoring, the encoder's second opinion when asked, and rules).",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.second_opinions = Counter(
            "router_second_opinions",
            "Prompts the complexity model was unsure of: scored by the encoder too, by outcome "
            "(kept: the tier the complexity model alone would give; changed: the other one; "
            "skipped: the encoder's queue was full, the complexity model decided alone).",
            ["outcome"],
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
            "Time from request received to the tier's first byte of a streamed answer, per "
            "serving tier (non-streamed answers: router_request_duration_seconds).",
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
            "Failures talking to a tier's replica, by kind (connect, timeout, status_5xx, "
            "loading, midstream, protocol).",
            ["tier", "kind", "replica"],
            registry=r,
        )
        self.failovers = Counter(
            "router_failovers",
            "Requests retried after a failure before the first byte: on another replica of the "
            "same tier (from_tier = to_tier) or on the other tier.",
            ["from_tier", "to_tier"],
            registry=r,
        )
        self.replica_requests = Counter(
            "router_replica_requests",
            "Requests answered by each replica of a tier.",
            ["tier", "replica"],
            registry=r,
        )
        self.affinity = Counter(
            "router_affinity",
            "How the replica was chosen on a tier with several: 'home' (the conversation's own "
            "replica), 'moved' (its own was down or overloaded), 'least_load' (no conversation "
            "to follow, or affinity off).",
            ["tier", "outcome"],
            registry=r,
        )
        self.client_disconnects = Counter(
            "router_client_disconnects",
            "Streams whose client went away before the end (the upstream request is closed).",
            ["tier"],
            registry=r,
        )
        self.sla_probes = Counter(
            "router_sla_probes",
            "One-token requests that measure a tier's time to first token while the SLA rule "
            "keeps routed work away from it, by outcome (ok, error).",
            ["tier", "outcome"],
            registry=r,
        )
        self.retrieval_inputs = Counter(
            "router_retrieval_inputs",
            "Texts embedded (tier 'embed') and documents scored (tier 'rerank') in answered "
            "requests.",
            ["tier"],
            registry=r,
        )
        self.retrieval_tokens = Counter(
            "router_retrieval_tokens",
            "Tokens the retrieval engines read, from their answers' usage.prompt_tokens.",
            ["tier"],
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "router_queue_wait_seconds",
            "Time requests that found no free slot waited in the router for one, per tier.",
            ["tier"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_outcomes = Counter(
            "router_queue_outcomes",
            "What became of requests that found no free slot on a tier: 'waited' (got one), "
            "'degraded' (a routed request answered by the other tier instead), 'timeout' (429 "
            "after the longest wait), 'gone' (the client left while waiting); and 'capped': "
            "requests refused at once because their person was at max_requests_per_person.",
            ["tier", "outcome"],
            registry=r,
        )
        self.person_requests = Counter(
            "router_person_requests",
            "Requests given a slot, per person, tier and class (interactive, batch, "
            "background). Person labels: the first service.metrics_people people seen, then "
            "'other'.",
            ["person", "tier", "class"],
            registry=r,
        )
        self.person_slot_seconds = Counter(
            "router_person_slot_seconds",
            "Seconds of engine slots held, per person and tier (rate(): slots in use).",
            ["person", "tier"],
            registry=r,
        )
        self.person_waits = Counter(
            "router_person_waits",
            "Requests that waited for a slot, per person and tier.",
            ["person", "tier"],
            registry=r,
        )
        self.person_wait_seconds = Counter(
            "router_person_wait_seconds",
            "Seconds requests waited for a slot, per person and tier.",
            ["person", "tier"],
            registry=r,
        )
        self.person_rejections = Counter(
            "router_person_rejections",
            "429 answers per person, tier and code (rate_limit_exceeded: the person's cap; "
            "queue_timeout: no slot within the longest wait).",
            ["person", "tier", "code"],
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

        self._tiers: dict[str, TierMetrics] = {}
        self._requests: dict[tuple[str, str, str, str], Any] = {}
        self._replica_requests: dict[tuple[str, str], Any] = {}

    def tier(self, name: str) -> TierMetrics:
        """The per-tier series of ``name`` (looked up once)."""
        found = self._tiers.get(name)
        if found is None:
            found = self._tiers[name] = TierMetrics(
                ttft=self.ttft_seconds.labels(name),
                duration=self.request_duration_seconds.labels(name),
                in_flight=self.in_flight.labels(name),
            )
        return found

    def replica_request(self, tier: str, replica: str) -> Any:
        """The router_replica_requests_total series of a replica (looked up once)."""
        key = (tier, replica)
        found = self._replica_requests.get(key)
        if found is None:
            found = self._replica_requests[key] = self.replica_requests.labels(*key)
        return found

    def request(self, model: str, tier: str, reason: str, status: str) -> Any:
        """The router_requests_total series of these labels (looked up once)."""
        key = (model, tier, reason, status)
        found = self._requests.get(key)
        if found is None:
            found = self._requests[key] = self.requests.labels(*key)
        return found


@dataclass(frozen=True, slots=True)
class TierMetrics:
    ttft: Any
    duration: Any
    in_flight: Any
