"""/v1/embeddings and /v1/rerank: the retrieval engines behind the same front as chat.

There is no complexity decision here: each endpoint has its own pool of engines (llama-server
in embedding or reranking mode), a :class:`~.tiers.TierRuntime` named ``embed`` or ``rerank``,
with the chat tiers' health probes, circuits and per-replica failover. A body is checked first
(:mod:`.retrieval_validation`), sent whole to the least-loaded replica that is up, and its answer
comes back whole with the client's model name in it. It reaches the engines the way chat does
(:mod:`.dispatch`): a slot on a replica, or a wait in the pool's fair line (a 429 with
``Retry-After`` when none comes free within ``queue_timeout_s``); before an answer the next replica
is tried (connection refused, timeout, 5xx, "Loading model"); when none can answer the client
gets a 503 in OpenAI's format. An engine's 4xx is the request's fault: it is passed on, in that
format.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.types import Receive, Scope, Send

from .admission import Lease
from .dispatch import ClientGone, Detour, Dispatcher, Step, Ticket, UpstreamFailure
from .errors import APIError
from .exchange import ModelRewriter, Timeouts
from .identity import Person, identify
from .intake import Intake, header, request_id_of
from .metrics import RouterMetrics
from .probes import is_loading
from .retrieval_validation import embeddings_request, rerank_request
from .tiers import Replica, TierRuntime
from .upstream import UpstreamError
from .validation import parse_json

log = logging.getLogger("adaptive_router.retrieval")

Kind = Literal["embed", "rerank"]
KINDS: tuple[Kind, Kind] = ("embed", "rerank")

RETRIEVAL_ROUTES: dict[str, Kind] = {
    "/v1/embeddings": "embed",
    "/v1/rerank": "rerank",
    "/rerank": "rerank",  # Jina's and Cohere's v1 path, which some clients call bare
}
"""The retrieval endpoints the router serves, and the pool behind each."""

_UPSTREAM_PATHS: dict[Kind, str] = {"embed": "/embeddings", "rerank": "/rerank"}
_JSON = (b"content-type", b"application/json")
_IDENTITY = (b"accept-encoding", b"identity")
_USAGE_KEY = b'"prompt_tokens":'

# llama-server's HTTP 500 for an input longer than its batch (server-context.cpp: "input (N
# tokens) is too large to process. increase the physical batch size"): the request's fault.
_TOO_LARGE_MARKER = "too large to process"


@dataclass(frozen=True, slots=True)
class RetrievalRequest:
    request_id: str
    started: float
    kind: Kind
    client_model: str
    body: bytes
    """What the engine gets: the client's body with the served model name in it."""
    inputs: int
    person: Person


def prompt_tokens(body: bytes) -> int:
    """``usage.prompt_tokens`` of an engine's answer, read without parsing the vectors (a batch
    of embeddings is megabytes of JSON; parsing it would hold the event loop)."""
    at = body.rfind(_USAGE_KEY)
    if at < 0:
        return 0
    start = at + len(_USAGE_KEY)
    end = start
    while end < len(body) and body[end] in b" 0123456789":
        end += 1
    digits = body[start:end].strip()
    return int(digits) if digits else 0


def engine_message(status: int, body: bytes) -> str:
    """The message of an engine's error answer (OpenAI or llama-server format), or its text."""
    text = body[:2000].decode(errors="replace")
    try:
        error = json.loads(text).get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}: {text.strip()[:300]}"


