"""The handler behind /v1/chat/completions and /v1/completions: intake, who is asking, decision,
admission and failover (:mod:`.dispatch`), and the answer to the client, at the ASGI level.

- Who is asking (:mod:`.identity`) sets the request's place in the fair line of each tier, its
  class (a chat UI's background task, batch work, or interactive) and its regenerate memory
  (:mod:`.regenerate`, read before the decision, written when an answer ends).
- A routed request waits for a slot on its tier at most ``routed_wait_s``, then the other tier
  answers it (``x-router-reason: busy``, ``x-router-degraded: true``); a request that named a
  tier, or that only one tier can take, or a chat UI's background task, waits up to
  ``queue_timeout_s``, then gets a 429 with ``Retry-After``.
- Before the engine's first byte (connection refused, timeout, 5xx, llama-server's 503 "Loading
  model", a stream that ends at once) the failure is counted on the replica's circuit and the
  request is retried on the fallback the decision engine chose with its decision (or not at all:
  the proxy only executes that policy).
- After the first byte, bytes go to the client as they arrive (one line of buffering, to rewrite
  the ``model`` field); a failure becomes an OpenAI-style error event, then the stream ends.
- When the client goes away, the upstream request is closed at once so the engine frees its slot;
  while it waits for a slot, it leaves the line.
- The decision engine is synchronous; its one slow step, the encoder's second opinion on a prompt
  the complexity model is unsure of (a few milliseconds of CPU), runs in a worker thread, one at
  a time, so the event loop keeps relaying other streams meanwhile. While
  :data:`ENCODER_QUEUE_MAX` prompts already wait for it (a burst of unsure prompts from a
  script), the next is decided by the complexity model alone, so nobody's decision waits behind
  a long queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import anyio
from starlette.types import Receive, Scope, Send

from ..config import Tier
from ..router import AdaptiveRouter, Decision
from ..rules import HARD_REASONS, RoutingError, TierStatus
from .admission import Klass, Lease
from .balance import affinity_key
from .dispatch import ClientGone, Detour, Dispatcher, Step, Ticket, wait_for_disconnect
from .errors import APIError, sse_error_event
from .exchange import Exchange, RequestContext, Timeouts
from .identity import Person, identify
from .intake import Endpoint, Intake, request_id_of
from .metrics import RouterMetrics
from .regenerate import RecentAnswers
from .tiers import Replica, TierRuntime
from .upstream import UpstreamError
from .validation import RequestInfo

log = logging.getLogger("adaptive_router.proxy")

_JSON = (b"content-type", b"application/json")
ENCODER_QUEUE_MAX = 8
"""Prompts waiting for the encoder beyond which a decision goes without it (~6 ms each: at most
about 50 ms of waiting)."""


def _affinity_outcome(tier: TierRuntime, key: int | None, ordered: list[Replica]) -> str:
    """``home``, ``moved`` or ``least_load``: see router_affinity_total."""
    if key is None or not tier.affinity:
        return "least_load"
    return "home" if ordered and ordered[0] is tier.home(key) else "moved"


def request_class(decision: Decision, person: Person) -> Klass:
    """A chat UI's background task, else batch work (a key or a header says so), else a
    person's interactive request."""
    if decision.housekeeping:
        return "background"
    return "batch" if person.batch else "interactive"


