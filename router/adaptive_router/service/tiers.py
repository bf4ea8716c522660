"""Each tier's runtime: its engines (replicas), each with its connections, circuit, health and
load.

This is the one place tier state lives. The health and load probes (:mod:`.probes`) and replica
discovery (:mod:`.discovery`) write it, the proxy reads it and counts its own requests in it, the
balancer (:mod:`.balance`) orders a tier's replicas for each request, and the decision engine
gets a snapshot of it (:meth:`TierRuntime.status`) with every decision. A tier is up while any
of its replicas is.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..rules import TierStatus
from .balance import HashRing, by_affinity, least_outstanding
from .circuit import CircuitBreaker, CircuitState
from .upstream import UpstreamPool

Health = Literal["unknown", "up", "loading", "down"]

# Engine metrics the router reads for load: vLLM and llama-server names (see probes.parse_load).
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_KV_USAGE = "vllm:kv_cache_usage_perc"
LLAMACPP_PROCESSING = "llamacpp:requests_processing"
LLAMACPP_DEFERRED = "llamacpp:requests_deferred"

PLACEMENTS = 8192
"""Conversations per tier whose last replica is remembered (a key and a label each: well under
a megabyte); the oldest are forgotten first and go back to their place on the ring."""


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
    """Requests the router has open to this engine now (each holds one of its slots: see
    :mod:`.admission`)."""
    slots: int = 0
    """Requests the engine serves at once, as it reports them (llama-server's ``GET /props``
    ``total_slots``); 0 while unknown."""
    slots_checked: bool = False
    """The engine was asked for its slots since it last came up (vLLM has no /props)."""
    load: dict[str, float] = field(default_factory=dict)
    """The engine's own load metrics from its last /metrics poll."""
    load_error: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.api_path = parts.path.rstrip("/")
        """Path prefix of the OpenAI endpoints (``/v1``)."""
        self.root_path = root_path(self.url)
        """Path prefix of /health and /metrics."""
        self.label = parts.netloc
        """``host:port``: the ``replica`` label of the metrics."""

    @property
    def up(self) -> bool:
        """Can take new work: its circuit is not open (half-open lets a probe through)."""
        return self.circuit.state is not CircuitState.OPEN

    @property
    def queue_depth(self) -> float:
        return self.load.get(VLLM_WAITING, 0.0) + self.load.get(LLAMACPP_DEFERRED, 0.0)

    @property
    def outstanding(self) -> float:
        """Work on this engine: the engine's own count of requests running and queued (which
        includes other routers'), or this router's requests in flight when that is higher (it
        is exact and immediate; the engine's count is as old as the last load poll)."""
        load = self.load
        engine = (
            load.get(VLLM_RUNNING, 0.0)
            + load.get(VLLM_WAITING, 0.0)
            + load.get(LLAMACPP_PROCESSING, 0.0)
            + load.get(LLAMACPP_DEFERRED, 0.0)
        )
        return max(float(self.in_flight), engine)

    def describe(self) -> dict[str, Any]:
        """This replica's part of /health."""
        return {
            "url": self.url,
            "state": "up" if self.up and self.health != "down" else "down",
            "health": self.health,
            "circuit": self.circuit.state.value,
            "consecutive_failures": self.circuit.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "in_flight": self.in_flight,
            "slots": self.slots or None,
            "load": self.load,
            "load_error": self.load_error,
        }

    def note_error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()


_STATUS = {
    (up, busy): TierStatus(up=up, saturated=busy) for up in (True, False) for busy in (True, False)
}


