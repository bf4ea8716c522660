"""Admission through the service, in front of fake engines with real slot behaviour: the router
never sends an engine more than its slots, the rest wait in its line, in fair order; one
person's flood leaves the others their turn; caps and waits end in 429s with Retry-After; a
routed prompt that would wait too long is answered by the other tier, and says so; a client that
leaves while waiting leaves the line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.service import ServiceConfig, create_app
from adaptive_router.testing.fake_engine import Behavior, FakeEngine

from ..servers import serve
from .conftest import EASY, HARD, RouterHandle, chat

TITLE_TASK = (
    "### Task:\nGive the conversation a short title.\n### Output:\nJSON format: "
    f'{{ "title": "..." }}\n### Chat History:\n<chat_history>\nUSER: {HARD}\n'
    "ASSISTANT: Suppose there were finitely many primes.\n</chat_history>"
)


def slow(seconds: float, tokens: int = 4, **kw: Any) -> Behavior:
    """A request holds its slot about ``seconds``."""
    return Behavior(tokens=tokens, token_delay_s=seconds / tokens, **kw)


@pytest.fixture
def slotted() -> Iterator[dict[str, Any]]:
    """tier_low: a vLLM-like engine with 4 slots; tier_high: a llama-server with 2."""
    low = FakeEngine("gemma-4-e4b", "vllm", Behavior(slots=4))
    high = FakeEngine("gemma-4-26b-a4b", "llamacpp", slow(0.4, slots=2))
    with serve(low) as low_url, serve(high) as high_url:
        yield {"low": low, "high": high, "low_url": low_url + "/v1", "high_url": high_url + "/v1"}


@pytest.fixture
def start(slotted: dict[str, Any]) -> Iterator[Callable[..., RouterHandle]]:
    with ExitStack() as stack:

        def make(probes: bool = False, **service: Any) -> RouterHandle:
            service.setdefault("tier_low_url", slotted["low_url"])
            service.setdefault("tier_high_url", slotted["high_url"])
            if not probes:  # the slots probes=True would read from the engines
                service.setdefault("tier_high_max_in_flight", 2)
                service.setdefault("tier_low_max_in_flight", 4)
            app = create_app(
                ServiceConfig(**service),
                router=AdaptiveRouter(RoutingConfig(gpu_monitor=False)),
                probes=probes,
            )
            handle = RouterHandle(stack.enter_context(serve(app)), app)
            stack.callback(handle.client.close)
            return handle

        yield make


def run(router: RouterHandle, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(base_url=router.url, timeout=30.0) as client:
            return await scenario(client)

    return asyncio.run(main())


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition of the router's state (it runs in another thread)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def ask(client: httpx.AsyncClient, body: dict[str, Any]) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(client.post("/v1/chat/completions", json=body))


def waiting(router: RouterHandle, tier: str = "tier_high") -> int:
    return len(router.app.state.lines[tier].waiting)


async def while_the_script_holds_both_slots(
    client: httpx.AsyncClient, slotted: dict[str, Any], body: dict[str, Any]
) -> httpx.Response:
    """The script's two requests take tier_high's slots; ``body`` is asked while they run."""
    held = [ask(client, chat(EASY, "gemma4-smart", user="script")) for _ in range(2)]
    await until(lambda: slotted["high"].stats.busy == 2)
    response = await client.post("/v1/chat/completions", json=body)
    await asyncio.gather(*held)
    return response


def test_the_router_reads_the_engines_slots_and_never_sends_more(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(probes=True, health_interval_s=0.05, load_poll_interval_s=0.05)
    line = router.app.state.lines["tier_high"]

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        await until(lambda: line.total_capacity() == 2)  # GET /props total_slots
        return await asyncio.gather(*(
            client.post("/v1/chat/completions", json=chat(HARD, "gemma4-smart", stream=True))
            for _ in range(6)
        ))  # fmt: skip

    answers = run(router, scenario)
    assert [r.status_code for r in answers] == [200] * 6
    assert all(r.text.rstrip().endswith("[DONE]") for r in answers)
    assert slotted["high"].stats.max_busy == 2
    assert slotted["high"].stats.deferred == 0
    assert router.metric("router_tier_slots", tier="tier_high") == 2.0
    assert router.metric("router_queue_outcomes_total", tier="tier_high", outcome="waited") == 4.0
    waited = [int(r.headers.get("x-router-queue-ms", "0")) for r in answers]
    assert sorted(waited)[:2] == [0, 0] and min(sorted(waited)[2:]) > 0
    assert router.client.get("/health").json()["tiers"]["tier_high"]["slots"] == 2


def test_a_free_slot_goes_to_the_people_not_to_the_flood(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start()
    slotted["high"].behavior = slow(0.8, slots=2)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        flood = [ask(client, chat(HARD, "gemma4-smart", user="script")) for _ in range(6)]
        await until(lambda: waiting(router) == 4)
        people = [ask(client, chat(HARD, "gemma4-smart", user=name)) for name in ("bob", "carol")]
        return await asyncio.gather(*flood, *people)

    answers = run(router, scenario)
    assert [r.status_code for r in answers] == [200] * 8
    order = [body.get("user") for body in slotted["high"].stats.requests]
    # The script held both slots; the next two went to bob and carol, ahead of its 4 waiting.
    assert order[:2] == ["script", "script"]
    assert sorted(order[2:4]) == ["bob", "carol"]
    assert router.metric("router_person_requests_total", person="script", tier="tier_high") == 6
    assert router.metric("router_person_waits_total", person="bob", tier="tier_high") == 1
    slot_seconds = router.metric("router_person_slot_seconds_total", person="script")
    assert slot_seconds is not None and slot_seconds > 6 * 0.3


def test_the_per_person_cap_gives_that_person_429s_and_nobody_else(
    start: Callable[..., RouterHandle],
) -> None:
    router = start(max_requests_per_person=3)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        flood = [ask(client, chat(HARD, "gemma4-smart", user="script")) for _ in range(3)]
        await until(lambda: waiting(router) == 1)
        over = [await client.post("/v1/chat/completions",
                                  json=chat(HARD, "gemma4-smart", user="script"))
                for _ in range(2)]  # fmt: skip
        bob = ask(client, chat(HARD, "gemma4-smart", user="bob"))
        return [*over, *await asyncio.gather(*flood, bob)]

    over, again, *served = run(router, scenario)
    assert [r.status_code for r in served] == [200] * 4
    for refused in (over, again):
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert "max_requests_per_person = 3" in error["message"]
        assert error["message"].endswith(f"Try again in {refused.headers['retry-after']} s.")
        assert refused.headers["x-ratelimit-limit-requests"] == "3"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert refused.headers["x-router-tier"] == "tier_high"
    assert router.metric("router_person_rejections_total", person="script",
                         code="rate_limit_exceeded") == 2  # fmt: skip
    assert router.metric("router_person_rejections_total", person="bob") is None
    assert router.metric("router_requests_total", status="429") == 2


def test_a_routed_hard_prompt_waits_within_the_bound_then_the_other_tier_answers_and_says_so(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(routed_wait_s=0.15)
    slotted["high"].behavior = slow(1.2, slots=2)

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await while_the_script_holds_both_slots(client, slotted, chat(HARD, user="bob"))

    routed = run(router, scenario)
    assert routed.status_code == 200
    assert routed.headers["x-router-tier"] == "tier_low"
    assert routed.headers["x-router-reason"] == "busy"
    assert routed.headers["x-router-degraded"] == "true"
    assert routed.headers["x-router-policy-tier"] == "tier_high"
    # No slot had been held yet, so no wait could be foreseen: it waited the whole bound.
    assert int(routed.headers["x-router-queue-ms"]) >= 150
    assert router.metric("router_queue_outcomes_total", tier="tier_high", outcome="degraded") == 1
    assert router.metric("router_requests_total", tier="tier_low", reason="busy") == 1


def test_a_wait_the_line_foresees_past_the_bound_goes_to_the_other_tier_at_once(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(routed_wait_s=0.5)
    slotted["high"].behavior = slow(1.5, slots=2)

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        # Two answers of 1.5 s teach the line how long a slot is held; two more take both slots.
        await asyncio.gather(*(ask(client, chat(EASY, "gemma4-smart", user="script"))
                               for _ in range(2)))  # fmt: skip
        return await while_the_script_holds_both_slots(client, slotted, chat(HARD, user="bob"))

    routed = run(router, scenario)
    assert (routed.headers["x-router-tier"], routed.headers["x-router-reason"]) == (
        "tier_low",
        "busy",
    )
    assert "x-router-queue-ms" not in routed.headers  # no wait at all: it could not pay off
    assert router.metric("router_queue_outcomes_total", tier="tier_high", outcome="degraded") == 1


def test_a_routed_hard_prompt_that_gets_a_slot_in_time_stays_on_tier_high(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(routed_wait_s=3.0)

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await while_the_script_holds_both_slots(client, slotted, chat(HARD, user="bob"))

    routed = run(router, scenario)
    assert (routed.headers["x-router-tier"], routed.headers["x-router-reason"]) == (
        "tier_high",
        "complexity",
    )
    assert int(routed.headers["x-router-queue-ms"]) > 0
    assert "x-router-degraded" not in routed.headers


def test_a_named_tier_waits_longer_then_gets_a_429_with_retry_after(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(queue_timeout_s=0.3)
    slotted["high"].behavior = slow(1.5, slots=2)

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        body = chat(EASY, "gemma4-smart", user="bob")
        return await while_the_script_holds_both_slots(client, slotted, body)

    named = run(router, scenario)
    assert named.status_code == 429
    assert named.json()["error"]["code"] == "queue_timeout"
    assert int(named.headers["retry-after"]) >= 1
    assert not router.app.state.lines["tier_high"].waiting
    assert router.metric("router_queue_outcomes_total", tier="tier_high", outcome="timeout") == 1


def test_a_client_that_leaves_while_waiting_leaves_the_line_at_once(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start()
    slotted["high"].behavior = slow(1.0, slots=2)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        held = [ask(client, chat(EASY, "gemma4-smart", user="script")) for _ in range(2)]
        await until(lambda: slotted["high"].stats.busy == 2)
        leaver = ask(client, chat(HARD, "gemma4-smart", user="bob", stream=True))
        await until(lambda: waiting(router) == 1)
        leaver.cancel()  # the client closes its connection
        await until(lambda: waiting(router) == 0, timeout=2.0)
        return await asyncio.gather(*held)

    assert [r.status_code for r in run(router, scenario)] == [200, 200]
    assert [b.get("user") for b in slotted["high"].stats.requests] == ["script", "script"]
    assert router.metric("router_queue_outcomes_total", tier="tier_high", outcome="gone") == 1
    assert router.metric("router_requests_total", status="disconnect") == 1
    bob = router.app.state.lines["tier_high"].shares["user:bob"]
    assert (bob.waiting, bob.running) == (0, 0)


def test_background_tasks_wait_behind_chat_turns(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(tier_low_max_in_flight=1)
    slotted["low"].behavior = slow(0.4, slots=1)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        held = ask(client, chat(EASY, user="alice"))
        await until(lambda: slotted["low"].stats.busy == 1)
        task = ask(client, chat(TITLE_TASK, user="alice"))
        await until(lambda: waiting(router, "tier_low") == 1)
        turn = ask(client, chat(EASY + " And in Osaka?", user="bob"))
        await until(lambda: waiting(router, "tier_low") == 2)
        return await asyncio.gather(held, task, turn)

    answers = run(router, scenario)
    assert [r.status_code for r in answers] == [200] * 3
    task = answers[1]
    assert task.headers["x-router-reason"] == "task"
    order = [b["messages"][0]["content"] for b in slotted["low"].stats.requests]
    assert order == [EASY, EASY + " And in Osaka?", TITLE_TASK]
    assert router.metric("router_person_requests_total", person="alice",
                         **{"class": "background"}) == 1  # fmt: skip
    assert router.metric("router_queue_waiting", tier="tier_low") == 0


def test_the_class_reaches_a_vllm_with_priority_scheduling(
    start: Callable[..., RouterHandle], slotted: dict[str, Any]
) -> None:
    router = start(priority_tiers="tier_low")
    router.client.post("/v1/chat/completions", json=chat(EASY))
    router.client.post("/v1/chat/completions", json=chat(TITLE_TASK))
    router.client.post("/v1/chat/completions", json=chat(EASY + "?", priority=-5),
                       headers={"x-router-class": "batch"})  # fmt: skip
    router.client.post("/v1/chat/completions", json=chat(HARD))
    assert [b["priority"] for b in slotted["low"].stats.requests] == [0, 2, 1]
    assert "priority" not in slotted["high"].stats.requests[0]
