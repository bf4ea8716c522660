"""One request to one engine: sent, checked up to its first byte, streamed, closed once.

:meth:`Exchange.open` either returns with the engine's first bytes in hand (or its whole answer
when not streamed) or raises :class:`UpstreamFailure`, after which the caller may try elsewhere:
nothing has reached the client yet. :meth:`Exchange.aclose` releases the engine's slot, closes
the upstream response and records the request's metrics, exactly once, whatever happened (like
the close of an httpx response stream).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..router import AdaptiveRouter, Decision
from .admission import RANK, Lease
from .dispatch import Detour, UpstreamFailure
from .errors import APIError
from .intake import ProxyRequest
from .metrics import RouterMetrics
from .probes import is_loading
from .tiers import TierRuntime
from .upstream import UpstreamError, UpstreamResponse

# Response headers of the engine that must not be copied: hop-by-hop, or recomputed.
_DROP_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"content-encoding",
     b"date", b"server", b"proxy-authenticate", b"te", b"trailer", b"upgrade"}
)  # fmt: skip
_UPSTREAM_PATHS = {"chat": "/chat/completions", "completion": "/completions"}
_JSON_CONTENT = (b"content-type", b"application/json")
_IDENTITY = (b"accept-encoding", b"identity")

# llama-server's HTTP 500 for an image (or audio, video) sent to a model without --mmproj
# (tools/server/server-common.cpp: "image input is not supported - hint: if this is unexpected,
# you may need to provide the mmproj"): the request's fault, not the engine's.
_NO_VISION_MARKERS = ("input is not supported", "mmproj")


@dataclass(frozen=True, slots=True)
class Timeouts:
    first_byte_s: float
    """Until the engine's first byte (its prefill): long prompts on the 26B take long."""
    between_chunks_s: float
    """Longest silence between two chunks of a stream."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """A routed request: what the client sent and what the engine decided about it."""

    request: ProxyRequest
    decision: Decision

    def reason(self, served: str, detour: str | None = None) -> str:
        """Why ``served`` answers: the decision's reason on its own tier; on the other,
        ``failover`` (its tier failed), or ``busy`` (no slot on it within the wait)."""
        if served == self.decision.tier:
            return self.decision.reason
        return detour or "failover"

    def headers(
        self,
        served: str,
        reason: str | None = None,
        replica: str | None = None,
        waited_s: float = 0.0,
    ) -> list[tuple[bytes, bytes]]:
        """The router's response headers: which tier (and, with several, which replica)
        answered, why, with what score, and how long it waited for a slot."""
        d = self.decision
        out = [
            (b"x-request-id", self.request.request_id.encode("latin-1")),
            (b"x-router-tier", served.encode()),
            (b"x-router-reason", (reason or self.reason(served)).encode()),
            (b"x-router-score", b"%.4f" % d.score),
        ]
        if d.second_opinion is not None:
            out.append((b"x-router-second-opinion", b"%.4f" % d.second_opinion))
        if replica is not None:
            out.append((b"x-router-replica", replica.encode()))
        if waited_s > 0:
            out.append((b"x-router-queue-ms", b"%d" % round(waited_s * 1000)))
        policy = d.policy_tier or d.tier
        if served != policy:
            out.append((b"x-router-degraded", b"true"))
            out.append((b"x-router-policy-tier", policy.encode()))
        return out


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

    @property
    def held(self) -> bool:
        return bool(self._buffer)


class Exchange:
    """One request to one replica of one tier."""

    def __init__(
        self,
        ctx: RequestContext,
        tier: TierRuntime,
        lease: Lease,
        detour: Detour,
        router: AdaptiveRouter,
        metrics: RouterMetrics,
        timeouts: Timeouts,
    ) -> None:
        self.ctx = ctx
        self.tier = tier
        self.lease = lease
        self.replica = lease.replica
        self.reason = ctx.reason(tier.name, detour.reason)
        self.waited_s = detour.waited_s
        self.router = router
        self.metrics = metrics
        self.timeouts = timeouts
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        """The answer's headers for the client: the engine's (hop-by-hop removed) and ours."""
        self.first = b""
        """Streams: the first bytes, already rewritten. Otherwise: the whole answer."""
        self.streaming = False
        self._response: UpstreamResponse | None = None
        self._rewriter = ModelRewriter(tier.served_model, ctx.request.client_model)
        self._closed = False

    async def open(self) -> None:
        """Send the request; return with the first bytes (streams) or the whole answer.

        Raises :class:`UpstreamFailure` (nothing sent to the client: try elsewhere) or
        :class:`APIError` (the request's own fault, e.g. an image for a text-only engine).
        """
        tier, replica, request = self.tier, self.replica, self.ctx.request
        payload = dict(request.body)
        payload["model"] = tier.served_model
        if tier.priority:  # vLLM: lower is served first (entrypoints/openai, "priority")
            payload["priority"] = RANK[self.lease.klass]
        self.metrics.tier(tier.name).in_flight.set(tier.in_flight)
        text = ""
        try:
            try:
                response = self._response = await replica.pool.request(
                    b"POST",
                    replica.api_path + _UPSTREAM_PATHS[request.endpoint],
                    headers=(
                        _JSON_CONTENT,
                        _IDENTITY,
                        (b"x-request-id", request.request_id.encode("latin-1")),
                        *tier.headers,
                    ),
                    body=json.dumps(payload, ensure_ascii=False).encode(),
                    first_byte_timeout_s=self.timeouts.first_byte_s,
                    read_timeout_s=self.timeouts.between_chunks_s,
                )
                self.status = response.status
                if response.status >= 500:
                    text = (await response.read())[:300].decode(errors="replace")
                elif request.info.stream and response.status == 200:
                    first = await response.next_data(self.timeouts.first_byte_s)
                    if not first:
                        raise UpstreamFailure("protocol", "the stream ended before its first byte")
                    self.streaming = True
                    self.first = self._rewriter.feed(first)
                else:
                    self.first = await response.read()
            except UpstreamError as exc:
                raise UpstreamFailure(exc.kind, str(exc)) from None
            if response.status >= 500:
                if response.status == 500 and all(m in text for m in _NO_VISION_MARKERS):
                    raise APIError(
                        400,
                        f"{tier.name} cannot read images (its llama-server has no --mmproj): "
                        f"{text.strip()}",
                        code="vision_not_supported",
                    )
                kind = "loading" if is_loading(response.status, text) else "status_5xx"
                raise UpstreamFailure(kind, f"HTTP {response.status}: {text.strip()}")
        except BaseException:
            await self.aclose(None)
            raise
        if self.streaming:
            # The SLA is about the time to first token: only streams measure it. A non-streamed
            # answer's time is its whole generation, which says nothing about waiting. The
            # client's time includes its wait for a slot; the SLA's average gets the engine's
            # alone (the wait is the line's business, not a sign that the engine is slow).
            lease = self.lease
            self.metrics.tier(tier.name).ttft.observe(time.perf_counter() - request.started)
            self.router.observe(tier.name, (lease.line.clock() - lease.started) * 1000.0)
            replica.circuit.record_success()
        elif response.status < 400:
            replica.circuit.record_success()
            self.first = self._rewriter.rewrite(self.first)
        self.headers = [(k, v) for k, v in response.headers if k.lower() not in _DROP_HEADERS]
        self.headers += self.ctx.headers(
            tier.name,
            self.reason,
            replica=replica.label if len(tier.replicas) > 1 else None,
            waited_s=self.waited_s,
        )
        if self.streaming:
            self.headers.append((b"cache-control", b"no-cache"))
            self.headers.append((b"x-accel-buffering", b"no"))  # nginx & co: do not buffer

    async def next_chunk(self) -> bytes:
        """The next rewritten bytes of the stream after :attr:`first`; ``b""`` at its end.

        Everything that has arrived since the last call comes at once. Raises
        :class:`~.upstream.UpstreamError` when the engine fails mid-stream.
        """
        assert self._response is not None
        rewriter = self._rewriter
        while data := await self._response.next_data():
            out = rewriter.feed(data)
            if out:
                return out
        return rewriter.flush()

    @property
    def finished(self) -> bool:
        """The stream has been read to its end (the last chunk can close the answer)."""
        return self._response is not None and self._response.finished and not self._rewriter.held

    def flush(self) -> bytes:
        """What the rewriter still holds (after a mid-stream failure)."""
        return self._rewriter.flush()

    async def aclose(self, outcome: str | None) -> None:
        """Release the slot, close the upstream response, record the metrics. Idempotent.

        ``outcome`` is the status label of router_requests_total (``"200"``, ``"midstream"``,
        ``"disconnect"``...), or None for an attempt that never reached the client.
        """
        if self._closed:
            return
        self._closed = True
        tier, replica = self.tier, self.replica
        self.lease.release()
        metrics = self.metrics.tier(tier.name)
        metrics.in_flight.set(tier.in_flight)
        if self._response is not None:
            self._response.close()
        if outcome is not None:
            request = self.ctx.request
            metrics.duration.observe(time.perf_counter() - request.started)
            self.metrics.request(request.client_model, tier.name, self.reason, outcome).inc()
            if len(tier.replicas) > 1:
                self.metrics.replica_request(tier.name, replica.label).inc()