class RetrievalProxy:
    """Serves the retrieval routes from their engine pools."""

    def __init__(
        self,
        intake: Intake,
        pools: Mapping[Kind, TierRuntime],
        models: Mapping[Kind, tuple[str, ...]],
        limits: Mapping[Kind, int],
        metrics: RouterMetrics,
        timeouts: Timeouts,
        dispatcher: Dispatcher,
        queue_timeout_s: float,
    ) -> None:
        self.intake = intake
        self.pools = pools
        self.models = models
        self.limits = limits
        self.metrics = metrics
        self.timeouts = timeouts
        self.dispatcher = dispatcher
        self.queue_timeout_s = queue_timeout_s

    def resolve_model(self, kind: Kind, model: str | None) -> str:
        names = self.models[kind]
        pool = self.pools.get(kind)
        what = "embedding" if kind == "embed" else "reranking"
        if pool is None:
            setting = "embed_url" if kind == "embed" else "rerank_url"
            raise APIError(
                404,
                f"This router has no {what} engine (service.{setting} is empty).",
                code="model_not_found",
                param="model",
            )
        if model is None:
            return names[0]
        if model in names or model == pool.served_model:
            return model
        raise APIError(
            404,
            f"The {what} model '{model}' does not exist. Available: {', '.join(names)}.",
            code="model_not_found",
            param="model",
        )

    async def read(
        self, scope: Scope, receive: Receive, kind: Kind, request_id: str
    ) -> RetrievalRequest:
        started = time.perf_counter()
        headers = scope["headers"]
        self.intake.check_auth(header(headers, b"authorization"))
        raw = await self.intake.read_body(receive, header(headers, b"content-length"))
        body = parse_json(raw)
        person = identify(headers, scope.get("client"), body.get("user"))
        check = embeddings_request if kind == "embed" else rerank_request
        info = check(body, self.limits[kind])
        client_model = self.resolve_model(kind, info.model)
        body["model"] = self.pools[kind].served_model
        if info.top_n is not None and info.top_n > info.inputs:
            # "All of them", in the range llama-server parses: it reads top_n as a C int and
            # fails with HTTP 500 on a larger number (found by tests/e2e/test_e2e_fuzz.py).
            body["top_n"] = info.inputs
        return RetrievalRequest(
            request_id=request_id,
            started=started,
            kind=kind,
            client_model=client_model,
            body=json.dumps(body).encode(),
            inputs=info.inputs,
            person=person,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send, kind: Kind) -> None:
        request_id = request_id_of(scope)
        try:
            request = await self.read(scope, receive, kind, request_id)
        except APIError as exc:
            self.metrics.request("invalid", kind, "rejected", str(exc.status)).inc()
            await _send(send, exc.status, exc.json_bytes(),
                        [(b"x-request-id", request_id.encode("latin-1"))])  # fmt: skip
            return
        pool = self.pools[kind]
        pool_metrics = self.metrics.tier(kind)
        person = request.person
        ticket = Ticket(person, "batch" if person.batch else "interactive", request_id,
                        receive=receive)  # fmt: skip
        extra: list[tuple[bytes, bytes]] = []
        try:
            status, body, replica = await self.dispatcher.run(
                ticket,
                [Step(pool, self.queue_timeout_s, overflow=False)],
                lambda tier, lease, detour: self._attempt(request, tier, lease, detour),
            )
        except APIError as exc:
            status, body, replica = exc.status, exc.json_bytes(), None
            extra = [(k.encode(), v.encode()) for k, v in exc.headers.items()]
        except ClientGone:
            self.metrics.request(request.client_model, kind, "retrieval", "disconnect").inc()
            return
        pool_metrics.duration.observe(time.perf_counter() - request.started)
        self.metrics.request(request.client_model, kind, "retrieval", str(status)).inc()
        headers = [(b"x-request-id", request.request_id.encode("latin-1")),
                   (b"x-router-tier", kind.encode()), *extra]  # fmt: skip
        if replica is not None and len(pool.replicas) > 1:
            headers.append((b"x-router-replica", replica.label.encode()))
            self.metrics.replica_request(kind, replica.label).inc()
        if status == 200:
            self.metrics.retrieval_inputs.labels(kind).inc(request.inputs)
            self.metrics.retrieval_tokens.labels(kind).inc(prompt_tokens(body))
            body = ModelRewriter(pool.served_model, request.client_model).rewrite(body)
        await _send(send, status, body, headers)

    async def _attempt(
        self, request: RetrievalRequest, pool: TierRuntime, lease: Lease, detour: Detour
    ) -> tuple[int, bytes, Replica]:
        """One engine's answer: 200, or the request's fault as an :class:`APIError`; raises
        :class:`UpstreamFailure` when the next replica should be tried."""
        replica = lease.replica
        try:
            status, body = await self._send_to(request, pool, replica)
        finally:
            lease.release()
            self.metrics.tier(pool.name).in_flight.set(pool.in_flight)
        replica.circuit.record_success()
        if status == 200:
            return status, body, replica
        message = engine_message(status, body)
        if status >= 500 and _TOO_LARGE_MARKER in message:
            raise APIError(400, f"{pool.name}: {message}", code="context_length_exceeded")
        raise APIError(status, f"{pool.name}: {message}", code="engine_rejected")

    async def _send_to(
        self, request: RetrievalRequest, pool: TierRuntime, replica: Replica
    ) -> tuple[int, bytes]:
        """One request to one engine; raises :class:`UpstreamFailure` when the next replica
        should be tried."""
        self.metrics.tier(pool.name).in_flight.set(pool.in_flight)
        try:
            response = await replica.pool.request(
                b"POST",
                replica.api_path + _UPSTREAM_PATHS[request.kind],
                headers=(_JSON, _IDENTITY, *pool.headers),
                body=request.body,
                first_byte_timeout_s=self.timeouts.first_byte_s,
                read_timeout_s=self.timeouts.between_chunks_s,
            )
            try:
                body = await response.read()
            finally:
                response.close()
        except UpstreamError as exc:
            raise UpstreamFailure(exc.kind, str(exc)) from None
        status = response.status
        if status == 503 and is_loading(status, body[:200].decode(errors="replace")):
            raise UpstreamFailure("loading", "the engine is loading its model (HTTP 503)")
        if status >= 500 and _TOO_LARGE_MARKER not in body[:2000].decode(errors="replace"):
            raise UpstreamFailure("status_5xx", engine_message(status, body))
        return status, body


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [_JSON, (b"content-length", str(len(body)).encode()), *headers],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
