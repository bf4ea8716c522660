"""Forward one OpenAI request to a tier: pass-through streaming, failover before the first byte.

The path of a request: read and check the body, decide the tier (pure, microseconds), send it
with the tier's pooled client, and

- before the first byte (connection refused, timeout, 5xx, llama-server's 503 "Loading model",
  a stream that ends before its first chunk): count the failure on the tier's circuit and retry
  once on the other tier when the policy allows;
- after the first byte: bytes go to the client as they arrive (one line of buffering, to rewrite
  the ``model`` field); a failure becomes an OpenAI-style error event, then the stream ends;
- when the client goes away, the upstream request is closed at once so the engine frees its slot.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from .config import Tier
from .errors import APIError, sse_error_event
from .metrics import RouterMetrics
from .router import AdaptiveRouter, Decision
from .rules import RoutingError
from .service_config import ServiceConfig
from .tiers import TierClient
from .validation import RequestInfo, chat_request, completion_request, parse_json

log = logging.getLogger("adaptive_router.proxy")

# Response headers of the upstream that must not be copied: hop-by-hop, or recomputed.
_DROP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
     "date", "server", "proxy-authenticate", "te", "trailer", "upgrade"}
)  # fmt: skip


class UpstreamFailure(Exception):
    """A tier failed before its first byte; ``kind`` labels router_upstream_errors."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ModelRewriter:
    """Rewrite ``"model": "<served name>"`` to the client's model name in a byte stream.

    Works on whole lines so a name split across two network chunks is still found; an SSE
    event ends with a newline, so nothing is held back longer than the event itself.
    """

    __slots__ = ("_buffer", "_pairs")

    def __init__(self, served: str, client_name: str) -> None:
        s, c = json.dumps(served).encode(), json.dumps(client_name).encode()
        self._pairs = ((b'"model":' + s, b'"model":' + c), (b'"model": ' + s, b'"model": ' + c))
        self._buffer = b""

    def rewrite(self, data: bytes) -> bytes:
        for old, new in self._pairs:
            if old in data:
                data = data.replace(old, new)
        return data

    def feed(self, chunk: bytes) -> bytes:
        data = self._buffer + chunk if self._buffer else chunk
        cut = data.rfind(b"\n") + 1
        self._buffer = data[cut:]
        return self.rewrite(data[:cut]) if cut else b""

    def flush(self) -> bytes:
        data, self._buffer = self._buffer, b""
        return self.rewrite(data)


@dataclass
class Attempt:
    """Bookkeeping for one request across its (at most two) tiers."""

    started: float
    request_id: str
    client_model: str
    decision: Decision
    stream: bool
    body: dict[str, Any]
    path: str