@dataclass(eq=False)
class TierRuntime:
    """A tier as the service runs it: its model name, its limits and its engines."""

    name: str
    """``tier_low`` or ``tier_high`` (:data:`..config.TIERS`), or a retrieval pool's
    ``embed`` or ``rerank`` (:mod:`.retrieval`)."""
    served_model: str
    replicas: list[Replica]
    api_key: str | None = None
    max_waiting: int = 0
    """Queue depth (vLLM waiting / llama-server deferred) at which a replica is saturated."""
    max_in_flight: int = 0
    """Most requests the router sends one replica at once (its engine's own slots, when it
    reports fewer, win); more wait in the router (:mod:`.admission`). 0: no limit of its own."""
    affinity: bool = True
    """Keep a conversation on one replica (see :mod:`.balance`)."""
    load_factor: float = 1.5
    """Bounded-load factor of the affinity ring."""
    affinity_spare: int = 4
    """Outstanding requests under which a replica keeps its conversations regardless."""
    priority: bool = False
    """Its engines schedule by the request's ``priority`` field (vLLM
    ``--scheduling-policy priority``): the router sets it from the request's class."""

    def __post_init__(self) -> None:
        self.headers: tuple[tuple[bytes, bytes], ...] = (
            ((b"authorization", f"Bearer {self.api_key}".encode()),) if self.api_key else ()
        )
        """Headers every request to this tier's engines carries (its API key)."""
        self.ring = HashRing(self.replicas)
        self.placements: OrderedDict[int, str] = OrderedDict()
        """Affinity key -> label of the replica that served the conversation's last turn."""
        self.wake: Callable[[], None] | None = None
        """Called when replicas, their slots or their health change (the admission line hands
        out slots that became free)."""

    def set_replicas(self, replicas: list[Replica]) -> None:
        """Replace the replica set (discovery); requests in flight keep their replica."""
        self.replicas = replicas
        self.ring = HashRing(replicas)
        self.changed()

    def changed(self) -> None:
        if self.wake is not None:
            self.wake()

    @property
    def replica(self) -> Replica:
        """The first replica (the only one, for a tier with one URL)."""
        return self.replicas[0]

    def order(self, key: int | None) -> list[Replica]:
        """The replicas to try for a request, best first (see :mod:`.balance`)."""
        replicas = self.replicas
        if len(replicas) == 1:
            return replicas
        if key is not None and self.affinity:
            return by_affinity(  # type: ignore[return-value]
                self.ring, key, self.load_factor, self.affinity_spare, self.placements.get(key)
            )
        return least_outstanding(replicas)  # type: ignore[return-value]

    def home(self, key: int) -> Replica | None:
        """Where the conversation belongs now: the replica of its last turn while it is up,
        else the first live replica on the ring."""
        label = self.placements.get(key)
        if label is not None:
            for replica in self.replicas:
                if replica.up and replica.label == label:
                    return replica
        return next((r for r in self.ring.walk(key) if r.up), None)  # type: ignore[return-value]

    def remember(self, key: int | None, replica: Replica) -> None:
        """The conversation's turn was served by ``replica``: its prefix is cached there."""
        if key is None or not self.affinity or len(self.replicas) < 2:
            return
        self.placements[key] = replica.label
        self.placements.move_to_end(key)
        if len(self.placements) > PLACEMENTS:
            self.placements.popitem(last=False)

    def saturated_replica(self, replica: Replica) -> bool:
        """The engine's own queue is at the limit: requests from elsewhere (another router)
        fill it. The router's own requests never queue there: they wait in its line."""
        return bool(self.max_waiting and replica.queue_depth >= self.max_waiting)

    @property
    def up(self) -> bool:
        """At least one replica can take work."""
        return any(replica.up for replica in self.replicas)

    @property
    def serving(self) -> bool:
        """At least one replica can take work and its health probe does not say down."""
        return any(r.up and r.health != "down" for r in self.replicas)

    @property
    def saturated(self) -> bool:
        """Every replica's engine queue is at its limit."""
        return all(self.saturated_replica(replica) for replica in self.replicas)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    @property
    def queue_depth(self) -> float:
        return sum(r.queue_depth for r in self.replicas)

    @property
    def health(self) -> Health:
        """The best health among the replicas (up, then loading, then unknown, then down)."""
        states = {r.health for r in self.replicas}
        order: tuple[Health, ...] = ("up", "loading", "unknown", "down")
        return next(h for h in order if h in states)

    def status(self) -> TierStatus:
        """What the decision engine needs to know about this tier now."""
        return _STATUS[self.up, self.saturated]

    def describe(self) -> dict[str, Any]:
        """This tier's part of /health: the tier as a whole (its best replica's circuit, its
        latest error), then each replica. With one replica the tier-level keys are that
        replica's, as before replicas existed."""
        best = min(self.replicas, key=lambda r: r.circuit.state.gauge)
        latest = max(self.replicas, key=lambda r: r.last_error_at or 0.0)
        return {
            "url": best.url if len(self.replicas) == 1 else [r.url for r in self.replicas],
            "model": self.served_model,
            "state": "up" if self.serving else "down",
            "health": self.health,
            "circuit": best.circuit.state.value,
            "consecutive_failures": best.circuit.failures,
            "last_error": latest.last_error,
            "last_error_at": latest.last_error_at,
            "in_flight": self.in_flight,
            "saturated": self.saturated,
            "load": best.load if len(self.replicas) == 1 else {},
            "load_error": latest.load_error,
            "replicas": [r.describe() for r in self.replicas],
        }
