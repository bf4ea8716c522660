"""One upstream engine (tier): its pooled HTTP client, circuit breaker, health and load.

Health probes (``/health``) and load polls (``/metrics``) run as background tasks; the request
path only reads the attributes they leave behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from .circuit import CircuitBreaker, CircuitState
from .config import Tier

log = logging.getLogger("adaptive_router.tiers")

TierHealth = Literal["unknown", "up", "loading", "down"]

# Engine metrics the router reads for load: vLLM and llama-server names.
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_KV_USAGE = "vllm:kv_cache_usage_perc"
LLAMACPP_PROCESSING = "llamacpp:requests_processing"
LLAMACPP_DEFERRED = "llamacpp:requests_deferred"
LOAD_METRICS = (VLLM_WAITING, VLLM_RUNNING, VLLM_KV_USAGE, LLAMACPP_PROCESSING, LLAMACPP_DEFERRED)


def parse_load(text: str) -> dict[str, float]:
    """Sum (max for the KV ratio) of the load metrics over their label sets."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(("vllm:", "llamacpp:")):
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i > 0), default=-1)
        if name_end < 0:
            continue
        name = line[:name_end]
        if name not in LOAD_METRICS:
            continue
        try:
            value = float(line.rsplit(" ", 1)[-1])
        except ValueError:
            continue
        if name == VLLM_KV_USAGE:
            out[name] = max(out.get(name, 0.0), value)
        else:
            out[name] = out.get(name, 0.0) + value
    return out


def root_url(base_url: str) -> str:
    """``http://vllm:8000/v1`` -> ``http://vllm:8000`` (where /health and /metrics live)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class ClientPool:
    """Several small httpx connection pools towards one tier, used in turn.

    httpcore scans every connection of a pool (polling each idle socket, and counting idle
    connections once per connection) whenever a request starts or ends: cost grows with the
    square of the pool's size. With 200 streams to fake engines, one 512-connection pool took
    ~70 % of the router's CPU (py-spy) and capped it near 80 requests/s; pools of
    ``SHARD_SIZE`` connections keep each scan short (see docs/BENCHMARKS.md, load test).
    """

    SHARD_SIZE = 32

    def __init__(self, make: Callable[[int], httpx.AsyncClient], max_connections: int) -> None:
        shards = max(1, math.ceil(max_connections / self.SHARD_SIZE))
        per_shard = math.ceil(max_connections / shards)
        self.clients = [make(per_shard) for _ in range(shards)]
        self._turn = itertools.cycle(self.clients)

    def pick(self) -> httpx.AsyncClient:
        return next(self._turn)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


@dataclass
class TierClient:
    """Everything the service keeps about one tier."""

    name: Tier
    base_url: str
    served_model: str
    pool: ClientPool
    circuit: CircuitBreaker
    api_key: str | None = None
    max_waiting: int = 0
    """Queue depth (vLLM waiting / llama-server deferred) at which the tier is saturated."""
    max_in_flight: int = 0
    health: TierHealth = "unknown"
    last_error: str | None = None
    last_error_at: float | None = None
    in_flight: int = 0
    load: dict[str, float] = field(default_factory=dict)
    load_error: str | None = None

    @property
    def root(self) -> str:
        return root_url(self.base_url)

    @property
    def up(self) -> bool:
        """Can take new work: its circuit is not open (half-open lets a probe through)."""
        return self.circuit.state is not CircuitState.OPEN

    @property
    def queue_depth(self) -> float:
        return self.load.get(VLLM_WAITING, 0.0) + self.load.get(LLAMACPP_DEFERRED, 0.0)

    @property
    def saturated(self) -> bool:
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            return True
        return bool(self.max_waiting and self.queue_depth >= self.max_waiting)

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def note_error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()

    def status(self) -> dict[str, Any]:
        return {
            "url": self.base_url,
            "model": self.served_model,
            "state": "up" if self.up and self.health != "down" else "down",
            "health": self.health,
            "circuit": self.circuit.state.value,
            "consecutive_failures": self.circuit.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "in_flight": self.in_flight,
            "saturated": self.saturated,
            "load": self.load,
            "load_error": self.load_error,
        }


async def probe_health(tier: TierClient, timeout_s: float) -> TierHealth:
    """One ``GET /health``: 200 up, 503 loading (llama-server), anything else down."""
    try:
        response = await tier.pool.pick().get(
            tier.root + "/health", timeout=timeout_s, headers=tier.auth_headers()
        )
    except httpx.TimeoutException:
        tier.note_error("health probe timed out")
        tier.circuit.record_failure()
        return "down"
    except httpx.HTTPError as exc:
        tier.note_error(f"health probe failed: {exc.__class__.__name__}: {exc}")
        tier.circuit.trip()
        return "down"
    if response.status_code == 200:
        if tier.circuit.state is not CircuitState.CLOSED:
            log.info("%s is healthy again, closing its circuit", tier.name)
        tier.circuit.record_success()
        return "up"
    text = response.text[:200]
    if response.status_code == 503:
        tier.note_error(f"health: 503 {text}")
        tier.circuit.trip()
        return "loading" if "loading" in text.lower() else "down"
    tier.note_error(f"health: HTTP {response.status_code} {text}")
    tier.circuit.record_failure()
    return "down"


async def poll_load(tier: TierClient, timeout_s: float) -> None:
    try:
        response = await tier.pool.pick().get(
            tier.root + "/metrics", timeout=timeout_s, headers=tier.auth_headers()
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        tier.load_error = f"{exc.__class__.__name__}: {exc}"[:200]
        return
    tier.load = parse_load(response.text)
    tier.load_error = None


async def run_every(interval_s: float, step: Any, name: str) -> None:
    """Call ``await step()`` every ``interval_s`` until cancelled; log failures, never die."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # a probe bug must not kill the loop
            log.exception("%s failed", name)
        await asyncio.sleep(interval_s)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
