"""The one path from a checked request to an engine, for chat and retrieval alike: admission
(a slot, or a bounded wait in the fair line of :mod:`.admission`) and failover.

A request comes with its *steps*: the tiers that may answer it, in order, each with how long it
may wait there for a slot. Chat: the decided tier, then the decision's fallback; retrieval: its
pool. On each step:

- a slot now, or a wait for one of at most the step's ``wait_s`` (a client that goes away while
  waiting leaves the line at once: :class:`ClientGone`); a person at their cap is refused with a
  429 (:class:`~.admission.Rejected`), and so is a request whose last step's wait runs out;
- a failure before the engine's first byte (:class:`UpstreamFailure`: connection refused,
  timeout, 5xx, llama-server's 503 "Loading model", a stream that ends at once) is counted on the
  replica's circuit, and the request tries another replica of the tier (at most
  :data:`REPLICAS_PER_TIER`), then the next step;
- a tier with no replica that takes work (every circuit open) is skipped without waiting, except
  on the last step, where its first replica is tried anyway: it may be back.

What a step's attempt is (a streamed chat exchange, a whole embeddings answer) is the caller's
``attempt`` function; it returns the answer or raises :class:`UpstreamFailure` (try elsewhere) or
:class:`~.errors.APIError` (the request's own fault: no retry). The caller releases the slot once
its answer is done (:meth:`~.admission.Lease.release`); on a failure the dispatcher does.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.types import Message, Receive

from .accounting import Accounting
from .admission import Klass, Lease, Line, Rejected
from .errors import APIError
from .identity import Person
from .metrics import RouterMetrics
from .tiers import Replica, TierRuntime

log = logging.getLogger("adaptive_router.dispatch")

REPLICAS_PER_TIER = 2
"""Replicas of one tier a request is tried on before the next step: a request that failed on
two replicas of a tier is unlikely to fare better on a third."""

T = TypeVar("T")


class UpstreamFailure(Exception):
    """An engine failed before its first byte; ``kind`` labels router_upstream_errors."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ClientGone(Exception):
    """The client went away while its request waited for a slot."""


@dataclass(frozen=True, slots=True)
class Step:
    tier: TierRuntime
    wait_s: float
    """Longest wait for a slot on this tier."""
    overflow: bool = True
    """When the wait runs out, go on to the next step (a routed request's soft choice);
    False: answer 429, as after the last step."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who sends the request, how it ranks, where it would rather go."""

    person: Person
    klass: Klass
    request_id: str
    key: int | None = None
    """The conversation's affinity key (:func:`~.balance.affinity_key`), for replica order."""
    receive: Receive | None = None
    """The client's ASGI receive, to notice it leave while waiting."""


@dataclass(frozen=True, slots=True)
class Detour:
    """Why a request is served off its first step: ``failover`` (a failure) or ``busy`` (no
    slot within its wait); what it waited for slots in all."""

    reason: str | None
    waited_s: float


Attempt = Callable[[TierRuntime, Lease, Detour], Awaitable[T]]