class Proxy:
    """The request handler behind /v1/chat/completions and /v1/completions."""

    def __init__(
        self,
        service: ServiceConfig,
        router: AdaptiveRouter,
        tiers: dict[Tier, TierClient],
        metrics: RouterMetrics,
    ) -> None:
        self.service = service
        self.router = router
        self.tiers = tiers
        self.metrics = metrics
        self._model_to_tier: dict[str, Tier | None] = {}
        for name in service.routed_models:
            self._model_to_tier.setdefault(name, None)
        for name in service.tier_high_models:
            self._model_to_tier.setdefault(name, "tier_high")
        for name in service.tier_low_models:
            self._model_to_tier.setdefault(name, "tier_low")
        self._api_key = service.api_key.encode() if service.api_key else None

    # -- request checks ----------------------------------------------------------------------

    def check_auth(self, request: Request) -> None:
        if self._api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._api_key
        ):
            raise APIError(
                401,
                "Missing or invalid API key: send 'Authorization: Bearer <ROUTER_API_KEY>'.",
                code="invalid_api_key",
            )

    async def read_body(self, request: Request) -> bytes:
        limit = self.service.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise self._too_large(int(length))
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise self._too_large(size)
                chunks.append(chunk)
        except ClientDisconnect:
            raise APIError(
                400, "The client closed the connection before sending the body."
            ) from None
        return b"".join(chunks)

    def _too_large(self, size: int) -> APIError:
        return APIError(
            413,
            f"The request body ({size} bytes) is larger than the limit of "
            f"{self.service.max_body_bytes} bytes (service.max_body_bytes).",
            code="request_too_large",
        )

    def resolve_model(self, model: str | None) -> tuple[str, Tier | None]:
        name = model or self.service.default_model
        if not name:
            raise APIError(
                400, "'model' is required.", code="missing_required_parameter", param="model"
            )
        if name not in self._model_to_tier:
            raise APIError(
                404,
                f"The model '{name}' does not exist. Available: "
                + ", ".join(self.service.models())
                + ".",
                code="model_not_found",
                param="model",
            )
        return name, self._model_to_tier[name]

    def parse(self, raw: bytes, endpoint: str) -> tuple[dict[str, Any], RequestInfo]:
        body = parse_json(raw)
        info = chat_request(body) if endpoint == "chat" else completion_request(body)
        return body, info

    def decide(self, info: RequestInfo, requested: Tier | None) -> Decision:
        query = info.messages if info.messages is not None else (info.prompt_text or "")
        for name in self.tiers:  # an open circuit turns half-open with time, not with an event
            self._sync_router(name)
        try:
            decision = self.router.decide(
                query, requested_tier=requested, max_output_tokens=info.max_tokens
            )
        except RoutingError as exc:
            raise APIError(400, str(exc), code=exc.code, param="messages") from None
        self.metrics.decision_seconds.observe(decision.decision_us / 1e6)
        self.metrics.complexity_score.observe(decision.score)
        return decision

    # -- the request ---------------------------------------------------------------------------

    async def handle(self, request: Request, endpoint: str, path: str) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            self.check_auth(request)
            raw = await self.read_body(request)
            body, info = self.parse(raw, endpoint)
            client_model, requested = self.resolve_model(info.model)
            decision = self.decide(info, requested)
        except APIError as exc:
            self.metrics.requests.labels("invalid", "none", "rejected", str(exc.status)).inc()
            return exc.response({"x-request-id": request_id})
        attempt = Attempt(
            started=started,
            request_id=request_id,
            client_model=client_model,
            decision=decision,
            stream=info.stream,
            body=body,
            path=path,
        )
        plan: list[Tier] = [decision.tier]
        # One retry on the other tier, unless the caller named the tier (and degraded answers are
        # off) or the prompt only fits this tier's context window.
        if (requested is None or self.service.allow_degraded) and decision.reason != "context":
            plan.append("tier_high" if decision.tier == "tier_low" else "tier_low")
        errors: list[str] = []
        for index, tier_name in enumerate(plan):
            tier = self.tiers[tier_name]
            last = index == len(plan) - 1
            if not last and not tier.circuit.allow():
                errors.append(f"{tier_name}: circuit open ({tier.last_error or 'recent failures'})")
                self._failover(tier_name, plan[index + 1])
                continue
            try:
                return await self._send(tier, attempt, failed_over=index > 0)
            except UpstreamFailure as exc:
                tier.note_error(str(exc))
                tier.circuit.record_failure()
                self._sync_router(tier_name)
                self.metrics.upstream_errors.labels(tier_name, exc.kind).inc()
                errors.append(f"{tier_name}: {exc}")
                log.warning(
                    "request %s: %s failed before the first byte: %s", request_id, tier_name, exc
                )
                if not last:
                    self._failover(tier_name, plan[index + 1])
        self._sync_router(decision.tier)
        self.metrics.requests.labels(client_model, decision.tier, decision.reason, "503").inc()
        hint = ""
        if len(plan) == 1:
            hint = (
                " (the prompt only fits this tier's context window)"
                if decision.reason == "context"
                else " (this model does not fall back: service.allow_degraded is off)"
            )
        return APIError(
            503,
            "No tier could answer: " + "; ".join(errors) + hint,
            type="server_error",
            code="upstream_unavailable",
        ).response(self._headers(attempt, decision.tier, reason=decision.reason))

    def _failover(self, src: Tier, dst: Tier) -> None:
        self.metrics.failovers.labels(src, dst).inc()

    def _sync_router(self, tier: Tier) -> None:
        t = self.tiers[tier]
        self.router.set_tier_status(tier, up=t.up, saturated=t.saturated)

    def _headers(self, attempt: Attempt, served: Tier, reason: str | None = None) -> dict[str, str]:
        d = attempt.decision
        headers = {
            "x-request-id": attempt.request_id,
            "x-router-tier": served,
            "x-router-reason": reason or ("failover" if served != d.tier else d.reason),
            "x-router-score": f"{d.score:.4f}",
        }
        policy = d.policy_tier or d.tier
        if served != policy:
            headers["x-router-degraded"] = "true"
            headers["x-router-policy-tier"] = policy
        return headers

    async def _send(self, tier: TierClient, attempt: Attempt, failed_over: bool) -> Response:
        payload = dict(attempt.body)
        payload["model"] = tier.served_model
        content = json.dumps(payload, ensure_ascii=False).encode()
        headers = {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "x-request-id": attempt.request_id,
            **tier.auth_headers(),
        }
        client = tier.pool.pick()
        request = client.build_request(
            "POST", tier.base_url + attempt.path, content=content, headers=headers
        )
        tier.in_flight += 1
        self.metrics.in_flight.labels(tier.name).set(tier.in_flight)
        self._sync_router(tier.name)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                tier.in_flight -= 1
                self.metrics.in_flight.labels(tier.name).set(tier.in_flight)
                self._sync_router(tier.name)

        try:
            upstream = await self._open(client, request)
        except BaseException:
            release()
            raise
        try:
            if upstream.status_code >= 500:
                text = (await upstream.aread())[:300].decode(errors="replace")
                await upstream.aclose()
                kind = (
                    "loading"
                    if upstream.status_code == 503 and "loading" in text.lower()
                    else "status_5xx"
                )
                raise UpstreamFailure(kind, f"HTTP {upstream.status_code}: {text.strip()}")
            if attempt.stream and upstream.status_code == 200:
                iterator = upstream.aiter_raw()
                try:
                    first = await iterator.__anext__()
                except StopAsyncIteration:
                    await upstream.aclose()
                    raise UpstreamFailure(
                        "protocol", "the stream ended before its first byte"
                    ) from None
                except httpx.HTTPError as exc:
                    await upstream.aclose()
                    raise UpstreamFailure(_kind(exc), f"{exc.__class__.__name__}: {exc}") from None
                ttft = time.perf_counter() - attempt.started
                self.metrics.ttft_seconds.labels(tier.name).observe(ttft)
                self.router.observe(tier.name, ttft * 1000.0)
                tier.circuit.record_success()
                self._sync_router(tier.name)
                return self._stream(tier, attempt, upstream, iterator, first, release)
            data = await upstream.aread()
            await upstream.aclose()
        except UpstreamFailure:
            release()
            raise
        except httpx.HTTPError as exc:
            release()
            await upstream.aclose()
            raise UpstreamFailure(_kind(exc), f"{exc.__class__.__name__}: {exc}") from None
        except BaseException:
            release()
            await upstream.aclose()
            raise
        release()
        elapsed = time.perf_counter() - attempt.started
        served_ok = upstream.status_code < 400
        if served_ok:
            tier.circuit.record_success()
            self._sync_router(tier.name)
            self.metrics.ttft_seconds.labels(tier.name).observe(elapsed)
            self.router.observe(tier.name, elapsed * 1000.0)
            data = ModelRewriter(tier.served_model, attempt.client_model).rewrite(data)
        self.metrics.request_duration_seconds.labels(tier.name).observe(elapsed)
        self.metrics.requests.labels(
            attempt.client_model,
            tier.name,
            self._reason(attempt, tier.name),
            str(upstream.status_code),
        ).inc()
        headers = _copy_headers(upstream.headers)
        headers.update(self._headers(attempt, tier.name))
        return Response(data, status_code=upstream.status_code, headers=headers)

    async def _open(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        try:
            return await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamFailure(
                _kind(exc),
                f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__,
            ) from None

    def _reason(self, attempt: Attempt, served: Tier) -> str:
        return "failover" if served != attempt.decision.tier else attempt.decision.reason

    def _stream(
        self,
        tier: TierClient,
        attempt: Attempt,
        upstream: httpx.Response,
        iterator: AsyncIterator[bytes],
        first: bytes,
        release: Any,
    ) -> StreamingResponse:
        rewriter = ModelRewriter(tier.served_model, attempt.client_model)
        metrics = self.metrics
        status = str(upstream.status_code)

        async def body() -> AsyncIterator[bytes]:
            outcome = "ok"
            try:
                out = rewriter.feed(first)
                if out:
                    yield out
                async for chunk in iterator:
                    out = rewriter.feed(chunk)
                    if out:
                        yield out
                rest = rewriter.flush()
                if rest:
                    yield rest
            except httpx.HTTPError as exc:
                outcome = "midstream"
                message = f"{tier.name} failed mid-stream: {exc.__class__.__name__}: {exc}"
                tier.note_error(message)
                metrics.upstream_errors.labels(tier.name, "midstream").inc()
                log.warning("request %s: %s", attempt.request_id, message)
                rest = rewriter.flush()
                if rest:
                    yield rest
                yield sse_error_event(message, code="upstream_stream_error")
            except (asyncio.CancelledError, GeneratorExit):
                outcome = "disconnect"
                metrics.client_disconnects.labels(tier.name).inc()
                raise
            finally:
                await upstream.aclose()
                release()
                metrics.request_duration_seconds.labels(tier.name).observe(
                    time.perf_counter() - attempt.started
                )
                metrics.requests.labels(
                    attempt.client_model,
                    tier.name,
                    self._reason(attempt, tier.name),
                    status if outcome == "ok" else outcome,
                ).inc()

        headers = _copy_headers(upstream.headers)
        headers.update(self._headers(attempt, tier.name))
        headers.setdefault("cache-control", "no-cache")
        headers["x-accel-buffering"] = "no"  # nginx and friends: do not buffer this stream
        return StreamingResponse(body(), status_code=upstream.status_code, headers=headers)


def _kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return "connect"
    return "protocol"


def _copy_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _DROP_HEADERS}