class Proxy:
    """Routes one request and relays the chosen engine's answer."""

    def __init__(
        self,
        intake: Intake,
        router: AdaptiveRouter,
        tiers: Mapping[Tier, TierRuntime],
        metrics: RouterMetrics,
        timeouts: Timeouts,
        dispatcher: Dispatcher,
        recent: RecentAnswers,
        *,
        routed_wait_s: float,
        queue_timeout_s: float,
    ) -> None:
        self.intake = intake
        self.router = router
        self.tiers = tiers
        self.metrics = metrics
        self.timeouts = timeouts
        self.dispatcher = dispatcher
        self.recent = recent
        self.routed_wait_s = routed_wait_s
        self.queue_timeout_s = queue_timeout_s
        # One second opinion at a time: at most one core goes to the encoder, which shares the
        # host with llama.cpp; a burst of unsure prompts queues here for a few milliseconds each.
        self.encoder_slots = anyio.CapacityLimiter(1)

    def tier_status(self) -> dict[str, TierStatus]:
        """The tiers' health and load as the decision engine reads them, now."""
        return {name: tier.status() for name, tier in self.tiers.items()}

    async def decide(
        self, info: RequestInfo, requested_tier: Tier | None, regenerate: bool = False
    ) -> Decision:
        """The engine's decision for a checked request; a :class:`RoutingError` (no tier can
        take it) becomes a 400 for the client. The encoder, when the engine wants its second
        opinion, runs in a worker thread."""
        query = info.messages if info.messages is not None else (info.prompt_text or "")
        router = self.router
        try:
            assessment = router.assess(
                query, requested_tier=requested_tier, regenerate=regenerate, defer=True
            )
            opinion = None
            if assessment.needs_second_opinion:
                if self.encoder_slots.statistics().tasks_waiting >= ENCODER_QUEUE_MAX:
                    self.metrics.second_opinions.labels("skipped").inc()
                    assessment = assessment.without_second_opinion()
                else:
                    opinion = await anyio.to_thread.run_sync(
                        router.second_opinion, assessment, limiter=self.encoder_slots
                    )
            decision = router.decide(
                assessment,
                requested_tier=requested_tier,
                max_output_tokens=info.max_tokens,
                tiers=self.tier_status(),
                regenerate=regenerate,
                second_opinion=opinion,
            )
        except RoutingError as exc:
            raise APIError(400, str(exc), code=exc.code, param="messages") from None
        if decision.linear_score is not None:
            threshold = router.config.complexity_threshold
            changed = (decision.linear_score >= threshold) != (decision.score >= threshold)
            self.metrics.second_opinions.labels("changed" if changed else "kept").inc()
        return decision

    def steps(self, decision: Decision) -> list[Step]:
        """Where the request may go, in order, and how long it may wait on each. Only a routed
        request's wait overflows to the other tier (a soft choice); the rest wait longer and
        then get a 429 (a background task never takes the 26B because tier_low is busy)."""
        first = self.tiers[decision.tier]
        routed = decision.reason not in HARD_REASONS and not decision.housekeeping
        if decision.fallback is None:
            return [Step(first, self.queue_timeout_s, overflow=False)]
        return [
            Step(first, self.routed_wait_s if routed else self.queue_timeout_s, overflow=routed),
            Step(self.tiers[decision.fallback], self.queue_timeout_s, overflow=False),
        ]

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint
    ) -> None:
        request_id = request_id_of(scope)
        try:
            request = await self.intake.read(scope, receive, endpoint, request_id)
            person = identify(scope["headers"], scope.get("client"), request.body.get("user"))
            info = request.info
            memory: bytes | None = None
            if (self.recent.enabled and info.stream and request.requested_tier is None
                    and info.messages is not None):  # fmt: skip
                memory = self.recent.key(person, info.messages)
            decision = await self.decide(
                info, request.requested_tier, memory is not None and self.recent.repeated(memory)
            )
            self.metrics.decision_seconds.observe(decision.decision_us / 1e6)
            self.metrics.complexity_score.observe(decision.score)
            ctx = RequestContext(request, decision)
        except APIError as exc:
            self.metrics.request("invalid", "none", "rejected", str(exc.status)).inc()
            await _send_error(send, exc, [(b"x-request-id", request_id.encode("latin-1"))])
            return
        key = self._affinity(ctx)
        ticket = Ticket(person, request_class(decision, person), request_id, key, receive)
        try:
            exchange = await self.dispatcher.run(
                ticket,
                self.steps(decision),
                lambda tier, lease, detour: self._exchange(ctx, key, tier, lease, detour),
                hint=decision.no_fallback,
            )
        except APIError as exc:  # the request's own fault, a 429, or no tier could answer
            self.metrics.request(
                request.client_model, decision.tier, decision.reason, str(exc.status)
            ).inc()
            headers = ctx.headers(decision.tier, decision.reason)
            headers += [(k.encode(), v.encode()) for k, v in exc.headers.items()]
            await _send_error(send, exc, headers)
            return
        except ClientGone:
            self.metrics.request(
                request.client_model, decision.tier, decision.reason, "disconnect"
            ).inc()
            self.metrics.client_disconnects.labels(decision.tier).inc()
            return
        if exchange.streaming:
            await self._relay_stream(exchange, receive, send, memory)
        else:
            outcome = str(exchange.status)
            body = exchange.first
            headers = [*exchange.headers, (b"content-length", str(len(body)).encode())]
            try:
                await send({"type": "http.response.start", "status": exchange.status,
                            "headers": headers})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
            finally:
                await exchange.aclose(outcome)

    def _affinity(self, ctx: RequestContext) -> int | None:
        """The conversation's affinity key (None with one replica per tier, or nothing to
        key), and the affinity metric of the decided tier."""
        decision = ctx.decision
        names = [decision.tier] if decision.fallback is None else [decision.tier, decision.fallback]
        if not any(len(self.tiers[n].replicas) > 1 for n in names):
            return None
        info = ctx.request.info
        key = affinity_key(info.messages, info.prompt_text)
        tier = self.tiers[decision.tier]
        if len(tier.replicas) > 1:
            outcome = _affinity_outcome(tier, key, tier.order(key))
            self.metrics.affinity.labels(decision.tier, outcome).inc()
        return key

    async def _exchange(
        self, ctx: RequestContext, key: int | None, tier: TierRuntime, lease: Lease,
        detour: Detour,
    ) -> Exchange:  # fmt: skip
        """One attempt: open the exchange on the leased replica (the first bytes in hand)."""
        exchange = Exchange(ctx, tier, lease, detour, self.router, self.metrics, self.timeouts)
        await exchange.open()
        if 200 <= exchange.status < 300:
            tier.remember(key, lease.replica)
        return exchange

    async def _relay_stream(
        self,
        exchange: Exchange,
        receive: Receive,
        send: Send,
        memory: bytes | None = None,
    ) -> str:
        """Send the stream as it comes; stop at once, and close upstream, if the client goes.
        A whole answer is remembered under ``memory`` (regenerate) before its last bytes go
        out: a client that asks again as soon as it has read them is seen asking again.
        Returns the outcome (``"200"``, ``"midstream"``, ``"disconnect"``...)."""
        task = asyncio.current_task()
        assert task is not None
        gone = False

        def client_gone(_: object) -> None:
            nonlocal gone
            gone = True
            task.cancel()

        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
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
            if memory is not None and outcome == "200":
                self.recent.answered(memory)
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
        return outcome


async def _send_error(send: Send, error: APIError, headers: list[tuple[bytes, bytes]]) -> None:
    body = error.json_bytes()
    await send({
        "type": "http.response.start",
        "status": error.status,
        "headers": [_JSON, (b"content-length", str(len(body)).encode()), *headers],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
