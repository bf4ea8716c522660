"""The FastAPI application: endpoints, lifespan (clients, probes, GPU thread), error handlers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from . import __version__
from .circuit import CircuitBreaker
from .config import TIERS, RoutingConfig, Tier
from .errors import APIError, error_body
from .metrics import RouterMetrics, gauge
from .proxy import Proxy
from .router import AdaptiveRouter
from .service_config import ServiceConfig
from .tiers import ClientPool, TierClient, cancel_all, poll_load, probe_health, run_every

log = logging.getLogger("adaptive_router.app")

_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
                    },
                },
            ]
        },
    },
}


def _json_body(required: str, field: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body for a proxy endpoint (documentation and fuzzing; the handler itself
    validates with OpenAI-format errors)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": [required],
                        "properties": {
                            "model": {"type": "string"},
                            required: field,
                            "stream": {"type": "boolean"},
                            "max_tokens": {"type": "integer", "minimum": 0},
                        },
                    }
                }
            },
        }
    }


_CHAT_BODY = _json_body("messages", {"type": "array", "items": _MESSAGE_SCHEMA})
_COMPLETION_BODY = _json_body(
    "prompt", {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)


def build_tiers(service: ServiceConfig) -> dict[Tier, TierClient]:
    tiers: dict[Tier, TierClient] = {}
    for name in TIERS:
        low = name == "tier_low"

        def make_client(max_connections: int) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=service.connect_timeout_s,
                    read=service.first_byte_timeout_s,
                    write=30.0,
                    pool=service.connect_timeout_s,
                ),
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                trust_env=False,  # never route tier traffic through a proxy from the environment
            )

        tiers[name] = TierClient(
            name=name,
            base_url=service.tier_low_url if low else service.tier_high_url,
            served_model=service.tier_low_model if low else service.tier_high_model,
            api_key=service.tier_low_api_key if low else service.tier_high_api_key,
            pool=ClientPool(make_client, service.max_connections_per_tier),
            circuit=CircuitBreaker(service.circuit_failure_threshold, service.circuit_cooldown_s),
            max_waiting=service.tier_low_max_waiting if low else service.tier_high_max_deferred,
            max_in_flight=service.tier_low_max_in_flight
            if low
            else service.tier_high_max_in_flight,
        )
    return tiers


def create_app(
    service: ServiceConfig | None = None,
    routing: RoutingConfig | None = None,
    *,
    router: AdaptiveRouter | None = None,
    probes: bool = True,
) -> RouterApp:
    """Build the service. ``probes=False`` skips the background health/load tasks (tests)."""
    service = service or ServiceConfig()
    router = router or AdaptiveRouter(routing)
    metrics = RouterMetrics()
    tiers = build_tiers(service)
    proxy = Proxy(service, router, tiers, metrics)

    def collect() -> Iterator[Metric]:
        up = gauge(
            "router_tier_up", "1 when the tier can take new work (circuit not open).", ["tier"]
        )
        circuit = gauge(
            "router_circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.", ["tier"]
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
        for name, tier in tiers.items():
            up.add_metric([name], 1.0 if tier.up else 0.0)
            circuit.add_metric([name], float(tier.circuit.state.gauge))
            saturated.add_metric([name], 1.0 if tier.saturated else 0.0)
            queue.add_metric([name], tier.queue_depth)
            ema.add_metric([name], router.ema.value(name) / 1000.0)
        yield from (up, circuit, saturated, queue, ema)
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

    metrics.add_collector(collect)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        if probes:
            for tier in tiers.values():
                tasks.append(
                    asyncio.create_task(
                        run_every(
                            service.health_interval_s,
                            _health_step(tier),
                            f"{tier.name} health probe",
                        )
                    )
                )
                tasks.append(
                    asyncio.create_task(
                        run_every(
                            service.load_poll_interval_s, _load_step(tier), f"{tier.name} load poll"
                        )
                    )
                )
        log.info(
            "router %s listening; tier_low=%s (%s), tier_high=%s (%s); GPU: %s",
            __version__,
            service.tier_low_url,
            service.tier_low_model,
            service.tier_high_url,
            service.tier_high_model,
            "available" if router.gpu.available else f"unavailable ({router.gpu.error})",
        )
        try:
            yield
        finally:
            await cancel_all(tasks)
            for tier in tiers.values():
                await tier.pool.aclose()
            router.shutdown()

    def _health_step(tier: TierClient) -> Any:
        async def step() -> None:
            tier.health = await probe_health(tier, service.health_timeout_s)
            router.set_tier_status(tier.name, up=tier.up, saturated=tier.saturated)

        return step

    def _load_step(tier: TierClient) -> Any:
        async def step() -> None:
            await poll_load(tier, service.health_timeout_s)
            router.set_tier_status(tier.name, saturated=tier.saturated)

        return step

    app = FastAPI(
        title="Stratum adaptive router",
        version=__version__,
        description="OpenAI-compatible proxy that routes each request to tier_low or tier_high.",
        lifespan=lifespan,
    )
    app.state.router = router
    app.state.tiers = tiers
    app.state.metrics = metrics
    app.state.service = service

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(str(exc.detail), code=code), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(
            error_body(str(exc.errors())[:500], code="invalid_value"), status_code=400
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "Internal router error; see the router's log.",
                type="server_error",
                code="internal_error",
            ),
            status_code=500,
        )

    @app.post("/v1/chat/completions", openapi_extra=_CHAT_BODY)
    async def chat_completions(request: Request) -> Response:
        return await proxy.handle(request, "chat", "/chat/completions")

    @app.post("/v1/completions", openapi_extra=_COMPLETION_BODY)
    async def completions(request: Request) -> Response:
        return await proxy.handle(request, "completion", "/completions")

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        try:
            proxy.check_auth(request)
        except APIError as exc:
            return exc.response()
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "stratum"}
            for name in service.models()
        ]
        return JSONResponse({"object": "list", "data": data})

    @app.post("/v1/route", openapi_extra=_CHAT_BODY)
    async def explain_route(request: Request) -> Response:
        """The decision for a chat (or completion) body, without calling any tier."""
        try:
            proxy.check_auth(request)
            body = await proxy.read_body(request)
            parsed = json.loads(body) if body.strip() else None
            endpoint = (
                "completion"
                if isinstance(parsed, dict) and "prompt" in parsed and "messages" not in parsed
                else "chat"
            )
            _, info = proxy.parse(body, endpoint)
            client_model, requested = proxy.resolve_model(info.model)
            decision = proxy.decide(info, requested)
        except APIError as exc:
            return exc.response()
        except ValueError:  # not JSON, or not UTF-8 at all
            return APIError(
                400, "The request body is not valid JSON (UTF-8).", code="invalid_json"
            ).response()
        tier = tiers[decision.tier]
        return JSONResponse(
            {
                "model": client_model,
                "tier": decision.tier,
                "served_model": tier.served_model,
                "reason": decision.reason,
                "decision": decision.as_dict(),
                "thresholds": {
                    "complexity_threshold": router.config.complexity_threshold,
                    "latency_sla_ms": router.config.latency_sla_ms,
                    "vram_headroom_gb": router.config.vram_headroom_gb,
                },
            }
        )

    @app.get("/livez")
    async def livez() -> Response:
        """Liveness of the router process itself, whatever the tiers do (container checks)."""
        return JSONResponse({"status": "alive", "version": __version__})

    @app.get("/health")
    async def health() -> Response:
        tier_status = {name: tier.status() for name, tier in tiers.items()}
        serving = [name for name, tier in tiers.items() if tier.up and tier.health != "down"]
        body = {
            "status": "ok" if len(serving) == len(tiers) else ("degraded" if serving else "down"),
            "version": __version__,
            "tiers": tier_status,
            "gpu": router.gpu.as_dict(),
            "latency_ema_ms": {k: round(v, 1) for k, v in router.ema.snapshot().items()},
        }
        return JSONResponse(body, status_code=200 if serving else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return RouterApp(app, proxy)


class RouterApp:
    """The ASGI entry point.

    The two proxy endpoints go straight to :class:`Proxy`, skipping FastAPI's middleware stack
    (they build their own OpenAI errors): that stack is a tenth of the router's CPU per request.
    Everything else — /health, /metrics, /v1/models, /v1/route, the OpenAPI docs, the lifespan —
    is the FastAPI app, which also documents the proxy endpoints.
    """

    def __init__(self, api: FastAPI, proxy: Proxy) -> None:
        self.api = api
        self.state = api.state
        self._proxy = proxy
        self._hot = {
            "/v1/chat/completions": ("chat", "/chat/completions"),
            "/v1/completions": ("completion", "/completions"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            hot = self._hot.get(scope["path"])
            if hot is not None:
                try:
                    response = await self._proxy.handle(Request(scope, receive), *hot)
                except Exception:
                    log.exception("unexpected error on POST %s", scope["path"])
                    response = JSONResponse(
                        error_body("Internal router error; see the router's log.",
                                   type="server_error", code="internal_error"),
                        status_code=500,
                    )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return self.api.openapi()
