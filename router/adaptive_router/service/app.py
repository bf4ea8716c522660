"""The ASGI application: the proxy routes, the small endpoints around them, the lifespan.

``create_app`` wires the parts (tiers, metrics, intake, proxy, probes, GPU monitor) and
returns a :class:`RouterApp`. The two proxy routes are declared once (:data:`PROXY_ROUTES`):
requests to them go straight to the :class:`~.proxy.Proxy`, skipping FastAPI's middleware
stack (they build their own OpenAI errors; that stack was a tenth of the router's CPU per
request), while FastAPI documents them in its OpenAPI schema, generated from the validation
rules, and serves everything else: /v1/models, /v1/route, /health, /livez, /metrics, /docs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..config import TIERS, RoutingConfig, Tier
from ..router import AdaptiveRouter
from .accounting import Accounting
from .admission import Line
from .balance import affinity_key
from .circuit import CircuitBreaker
from .collector import StateCollector
from .config import ServiceConfig
from .dispatch import Dispatcher
from .errors import APIError, error_body, internal_error
from .exchange import Timeouts
from .intake import Endpoint, Intake
from .metrics import RouterMetrics
from .probes import Probes
from .proxy import Proxy
from .regenerate import RecentAnswers
from .retrieval import KINDS, RETRIEVAL_ROUTES, Kind, RetrievalProxy
from .retrieval_validation import embeddings_schema, openapi_retrieval_body, rerank_schema
from .tiers import Replica, TierRuntime
from .upstream import UpstreamPool
from .validation import openapi_body

log = logging.getLogger("adaptive_router.app")

PROXY_ROUTES: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
}
"""The OpenAI endpoints the router proxies, and the body each one takes."""


def replica_factory(service: ServiceConfig) -> Callable[[str], Replica]:
    """Makes a replica (its connection pool and circuit) for an engine URL."""

    def make(url: str) -> Replica:
        return Replica(
            url=url,
            pool=UpstreamPool(
                url,
                max_connections=service.max_connections_per_tier,
                connect_timeout_s=service.connect_timeout_s,
            ),
            circuit=CircuitBreaker(service.circuit_failure_threshold, service.circuit_cooldown_s),
        )

    return make


def tier_urls(service: ServiceConfig, name: Tier) -> tuple[str, ...]:
    return service.tier_low_url if name == "tier_low" else service.tier_high_url


def retrieval_urls(service: ServiceConfig, kind: Kind) -> tuple[str, ...]:
    return service.embed_url if kind == "embed" else service.rerank_url


def build_retrieval_pools(service: ServiceConfig) -> dict[Kind, TierRuntime]:
    """The embedding and reranking engines that are configured (none by default)."""
    make = replica_factory(service)
    pools: dict[Kind, TierRuntime] = {}
    for kind in KINDS:
        urls = retrieval_urls(service, kind)
        if not urls:
            continue
        embed = kind == "embed"
        pools[kind] = TierRuntime(
            name=kind,
            served_model=service.embed_model if embed else service.rerank_model,
            replicas=[make(url) for url in urls],
            api_key=service.embed_api_key if embed else service.rerank_api_key,
            affinity=False,
        )
    return pools


def build_tiers(service: ServiceConfig) -> dict[Tier, TierRuntime]:
    """One replica per configured URL; host names with several addresses are expanded by
    discovery once the service runs."""
    make = replica_factory(service)
    tiers: dict[Tier, TierRuntime] = {}
    for name in TIERS:
        low = name == "tier_low"
        tiers[name] = TierRuntime(
            name=name,
            served_model=service.tier_low_model if low else service.tier_high_model,
            replicas=[make(url) for url in tier_urls(service, name)],
            api_key=service.tier_low_api_key if low else service.tier_high_api_key,
            max_waiting=service.tier_low_max_waiting if low else service.tier_high_max_deferred,
            max_in_flight=service.tier_low_max_in_flight
            if low
            else service.tier_high_max_in_flight,
            affinity=service.affinity,
            load_factor=service.affinity_load_factor,
            affinity_spare=service.affinity_spare,
            priority=name in service.priority_tiers,
        )
    return tiers


def build_lines(
    service: ServiceConfig, pools: Iterable[TierRuntime], accounting: Accounting
) -> dict[str, Line]:
    """One admission line per tier and retrieval pool (:mod:`.admission`)."""
    lines: dict[str, Line] = {}
    for tier in pools:
        line = Line(
            tier,
            person_cap=service.max_requests_per_person,
            half_life_s=service.usage_half_life_s,
            on_release=accounting.held,
        )
        tier.wake = line.dispatch
        lines[tier.name] = line
    return lines


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
    pools = build_retrieval_pools(service)
    accounting = Accounting(metrics, service.metrics_people)
    lines = build_lines(service, [*tiers.values(), *pools.values()], accounting)
    metrics.registry.register(StateCollector(router, tiers, pools, lines))
    intake = Intake(service)
    timeouts = Timeouts(
        first_byte_s=service.first_byte_timeout_s, between_chunks_s=service.read_timeout_s
    )
    dispatcher = Dispatcher(lines, metrics, accounting)
    routed_wait_s = (
        router.config.latency_sla_ms / 1000.0
        if service.routed_wait_s is None
        else service.routed_wait_s
    )
    recent = RecentAnswers(service.regenerate_window_s)
    proxy = Proxy(intake, router, tiers, metrics, timeouts, dispatcher, recent,
                  routed_wait_s=routed_wait_s, queue_timeout_s=service.queue_timeout_s)  # fmt: skip
    retrieval = RetrievalProxy(
        intake,
        pools,
        models={"embed": service.embed_models, "rerank": service.rerank_models},
        limits={"embed": service.max_embedding_inputs, "rerank": service.max_rerank_documents},
        metrics=metrics,
        timeouts=timeouts,
        dispatcher=dispatcher,
        queue_timeout_s=service.queue_timeout_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = Probes()
        if probes:
            make = replica_factory(service)
            for name, tier in tiers.items():
                background.discover(tier, tier_urls(service, name), make,
                                    service.resolve_interval_s)  # fmt: skip
            for kind, pool in pools.items():
                background.discover(pool, retrieval_urls(service, kind), make,
                                    service.resolve_interval_s)  # fmt: skip
            background.watch(
                [*tiers.values(), *pools.values()],
                health_every_s=service.health_interval_s,
                load_every_s=service.load_poll_interval_s,
                timeout_s=service.health_timeout_s,
            )
        if service.sla_probe_interval_s > 0:
            background.sla(router, tiers["tier_high"], service.sla_probe_interval_s, metrics)
        router.start()
        log.info(
            "router %s listening; tier_low=%s (%s), tier_high=%s (%s); GPU: %s",
            __version__,
            ", ".join(service.tier_low_url),
            service.tier_low_model,
            ", ".join(service.tier_high_url),
            service.tier_high_model,
            "available" if router.gpu.available else f"unavailable ({router.gpu.error})",
        )
        for pool in pools.values():
            log.info("%s: %s (%s)", pool.name, ", ".join(r.url for r in pool.replicas),
                     pool.served_model)  # fmt: skip
        try:
            yield
        finally:
            await background.stop()
            for tier in [*tiers.values(), *pools.values()]:
                for replica in tier.replicas:
                    await replica.pool.aclose()
            router.shutdown()

    api = FastAPI(
        title="Stratum adaptive router",
        version=__version__,
        description="OpenAI-compatible proxy that routes each request to tier_low or tier_high.",
        lifespan=lifespan,
    )
    api.state.router = router
    api.state.tiers = tiers
    api.state.retrieval_pools = pools
    api.state.metrics = metrics
    api.state.service = service
    api.state.lines = lines
    api.state.recent = recent

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(str(exc.detail), code=code), status_code=exc.status_code)

    @api.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(
            error_body(str(exc.errors())[:500], code="invalid_value"), status_code=400
        )

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return internal_error()

    for path, endpoint in PROXY_ROUTES.items():

        async def documented_only(request: Request) -> Response:  # RouterApp answers these
            return internal_error()

        api.add_api_route(
            path,
            documented_only,
            methods=["POST"],
            name=f"{endpoint}_completions",
            summary=f"OpenAI {endpoint} completions, routed to tier_low or tier_high",
            openapi_extra=openapi_body(endpoint),
        )

    retrieval_docs = {
        "embed": ("create_embeddings", "OpenAI embeddings, served by the embedding engine",
                  embeddings_schema(service.max_embedding_inputs)),
        "rerank": ("rerank", "Jina/Cohere-style reranking, served by the reranking engine",
                   rerank_schema(service.max_rerank_documents)),
    }  # fmt: skip
    for path, kind in RETRIEVAL_ROUTES.items():
        name, summary, schema = retrieval_docs[kind]

        async def retrieval_documented_only(request: Request) -> Response:  # RouterApp answers
            return internal_error()

        api.add_api_route(
            path,
            retrieval_documented_only,
            methods=["POST"],
            name=name if path.startswith("/v1/") else f"{name}_alias",
            summary=summary,
            openapi_extra=openapi_retrieval_body(schema),
        )

    @api.get("/v1/models")
    async def models(request: Request) -> Response:
        try:
            intake.check_auth(request.headers.get("authorization"))
        except APIError as exc:
            return exc.response()
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "stratum"}
            for name in service.models()
        ]
        for kind, pool in pools.items():
            names = retrieval.models[kind]
            task = "embedding" if kind == "embed" else "rerank"
            data += [
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "stratum",
                    "task": task,
                    "served_model": pool.served_model,
                }
                for name in names
            ]
        return JSONResponse({"object": "list", "data": data})

    @api.post("/v1/route", openapi_extra=openapi_body("chat"))
    async def explain_route(request: Request) -> Response:
        """The decision for a chat (or completion) body, without calling any tier."""
        try:
            intake.check_auth(request.headers.get("authorization"))
            raw = await intake.read_body(request.receive, request.headers.get("content-length"))
            parsed = json.loads(raw) if raw.strip() else None
            endpoint: Endpoint = (
                "completion"
                if isinstance(parsed, dict) and "prompt" in parsed and "messages" not in parsed
                else "chat"
            )
            _, info = intake.parse(raw, endpoint)
            client_model, requested = intake.resolve_model(info.model)
            decision = await proxy.decide(info, requested)
        except APIError as exc:
            return exc.response()
        except ValueError:  # not JSON, or not UTF-8 at all
            return APIError(
                400, "The request body is not valid JSON (UTF-8).", code="invalid_json"
            ).response()
        tier = tiers[decision.tier]
        key = affinity_key(info.messages, info.prompt_text) if len(tier.replicas) > 1 else None
        replicas = tier.order(key)
        return JSONResponse(
            {
                "model": client_model,
                "tier": decision.tier,
                "replica": replicas[0].url if replicas else None,
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

    @api.get("/livez")
    async def livez() -> Response:
        """Liveness of the router process itself, whatever the tiers do (container checks)."""
        return JSONResponse({"status": "alive", "version": __version__})

    def describe(tier: TierRuntime) -> dict[str, Any]:
        line = lines[tier.name]
        return {**tier.describe(), "slots": line.total_capacity() or None,
                "waiting": len(line.waiting)}  # fmt: skip

    @api.get("/health")
    async def health() -> Response:
        serving = [name for name, tier in tiers.items() if tier.serving]
        body = {
            "status": "ok" if len(serving) == len(tiers) else ("degraded" if serving else "down"),
            "version": __version__,
            "tiers": {name: describe(tier) for name, tier in tiers.items()},
            "retrieval": {kind: describe(pool) for kind, pool in pools.items()},
            "gpu": router.gpu.as_dict(),
            "latency_ema_ms": {k: round(v, 1) for k, v in router.ema.snapshot().items()},
        }
        return JSONResponse(body, status_code=200 if serving else 503)

    @api.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return RouterApp(api, proxy, retrieval)


class RouterApp:
    """The ASGI entry point: proxy routes to the proxy, everything else to FastAPI."""

    def __init__(self, api: FastAPI, proxy: Proxy, retrieval: RetrievalProxy) -> None:
        self.api = api
        self.state = api.state
        self._posts: dict[str, ASGIApp] = {
            **{path: partial(proxy, endpoint=e) for path, e in PROXY_ROUTES.items()},
            **{path: partial(retrieval, kind=k) for path, k in RETRIEVAL_ROUTES.items()},
        }
        """The POST paths served outside FastAPI, each with its handler, built once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self._posts.get(scope["path"])
            if handler is not None:
                try:
                    await handler(scope, receive, send)
                except Exception:
                    log.exception("unexpected error on POST %s", scope["path"])
                    with contextlib.suppress(RuntimeError):  # unless the answer had begun
                        await internal_error()(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return self.api.openapi()
