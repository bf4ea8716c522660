"""Background work beside the request path: health probes (``/health``) and load polls
(``/metrics``) for every engine. They write the tiers' state; requests only read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from prometheus_client.parser import text_string_to_metric_families

from ..router import SLA_SAMPLE_CAP, AdaptiveRouter
from .circuit import CircuitState
from .discovery import refresh
from .metrics import RouterMetrics
from .tiers import (
    LLAMACPP_DEFERRED,
    LLAMACPP_PROCESSING,
    VLLM_KV_USAGE,
    VLLM_RUNNING,
    VLLM_WAITING,
    Health,
    Replica,
    TierRuntime,
)
from .upstream import UpstreamError

log = logging.getLogger("adaptive_router.probes")

LOAD_METRICS = frozenset(
    {VLLM_WAITING, VLLM_RUNNING, VLLM_KV_USAGE, LLAMACPP_PROCESSING, LLAMACPP_DEFERRED}
)


def is_loading(status: int, text: str) -> bool:
    """llama-server's answer while it loads its model: HTTP 503 ``"Loading model"``."""
    return status == 503 and "loading" in text.lower()


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(name, labels): value}`` of a Prometheus text exposition (prometheus_client's parser,
    the one parser the router, its tests and the benchmarks use)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def parse_load(text: str) -> dict[str, float]:
    """The engine's load metrics, summed over their label sets (the KV cache ratio: the max)."""
    out: dict[str, float] = {}
    for (name, _), value in parse_samples(text).items():
        if name not in LOAD_METRICS:
            continue
        if name == VLLM_KV_USAGE:
            out[name] = max(out.get(name, 0.0), value)
        else:
            out[name] = out.get(name, 0.0) + value
    return out


async def _get(
    tier: TierRuntime, replica: Replica, path: str, timeout_s: float
) -> tuple[int, bytes]:
    response = await replica.pool.request(
        b"GET",
        replica.root_path + path,
        headers=tier.headers,
        first_byte_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
    )
    try:
        return response.status, await response.read()
    finally:
        response.close()


async def probe_health(tier: TierRuntime, replica: Replica, timeout_s: float) -> Health:
    """One ``GET /health``: 200 up, 503 loading (llama-server), anything else down."""
    try:
        status, body = await _get(tier, replica, "/health", timeout_s)
    except UpstreamError as exc:
        if exc.kind == "timeout":
            replica.note_error("health probe timed out")
            replica.circuit.record_failure()
        else:
            replica.note_error(f"health probe failed: {exc}")
            replica.circuit.trip()
        return "down"
    if status == 200:
        if replica.circuit.state is not CircuitState.CLOSED:
            log.info("%s (%s) is healthy again, closing its circuit", tier.name, replica.url)
        replica.circuit.record_success()
        return "up"
    text = body[:200].decode(errors="replace")
    if status == 503:
        replica.note_error(f"health: 503 {text}")
        replica.circuit.trip()
        return "loading" if is_loading(503, text) else "down"
    replica.note_error(f"health: HTTP {status} {text}")
    replica.circuit.record_failure()
    return "down"


async def poll_load(tier: TierRuntime, replica: Replica, timeout_s: float) -> None:
    """Read the engine's queue and KV cache use from its ``/metrics``."""
    try:
        status, body = await _get(tier, replica, "/metrics", timeout_s)
        if status != 200:
            raise UpstreamError("protocol", f"/metrics answered HTTP {status}")
        load = parse_load(body.decode(errors="replace"))
    except (UpstreamError, ValueError) as exc:
        replica.load_error = f"{exc.__class__.__name__}: {exc}"[:200]
        return
    replica.load = load
    replica.load_error = None


async def read_slots(tier: TierRuntime, replica: Replica, timeout_s: float) -> None:
    """How many requests the engine serves at once: llama-server's ``GET /props``
    ``total_slots`` (``params.n_parallel``, tools/server/server-context.cpp ``get_res_props``,
    llama.cpp build 11434; ``--parallel -1``, its default, is resolved to 4 before, in
    tools/server/server.cpp). An engine without /props (vLLM answers 404) keeps 0: its slots
    come from the tier's ``max_in_flight`` setting."""
    try:
        status, body = await _get(tier, replica, "/props", timeout_s)
    except UpstreamError:
        return  # asked again at the next health probe
    replica.slots_checked = True
    if status != 200:
        return
    try:
        value = json.loads(body).get("total_slots")
    except (ValueError, AttributeError):
        return
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        if value != replica.slots:
            log.info("%s (%s): %d slots", tier.name, replica.url, value)
        replica.slots = value


