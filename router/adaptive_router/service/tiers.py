"""Each tier's runtime: its engine (replica), pooled HTTP clients, circuit, health and load.

This is the one place tier state lives. The health and load probes (:mod:`.probes`) write it,
the proxy reads it and counts its own requests in it, and the decision engine gets a snapshot
of it (:meth:`TierRuntime.status`) with every decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config import Tier
from ..rules import TierStatus
from .circuit import CircuitBreaker, CircuitState
from .upstream import UpstreamPool

Health = Literal["unknown", "up", "loading", "down"]

# Engine metrics the router reads for load: vLLM and llama-server names (see probes.parse_load).
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_KV_USAGE = "vllm:kv_cache_usage_perc"
LLAMACPP_PROCESSING = "llamacpp:requests_processing"
LLAMACPP_DEFERRED = "llamacpp:requests_deferred"


def root_path(base_url: str) -> str:
    """``http://vllm:8000/v1`` -> ``""``: the path where /health and /metrics live."""
    path = urlsplit(base_url).path.rstrip("/")
    return path[: -len("/v1")] if path.endswith("/v1") else path


@dataclass(eq=False)
class Replica:
    """One engine serving a tier: where it is, how it answers, how busy it is."""

    url: str
    """OpenAI base URL, ending in /v1."""
    pool: UpstreamPool
    circuit: CircuitBreaker
    health: Health = "unknown"
    last_error: str | None = None
    last_error_at: float | None = None
    in_flight: int = 0
    """Requests the router has open to this engine now."""
    load: dict[str, float] = field(default_factory=dict)
    """The engine's own load metrics from its last /metrics poll."""
    load_error: str | None = None

    def __post_init__(self) -> None:
        self.api_path = urlsplit(self.url).path.rstrip("/")
        """Path prefix of the OpenAI endpoints (``/v1``)."""
        self.root_path = root_path(self.url)
        """Path prefix of /health and /metrics."""

    @property
    def up(self) -> bool:
        """Can take new work: its circuit is not open (half-open lets a probe through)."""
        return self.circuit.state is not CircuitState.OPEN

    @property
    def queue_depth(self) -> float:
        return self.load.get(VLLM_WAITING, 0.0) + self.load.get(LLAMACPP_DEFERRED, 0.0)

    def note_error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()


_STATUS = {
    (up, busy): TierStatus(up=up, saturated=busy) for up in (True, False) for busy in (True, False)
}


@dataclass(eq=False)
class TierRuntime:
    """A tier as the service runs it: its model name, its limits and its engine."""

    name: Tier
    served_model: str
    replicas: list[Replica]
    api_key: str | None = None
    max_waiting: int = 0
    """Queue depth (vLLM waiting / llama-server deferred) at which the tier is saturated."""
    max_in_flight: int = 0
    """Requests in flight from the router at which the tier is saturated."""

    def __post_init__(self) -> None:
        self.headers: tuple[tuple[bytes, bytes], ...] = (
            ((b"authorization", f"Bearer {self.api_key}".encode()),) if self.api_key else ()
        )
        """Headers every request to this tier's engines carries (its API key)."""

    @property
    def replica(self) -> Replica:
        return self.replicas[0]

    def saturated_replica(self, replica: Replica) -> bool:
        if self.max_in_flight and replica.in_flight >= self.max_in_flight:
            return True
        return bool(self.max_waiting and replica.queue_depth >= self.max_waiting)

    @property
    def up(self) -> bool:
        """At least one replica can take work."""
        return any(replica.up for replica in self.replicas)

    @property
    def saturated(self) -> bool:
        """Every replica is at its queue or in-flight limit."""
        return all(self.saturated_replica(replica) for replica in self.replicas)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    @property
    def queue_depth(self) -> float:
        return sum(r.queue_depth for r in self.replicas)

    def status(self) -> TierStatus:
        """What the decision engine needs to know about this tier now."""
        return _STATUS[self.up, self.saturated]

    def describe(self) -> dict[str, Any]:
        """This tier's part of /health."""
        r = self.replica
        return {
            "url": r.url,
            "model": self.served_model,
            "state": "up" if r.up and r.health != "down" else "down",
            "health": r.health,
            "circuit": r.circuit.state.value,
            "consecutive_failures": r.circuit.failures,
            "last_error": r.last_error,
            "last_error_at": r.last_error_at,
            "in_flight": r.in_flight,
            "saturated": self.saturated,
            "load": r.load,
            "load_error": r.load_error,
        }
