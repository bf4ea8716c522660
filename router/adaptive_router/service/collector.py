"""Gauges read from the live objects at scrape time: tiers, circuits, the SLA average, the GPU.

Nothing polls to keep these fresh and nothing on the request path touches them; Prometheus's
scrape reads the state the probes and requests left behind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..config import Tier
from ..router import AdaptiveRouter
from .admission import Line
from .retrieval import Kind
from .tiers import TierRuntime


def gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class StateCollector(Collector):
    """``router_tier_*``, ``router_circuit_state``, ``router_latency_*``, ``router_gpu_*``."""

    def __init__(
        self,
        router: AdaptiveRouter,
        tiers: Mapping[Tier, TierRuntime],
        pools: Mapping[Kind, TierRuntime] | None = None,
        lines: Mapping[str, Line] | None = None,
    ) -> None:
        self.router = router
        self.tiers = tiers
        self.pools = pools or {}
        """The retrieval engines (``embed``, ``rerank``): health and circuits, no SLA."""
        self.lines = lines or {}
        """The admission lines, by tier or pool name: slots and waiting requests."""

    def collect(self) -> Iterator[Metric]:
        router = self.router
        up = gauge(
            "router_tier_up", "1 when the tier can take new work (circuit not open).", ["tier"]
        )
        circuit = gauge(
            "router_circuit_state",
            "Circuit breaker of each replica: 0 closed, 1 half-open, 2 open.",
            ["tier", "replica"],
        )
        replica_up = gauge(
            "router_replica_up",
            "1 when the replica takes new work (circuit not open, health probe not down).",
            ["tier", "replica"],
        )
        replica_in_flight = gauge(
            "router_replica_in_flight",
            "Requests the router has in flight to the replica.",
            ["tier", "replica"],
        )
        replica_queue = gauge(
            "router_replica_queue_depth",
            "Requests waiting in the replica's engine (vLLM waiting, llama.cpp deferred).",
            ["tier", "replica"],
        )
        saturated = gauge(
            "router_tier_saturated",
            "1 when the tier's queue or in-flight limit is reached.",
            ["tier"],
        )
        queue = gauge(
            "router_tier_queue_depth",
            "Requests waiting in the engine (vLLM waiting, llama.cpp deferred).",
            ["tier"],
        )
        ema = gauge(
            "router_latency_ema_seconds",
            "Moving average of observed latency per tier (feeds the SLA rule).",
            ["tier"],
        )
        for name, tier in [*self.tiers.items(), *self.pools.items()]:
            up.add_metric([name], 1.0 if tier.up else 0.0)
            saturated.add_metric([name], 1.0 if tier.saturated else 0.0)
            queue.add_metric([name], tier.queue_depth)
            if name in self.tiers:
                ema.add_metric([name], router.ema.value(name) / 1000.0)
            for replica in tier.replicas:
                labels = [name, replica.label]
                circuit.add_metric(labels, float(replica.circuit.state.gauge))
                serving = replica.up and replica.health != "down"
                replica_up.add_metric(labels, 1.0 if serving else 0.0)
                replica_in_flight.add_metric(labels, float(replica.in_flight))
                replica_queue.add_metric(labels, replica.queue_depth)
        yield from (
            up,
            circuit,
            saturated,
            queue,
            ema,
            replica_up,
            replica_in_flight,
            replica_queue,
        )
        slots = gauge(
            "router_tier_slots",
            "Requests the tier's replicas that take work serve at once (their engines' slots, "
            "or max_in_flight); 0: no limit.",
            ["tier"],
        )
        waiting = gauge(
            "router_queue_waiting",
            "Requests waiting in the router for a slot on the tier, by class.",
            ["tier", "class"],
        )
        for line_name, line in self.lines.items():
            slots.add_metric([line_name], float(line.total_capacity()))
            for klass, count in line.waiting_by_class():
                waiting.add_metric([line_name, klass], float(count))
        yield from (slots, waiting)
        sla = gauge("router_latency_sla_seconds", "The configured latency SLA for tier_high.")
        sla.add_metric([], router.config.latency_sla_ms / 1000.0)
        threshold = gauge("router_complexity_threshold", "The configured complexity threshold.")
        threshold.add_metric([], router.config.complexity_threshold)
        yield from (sla, threshold)
        snap = router.gpu
        available = gauge("router_gpu_available", "1 when NVML readings are available.")
        available.add_metric([], 1.0 if snap.available else 0.0)
        yield available
        if snap.available:
            for metric, doc, value in (
                ("router_gpu_memory_free_bytes", "Free GPU memory (NVML).", snap.free_bytes),
                ("router_gpu_memory_used_bytes", "Used GPU memory (NVML).", snap.used_bytes),
                ("router_gpu_memory_total_bytes", "Total GPU memory (NVML).", snap.total_bytes),
                (
                    "router_gpu_utilization_percent",
                    "GPU utilisation in percent (NVML).",
                    snap.utilization_pct,
                ),
            ):
                g = gauge(metric, doc)
                g.add_metric([], float(value or 0.0))
                yield g