_PROBE_PROMPT = [{"role": "user", "content": "Hi"}]
_JSON = (b"content-type", b"application/json")


async def probe_ttft(tier: TierRuntime, replica: Replica, timeout_s: float) -> float:
    """Seconds to the first byte of a one-token streamed answer (what the SLA measures)."""
    body = {"model": tier.served_model, "messages": _PROBE_PROMPT, "max_tokens": 1,
            "stream": True}  # fmt: skip
    started = time.perf_counter()
    response = await replica.pool.request(
        b"POST",
        replica.api_path + "/chat/completions",
        headers=(_JSON, *tier.headers),
        body=json.dumps(body).encode(),
        first_byte_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
    )
    try:
        if response.status != 200:
            raise UpstreamError("protocol", f"the probe got HTTP {response.status}")
        if not await response.next_data(timeout_s):
            raise UpstreamError("protocol", "the probe's stream ended at once")
        ttft = time.perf_counter() - started
        await response.read()  # one token: read it out, so the connection can be reused
        return ttft
    finally:
        response.close()


async def run_every(interval_s: float, step: Callable[[], Awaitable[None]], name: str) -> None:
    """Call ``await step()`` every ``interval_s`` until cancelled; log failures, never die."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # a probe bug must not kill the loop
            log.exception("%s failed", name)
        await asyncio.sleep(interval_s)


class Probes:
    """The background tasks of a running service, started and stopped with its lifespan."""

    def sla(
        self, router: AdaptiveRouter, tier: TierRuntime, interval_s: float,
        metrics: RouterMetrics,
    ) -> None:  # fmt: skip
        """While the SLA rule keeps routed work away from ``tier``, measure its time to first
        token with a tiny request every ``interval_s`` and feed the SLA average: without it
        only ``gemma4-smart`` requests could ever bring the average down again."""
        cap_ms = SLA_SAMPLE_CAP * router.config.latency_sla_ms

        async def step() -> None:
            if router.ema.value(tier.name) <= router.config.latency_sla_ms:
                return
            replica = next((r for r in tier.replicas if r.up), None)
            if replica is None:
                return  # down: the health probes deal with it
            try:
                ttft_ms = await probe_ttft(tier, replica, cap_ms / 1000.0) * 1000.0
            except UpstreamError as exc:
                metrics.sla_probes.labels(tier.name, "error").inc()
                if exc.kind == "timeout":  # slower than the cap: a slow sample, not no sample
                    router.observe(tier.name, cap_ms)
                return
            metrics.sla_probes.labels(tier.name, "ok").inc()
            router.observe(tier.name, ttft_ms)

        self.every(interval_s, step, f"{tier.name} SLA probe")

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, interval_s: float, step: Callable[[], Awaitable[None]], name: str) -> None:
        self._tasks.append(asyncio.create_task(run_every(interval_s, step, name), name=name))

    def watch(
        self, tiers: Iterable[TierRuntime], health_every_s: float, load_every_s: float,
        timeout_s: float,
    ) -> None:  # fmt: skip
        """A health probe and a load poll for every replica of every tier: one loop per tier
        and kind, over the replicas the tier has at that moment (discovery may change them)."""
        for tier in tiers:

            async def health(t: TierRuntime = tier) -> None:
                async def one(r: Replica) -> None:
                    before = (r.health, r.slots)
                    r.health = await probe_health(t, r, timeout_s)
                    if r.health != "up":
                        r.slots_checked = False  # a restarted engine may have other slots
                    elif not r.slots_checked:
                        await read_slots(t, r, timeout_s)
                    if (r.health, r.slots) != before:
                        t.changed()  # waiters may take the slots that came up

                await asyncio.gather(*(one(r) for r in list(t.replicas)))

            async def load(t: TierRuntime = tier) -> None:
                await asyncio.gather(*(poll_load(t, r, timeout_s) for r in list(t.replicas)))

            self.every(health_every_s, health, f"{tier.name} health probe")
            self.every(load_every_s, load, f"{tier.name} load poll")

    def discover(
        self, tier: TierRuntime, urls: Sequence[str], make: Callable[[str], Replica],
        every_s: float,
    ) -> None:  # fmt: skip
        """Resolve the tier's URLs now and, with ``every_s`` > 0, again every ``every_s``
        (:mod:`.discovery`)."""

        async def step() -> None:
            await refresh(tier, urls, make)

        if every_s > 0:
            self.every(every_s, step, f"{tier.name} replica discovery")
        else:
            self._tasks.append(asyncio.create_task(step(), name=f"{tier.name} discovery"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