class Dispatcher:
    """Runs requests' steps against the tiers' lines."""

    def __init__(
        self,
        lines: Mapping[str, Line],
        metrics: RouterMetrics,
        accounting: Accounting,
    ) -> None:
        self.lines = lines
        self.metrics = metrics
        self.accounting = accounting

    async def run(
        self, ticket: Ticket, steps: Sequence[Step], attempt: Attempt[T], hint: str | None = None
    ) -> T:
        """The first answer along ``steps``. Raises :class:`APIError` (429 with Retry-After,
        503 when nothing could answer, with ``hint`` as why there was no other step, or the
        attempt's own), or :class:`ClientGone`."""
        errors: list[str] = []
        failed_from: str | None = None
        reason: str | None = None
        waited = 0.0
        for index, step in enumerate(steps):
            tier = step.tier
            line = self.lines[tier.name]
            last_step = index == len(steps) - 1
            tried: list[Replica] = []
            deadline: float | None = None
            while len(tried) < REPLICAS_PER_TIER:
                try:
                    lease = line.take(ticket.person, ticket.klass, tier.order(ticket.key), tried)
                except Rejected as exc:
                    raise self._reject(ticket, tier.name, exc, "capped") from None
                if lease is None and not line.any_up(tried):
                    if last_step and not tried:
                        lease = line.take(ticket.person, ticket.klass, tier.order(ticket.key),
                                          force=True)  # fmt: skip
                    if lease is None:
                        errors += [f"{_where(tier, r)}: circuit open "
                                   f"({r.last_error or 'recent failures'})"
                                   for r in tier.replicas if r not in tried]  # fmt: skip
                        failed_from = failed_from or tier.name
                        reason = reason or "failover"
                        break
                if lease is None:
                    loop = asyncio.get_running_loop()
                    if deadline is None:
                        deadline = loop.time() + step.wait_s
                    left = deadline - loop.time()
                    if line.expected_wait(ticket.person, ticket.klass) > left:
                        left = 0.0
                    began = loop.time()
                    lease = await self._wait(ticket, line, tried, left)
                    if lease is None:  # no slot in time
                        if left > 0:  # it waited: the other tier's headers say how long
                            waited += loop.time() - began
                        if last_step or not step.overflow:
                            busy = Rejected(
                                "queue_timeout",
                                f"{tier.name} is busy: no slot came free within {step.wait_s:g} s "
                                "(service.queue_timeout_s); try again shortly.",
                                line.retry_after_s(1),
                            )
                            raise self._reject(ticket, tier.name, busy, "timeout")
                        self.accounting.outcome(tier.name, "degraded")
                        reason = reason or "busy"
                        break
                    waited += lease.waited_s
                self.accounting.granted(lease)
                if failed_from is not None:
                    self.metrics.failovers.labels(failed_from, tier.name).inc()
                    failed_from = None
                replica = lease.replica
                try:
                    return await attempt(tier, lease, Detour(reason, waited))
                except UpstreamFailure as exc:
                    lease.release()
                    self._failed(ticket, tier, replica, exc)
                    errors.append(f"{_where(tier, replica)}: {exc}")
                    tried.append(replica)
                    failed_from = tier.name
                    reason = "failover"
                except BaseException:
                    lease.release()
                    raise
        raise APIError(
            503,
            "No tier could answer: " + "; ".join(errors) + (f" ({hint})" if hint else ""),
            type="server_error",
            code="upstream_unavailable",
        )

    def _failed(
        self, ticket: Ticket, tier: TierRuntime, replica: Replica, exc: UpstreamFailure
    ) -> None:
        replica.note_error(str(exc))
        replica.circuit.record_failure()
        if exc.kind == "loading":
            replica.health = "loading"
        self.metrics.upstream_errors.labels(tier.name, exc.kind, replica.label).inc()
        log.warning("request %s: %s failed before the first byte: %s",
                    ticket.request_id, _where(tier, replica), exc)  # fmt: skip

    def _reject(self, ticket: Ticket, tier: str, exc: Rejected, outcome: str) -> APIError:
        """The 429. ``Retry-After`` for clients that read it (the OpenAI SDKs do); LiteLLM passes
        an engine's headers on as ``llm_provider-<name>`` except ``x-ratelimit-limit-requests``
        and ``x-ratelimit-remaining-requests``, which keep their names (litellm 1.108.7 and
        1.108.14, litellm_core_utils/llm_response_utils/get_headers.py): a cap's 429 sends them
        too, and the message says when to try again."""
        self.accounting.outcome(tier, outcome)
        self.accounting.rejected(ticket.person, tier, exc.code)
        retry = math.ceil(exc.retry_after_s)
        headers = {"retry-after": str(retry)}
        if exc.limit is not None:
            headers["x-ratelimit-limit-requests"] = str(exc.limit)
            headers["x-ratelimit-remaining-requests"] = "0"
        return APIError(429, f"{exc} Try again in {retry} s.", type="requests", code=exc.code,
                        headers=headers)  # fmt: skip

    async def _wait(
        self, ticket: Ticket, line: Line, exclude: list[Replica], timeout_s: float
    ) -> Lease | None:
        """A slot within ``timeout_s``, else None; :class:`ClientGone` when the client leaves."""
        if timeout_s <= 0:
            return None
        waiter = line.enqueue(ticket.person, ticket.klass, list(exclude))
        watcher = (
            asyncio.ensure_future(wait_for_disconnect(ticket.receive))
            if ticket.receive is not None
            else None
        )
        try:
            pending: set[asyncio.Future[object]] = {waiter.future}  # type: ignore[arg-type]
            if watcher is not None:
                pending.add(watcher)  # type: ignore[arg-type]
            await asyncio.wait(pending, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            line.leave(waiter)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        future = waiter.future
        if watcher is not None and watcher.done() and not watcher.cancelled():
            line.leave(waiter)
            self.accounting.outcome(line.tier.name, "gone")
            raise ClientGone
        if future.done() and not future.cancelled():
            return future.result()
        line.leave(waiter)
        return None


def _where(tier: TierRuntime, replica: Replica) -> str:
    return tier.name if len(tier.replicas) == 1 else f"{tier.name} ({replica.label})"


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns when the client has gone away (ASGI ``http.disconnect``)."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
