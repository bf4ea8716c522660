"""The handler behind /v1/chat/completions and /v1/completions: intake, decision, failover loop,
and the answer to the client, at the ASGI level.

- Before the engine's first byte (connection refused, timeout, 5xx, llama-server's 503 "Loading
  model", a stream that ends at once) the failure is counted on the replica's circuit and the
  request is retried on the fallback the decision engine chose with its decision (or not at all:
  the proxy only executes that policy).
- After the first byte, bytes go to the client as they arrive (one line of buffering, to rewrite
  the ``model`` field); a failure becomes an OpenAI-style error event, then the stream ends.
- When the client goes away, the upstream request is closed at once so the engine frees its slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from starlette.types import Message, Receive, Scope, Send

from ..config import Tier
from ..router import AdaptiveRouter, Decision
from ..rules import RoutingError, TierStatus
from .balance import affinity_key
from .errors import APIError, sse_error_event
from .exchange import Exchange, RequestContext, Timeouts, UpstreamFailure
from .intake import Endpoint, Intake, request_id_of
from .metrics import RouterMetrics
from .tiers import Replica, TierRuntime
from .upstream import UpstreamError
from .validation import RequestInfo

log = logging.getLogger("adaptive_router.proxy")

_JSON = (b"content-type", b"application/json")

REPLICAS_PER_TIER = 2
"""Replicas of one tier a request is tried on before the next tier (or the 503)."""


def _affinity_outcome(tier: TierRuntime, key: int | None, ordered: list[Replica]) -> str:
    """``home``, ``moved`` or ``least_load``: see router_affinity_total."""
    if key is None or not tier.affinity:
        return "least_load"
    return "home" if ordered and ordered[0] is tier.home(key) else "moved"


class Proxy:
    """Routes one request and relays the chosen engine's answer."""

    def __init__(
        self,
        intake: Intake,
        router: AdaptiveRouter,
        tiers: Mapping[Tier, TierRuntime],
        metrics: RouterMetrics,
        timeouts: Timeouts,
    ) -> None:
        self.intake = intake
        self.router = router
        self.tiers = tiers
        self.metrics = metrics
        self.timeouts = timeouts

    def tier_status(self) -> dict[str, TierStatus]:
        """The tiers' health and load as the decision engine reads them, now."""
        return {name: tier.status() for name, tier in self.tiers.items()}

    def decide(self, info: RequestInfo, requested_tier: Tier | None) -> Decision:
        """The engine's decision for a checked request; a :class:`RoutingError` (no tier can
        take it) becomes a 400 for the client."""
        query = info.messages if info.messages is not None else (info.prompt_text or "")
        try:
            return self.router.decide(
                query,
                requested_tier=requested_tier,
                max_output_tokens=info.max_tokens,
                tiers=self.tier_status(),
            )
        except RoutingError as exc:
            raise APIError(400, str(exc), code=exc.code, param="messages") from None

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint
    ) -> None:
        request_id = request_id_of(scope)
        try:
            request = await self.intake.read(scope, receive, endpoint, request_id)
            decision = self.decide(request.info, request.requested_tier)
            self.metrics.decision_seconds.observe(decision.decision_us / 1e6)
            self.metrics.complexity_score.observe(decision.score)
            ctx = RequestContext(request, decision)
        except APIError as exc:
            self.metrics.request("invalid", "none", "rejected", str(exc.status)).inc()
            await _send_error(send, exc, [(b"x-request-id", request_id.encode("latin-1"))])
            return
        try:
            exchange = await self._open(ctx)
        except APIError as exc:  # the request's own fault, seen by the engine
            self.metrics.request(
                request.client_model, ctx.decision.tier, ctx.decision.reason, str(exc.status)
            ).inc()
            await _send_error(send, exc, ctx.headers(ctx.decision.tier))
            return
        except _NoTier as exc:
            self.metrics.request(
                request.client_model, ctx.decision.tier, ctx.decision.reason, "503"
            ).inc()
            await _send_error(send, exc.error, ctx.headers(ctx.decision.tier, ctx.decision.reason))
            return
        if exchange.streaming:
            await self._relay_stream(exchange, receive, send)
        else:
            body = exchange.first
            headers = [*exchange.headers, (b"content-length", str(len(body)).encode())]
            try:
                await send({"type": "http.response.start", "status": exchange.status,
                            "headers": headers})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
            finally:
                await exchange.aclose(str(exchange.status))

    def attempts(self, ctx: RequestContext) -> tuple[int | None, list[tuple[TierRuntime, Replica]]]:
        """The conversation's affinity key (None with one replica per tier, or nothing to key)
        and where to try the request, in order: the decided tier's best replicas (its own for a
        conversation, see :mod:`.balance`), then the decision's fallback tier's. At most
        :data:`REPLICAS_PER_TIER` replicas of each tier are tried: a request that fails on two
        replicas of a tier is unlikely to fare better on a third."""
        decision = ctx.decision
        names = [decision.tier] if decision.fallback is None else [decision.tier, decision.fallback]
        key: int | None = None
        if any(len(self.tiers[n].replicas) > 1 for n in names):
            info = ctx.request.info
            key = affinity_key(info.messages, info.prompt_text)
        plan: list[tuple[TierRuntime, Replica]] = []
        for name in names:
            tier = self.tiers[name]
            ordered = tier.order(key)
            plan += [(tier, replica) for replica in ordered[:REPLICAS_PER_TIER]]
            if len(tier.replicas) > 1 and name == decision.tier:
                self.metrics.affinity.labels(name, _affinity_outcome(tier, key, ordered)).inc()
        return key, plan

    async def _open(self, ctx: RequestContext) -> Exchange:
        """Try each planned replica in turn; the first that answers wins."""
        key, plan = self.attempts(ctx)
        errors: list[str] = []
        for index, (tier, replica) in enumerate(plan):
            name = tier.name
            last = index == len(plan) - 1
            where = name if len(tier.replicas) == 1 else f"{name} ({replica.label})"
            if not last and not replica.circuit.allow():
                errors.append(f"{where}: circuit open ({replica.last_error or 'recent failures'})")
                self.metrics.failovers.labels(name, plan[index + 1][0].name).inc()
                continue
            exchange = Exchange(ctx, tier, replica, self.router, self.metrics, self.timeouts)
            try:
                await exchange.open()
                if 200 <= exchange.status < 300:
                    tier.remember(key, replica)
                return exchange
            except UpstreamFailure as exc:
                replica.note_error(str(exc))
                replica.circuit.record_failure()
                self.metrics.upstream_errors.labels(name, exc.kind, replica.label).inc()
                errors.append(f"{where}: {exc}")
                log.warning(
                    "request %s: %s failed before the first byte: %s",
                    ctx.request.request_id, where, exc,
                )  # fmt: skip
                if not last:
                    self.metrics.failovers.labels(name, plan[index + 1][0].name).inc()
        decision = ctx.decision
        hint = f" ({decision.no_fallback})" if decision.no_fallback else ""
        raise _NoTier(
            APIError(
                503,
                "No tier could answer: " + "; ".join(errors) + hint,
                type="server_error",
                code="upstream_unavailable",
            )
        )

    async def _relay_stream(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        """Send the stream as it comes; stop at once, and close upstream, if the client goes."""
        task = asyncio.current_task()
        assert task is not None
        gone = False

        def client_gone(_: object) -> None:
            nonlocal gone
            gone = True
            task.cancel()

        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        watcher.add_done_callback(client_gone)
        outcome = str(exchange.status)
        try:
            await send({"type": "http.response.start", "status": exchange.status,
                        "headers": exchange.headers})  # fmt: skip
            chunk = exchange.first
            try:
                # The last bytes go out with the end of the answer, in one write.
                while not exchange.finished:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    chunk = await exchange.next_chunk()
                    if not chunk:
                        break
            except UpstreamError as exc:
                outcome = "midstream"
                tier = exchange.tier
                message = f"{tier.name} failed mid-stream: {exc}"
                exchange.replica.note_error(message)
                self.metrics.upstream_errors.labels(
                    tier.name, "midstream", exchange.replica.label
                ).inc()
                log.warning("request %s: %s", exchange.ctx.request.request_id, message)
                rest = exchange.flush()
                if rest:
                    await send({"type": "http.response.body", "body": rest, "more_body": True})
                chunk = sse_error_event(message, code="upstream_stream_error")
            watcher.remove_done_callback(client_gone)
            await send({"type": "http.response.body", "body": chunk})
        except asyncio.CancelledError:
            if not gone:
                raise  # the server is shutting down: not ours to swallow
            task.uncancel()
            outcome = "disconnect"
            self.metrics.client_disconnects.labels(exchange.tier.name).inc()
        finally:
            watcher.remove_done_callback(client_gone)
            watcher.cancel()
            await exchange.aclose(outcome)


class _NoTier(Exception):
    def __init__(self, error: APIError) -> None:
        self.error = error


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_error(send: Send, error: APIError, headers: list[tuple[bytes, bytes]]) -> None:
    body = error.json_bytes()
    await send({
        "type": "http.response.start",
        "status": error.status,
        "headers": [_JSON, (b"content-length", str(len(body)).encode()), *headers],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
