"""Several replicas per tier: least outstanding work, cache affinity with bounded loads,
failover to another replica before the next tier, per-replica health and metrics, discovery."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from adaptive_router.config import ConfigError
from adaptive_router.service import ServiceConfig
from adaptive_router.service.balance import (
    HashRing,
    affinity_key,
    by_affinity,
    least_outstanding,
    stable_hash,
)
from adaptive_router.service.config import load_service_config
from adaptive_router.service.discovery import reconcile, resolve
from adaptive_router.service.tiers import PLACEMENTS, TierRuntime
from adaptive_router.testing.fake_engine import Behavior, FakeEngine

from ..servers import serve
from .conftest import EASY, HARD, RouterHandle, chat


@pytest.fixture
def replicas() -> Iterator[dict[str, Any]]:
    """Two fake vLLM replicas for tier_low, two fake llama-servers for tier_high."""
    engines = {
        "low_a": FakeEngine("gemma-4-e4b", "vllm"),
        "low_b": FakeEngine("gemma-4-e4b", "vllm"),
        "high_a": FakeEngine("gemma-4-26b-a4b", "llamacpp"),
        "high_b": FakeEngine("gemma-4-26b-a4b", "llamacpp"),
    }
    with (
        serve(engines["low_a"]) as low_a,
        serve(engines["low_b"]) as low_b,
        serve(engines["high_a"]) as high_a,
        serve(engines["high_b"]) as high_b,
    ):
        urls = {"low_a": low_a, "low_b": low_b, "high_a": high_a, "high_b": high_b}
        yield {"engines": engines, "urls": {k: v + "/v1" for k, v in urls.items()}}


@pytest.fixture
def two_by_two(
    make_router: Callable[..., RouterHandle], replicas: dict[str, Any]
) -> Callable[..., RouterHandle]:
    def make(**service: Any) -> RouterHandle:
        u = replicas["urls"]
        service.setdefault("tier_low_url", f"{u['low_a']},{u['low_b']}")
        service.setdefault("tier_high_url", [u["high_a"], u["high_b"]])
        return make_router(**service)

    return make


def served_by(replicas: dict[str, Any], *names: str) -> dict[str, int]:
    return {name: len(replicas["engines"][name].stats.requests) for name in names}


def conversation(topic: str, turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a careful assistant."},
                {"role": "user", "content": f"Tell me about {topic}."}]  # fmt: skip
    for i in range(turns - 1):
        messages += [{"role": "assistant", "content": f"Answer {i} about {topic}."},
                     {"role": "user", "content": f"And more, part {i}?"}]  # fmt: skip
    return messages


# -- configuration ----------------------------------------------------------------------------------


def test_one_url_still_works_and_lists_take_a_comma_or_a_yaml_list(tmp_path: Any) -> None:
    assert ServiceConfig(tier_low_url="http://a:8000/v1/").tier_low_url == ("http://a:8000/v1",)
    service, _ = load_service_config(
        environ={"ROUTER_TIER_HIGH_URL": "http://a:8080/v1, http://b:8080/v1"}
    )
    assert service.tier_high_url == ("http://a:8080/v1", "http://b:8080/v1")
    path = tmp_path / "router.yaml"
    path.write_text("service:\n  tier_low_url: [http://x:1/v1, http://y:1/v1]\n")
    assert load_service_config(path)[0].tier_low_url == ("http://x:1/v1", "http://y:1/v1")
    for bad in ("http://a/v1,http://a/v1", "ftp://a/v1", ""):
        with pytest.raises(ConfigError, match="tier_low_url"):
            load_service_config(environ={"ROUTER_TIER_LOW_URL": bad or "[]"})


# -- the balancer on its own ---------------------------------------------------------------------------


class R:
    def __init__(self, label: str, outstanding: float = 0, up: bool = True) -> None:
        self.label, self.outstanding, self.up = label, outstanding, up


def test_least_outstanding_takes_the_idlest_and_puts_down_replicas_last() -> None:
    a, b, c = R("a", 3), R("b", 1), R("c", 0, up=False)
    assert [r.label for r in least_outstanding([a, b, c])] == ["b", "a", "c"]


def test_the_ring_spreads_conversations_and_keeps_each_one_in_place() -> None:
    ring = HashRing([R("a"), R("b"), R("c")])
    homes = [next(ring.walk(stable_hash(f"conversation {i}"))).label for i in range(600)]
    assert {homes.count(x) for x in "abc"} <= set(range(150, 251))  # about a third each
    key = stable_hash("conversation 7")
    assert [r.label for r in ring.walk(key)] == [r.label for r in ring.walk(key)]
    assert sorted(r.label for r in ring.walk(key)) == ["a", "b", "c"]


def test_bounded_load_moves_a_conversation_off_an_overloaded_replica_only() -> None:
    a, b = R("a"), R("b")
    ring = HashRing([a, b])
    key = next(k for k in range(10**6) if next(ring.walk(k)) is a)
    assert by_affinity(ring, key, 1.25)[0] is a
    a.outstanding = 3  # capacity = ceil(1.25 * (3 + 1) / 2) = 3: a is full
    assert by_affinity(ring, key, 1.25)[0] is b
    a.outstanding, a.up = 0, False
    assert by_affinity(ring, key, 1.25)[0] is b


def test_a_moved_conversation_stays_where_its_cache_now_is() -> None:
    a, b = R("a"), R("b")
    tier = TierRuntime("tier_low", "m", [a, b], affinity_spare=0)  # type: ignore[list-item]
    key = next(k for k in range(10**6) if next(tier.ring.walk(k)) is a)
    assert tier.order(key)[0] is a
    a.outstanding = 3  # full: the turn goes to b, which now holds the prefix
    assert tier.order(key)[0] is b
    tier.remember(key, b)  # type: ignore[arg-type]
    a.outstanding = 0
    assert tier.order(key)[0] is b and tier.home(key) is b
    b.outstanding = 3  # b full in turn: back to a, within the same bound
    assert tier.order(key)[0] is a
    b.outstanding, b.up = 0, False
    assert tier.order(key)[0] is a and tier.home(key) is a


def test_the_tier_remembers_a_bounded_number_of_conversations() -> None:
    a, b = R("a"), R("b")
    tier = TierRuntime("tier_low", "m", [a, b])  # type: ignore[list-item]
    for key in range(PLACEMENTS + 10):
        tier.remember(key, b)  # type: ignore[arg-type]
    assert len(tier.placements) == PLACEMENTS
    assert 0 not in tier.placements and PLACEMENTS + 9 in tier.placements
    single = TierRuntime("tier_low", "m", [a])  # type: ignore[list-item]
    single.remember(1, a)  # type: ignore[arg-type]
    assert not single.placements  # one replica: nothing to remember


def test_content_parts_that_are_not_text_do_not_break_the_key() -> None:
    odd = [{"role": "user", "content": [{"type": "x", "text": False}, {"type": "text", "text": "hi"},
                                        "not a part", {"type": "image_url"}]}]  # fmt: skip
    assert affinity_key(odd, None) == affinity_key([{"role": "user", "content": "hi"}], None)
    assert affinity_key([{"role": "user", "content": [{"text": 3}]}], None) is None


def test_the_affinity_key_is_the_conversation_s_start_and_the_same_in_every_process() -> None:
    assert affinity_key(conversation("tides", 1), None) == affinity_key(
        conversation("tides", 5), None
    )
    assert affinity_key(conversation("tides", 1), None) != affinity_key(
        conversation("moons", 1), None
    )
    assert affinity_key(None, "Once upon a time") == stable_hash("Once upon a time")
    assert affinity_key(None, None) is None and affinity_key([], "") is None
    # Two router processes (Kubernetes pods) must send a conversation to the same replica.
    code = "from adaptive_router.service.balance import stable_hash; print(stable_hash('tides'))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert outs == {f"{stable_hash('tides')}\n"}


# -- the service -------------------------------------------------------------------------------------


def test_load_is_spread_and_every_answer_says_which_replica(
    two_by_two: Callable[..., RouterHandle], replicas: dict[str, Any]
) -> None:
    router = two_by_two(affinity=False)
    for engine in replicas["engines"].values():
        engine.behavior = Behavior(first_token_delay_s=0.2)
    seen: set[str] = set()

    def one() -> None:
        r = router.client.post("/v1/chat/completions", json=chat(EASY, max_tokens=4))
        assert r.status_code == 200, r.text
        seen.add(r.headers["x-router-replica"])

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = served_by(replicas, "low_a", "low_b")
    assert counts["low_a"] >= 2 and counts["low_b"] >= 2, counts  # least outstanding: 3 / 3
    assert len(seen) == 2
    assert router.metric("router_replica_requests_total", tier="tier_low") == 6
    assert router.metric("router_affinity_total", tier="tier_low", outcome="least_load") == 6


def test_a_conversation_stays_on_its_replica_and_conversations_spread(
    two_by_two: Callable[..., RouterHandle], replicas: dict[str, Any]
) -> None:
    router = two_by_two()
    homes: dict[str, set[str]] = {}
    topics = [f"topic {i}" for i in range(20)]  # all 20 on one of two replicas: p = 2e-6
    for topic in topics:
        for turns in (1, 2, 3):
            body = {"model": "tier_low", "messages": conversation(topic, turns)}
            r = router.client.post("/v1/chat/completions", json=body)
            assert r.status_code == 200
            homes.setdefault(topic, set()).add(r.headers["x-router-replica"])
    assert all(len(h) == 1 for h in homes.values()), homes  # every turn on one replica
    assert len({next(iter(h)) for h in homes.values()}) == 2  # the conversations use both
    assert router.metric("router_affinity_total", tier="tier_low", outcome="home") == 60


def test_a_dead_replica_fails_over_to_the_other_replica_of_the_same_tier(
    two_by_two: Callable[..., RouterHandle], replicas: dict[str, Any]
) -> None:
    u = replicas["urls"]
    with socket.socket() as dead:  # a port nothing answers on
        dead.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/v1"
    router = two_by_two(tier_high_url=[dead_url, u["high_b"]], affinity=False)
    dead_label = dead_url.split("//")[1].removesuffix("/v1")
    # Both replicas are idle, so each request picks one at random: ask until the dead one has
    # been picked often enough to open its circuit (3 failures).
    for _ in range(60):
        r = router.client.post("/v1/chat/completions", json=chat(HARD))
        assert r.status_code == 200, r.text
        assert r.headers["x-router-tier"] == "tier_high"  # not degraded to tier_low
        assert "x-router-degraded" not in r.headers
        assert r.headers["x-router-replica"] == u["high_b"].split("//")[1].removesuffix("/v1")
        if router.tier("tier_high").replicas[0].circuit.state.value == "open":
            break
    assert router.metric("router_failovers_total", from_tier="tier_high", to_tier="tier_high") >= 3
    assert router.metric("router_upstream_errors_total", tier="tier_high", replica=dead_label) >= 3
    health = router.client.get("/health").json()
    tier = health["tiers"]["tier_high"]
    assert tier["state"] == "up" and health["status"] == "ok"
    states = {r["url"]: r["circuit"] for r in tier["replicas"]}
    assert states[dead_url] == "open" and states[u["high_b"]] == "closed"
    assert router.metric("router_replica_up", tier="tier_high", replica=dead_label) == 0


def test_a_tier_is_down_only_when_every_replica_is(
    two_by_two: Callable[..., RouterHandle], replicas: dict[str, Any]
) -> None:
    router = two_by_two()
    for name in ("high_a", "high_b"):
        replicas["engines"][name].behavior = Behavior(fault="500")
    for _ in range(8):
        r = router.client.post("/v1/chat/completions", json=chat(HARD))
        assert r.status_code == 200
        assert r.headers["x-router-tier"] == "tier_low"
    assert not router.tier("tier_high").up
    assert router.client.get("/health").json()["tiers"]["tier_high"]["state"] == "down"


def test_route_says_which_replica_would_answer(
    two_by_two: Callable[..., RouterHandle], replicas: dict[str, Any]
) -> None:
    router = two_by_two()
    body = {"model": "tier_low", "messages": conversation("tides", 2)}
    preview = router.client.post("/v1/route", json=body).json()
    answer = router.client.post("/v1/chat/completions", json=body)
    assert preview["replica"] in replicas["urls"].values()
    assert (
        preview["replica"].split("//")[1].removesuffix("/v1") == answer.headers["x-router-replica"]
    )


def test_one_replica_tiers_answer_as_before(router: RouterHandle) -> None:
    r = router.client.post("/v1/chat/completions", json=chat(EASY))
    assert r.status_code == 200 and "x-router-replica" not in r.headers
    assert router.metric("router_affinity_total") is None
    assert isinstance(router.client.get("/health").json()["tiers"]["tier_low"]["url"], str)


# -- discovery -----------------------------------------------------------------------------------------


def test_a_name_with_several_addresses_is_one_replica_per_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: dict[str, list[str]] = {"engines": ["10.0.0.2", "10.0.0.1", "fd00::3"],
                                     "single": ["10.0.0.9"]}  # fmt: skip

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    async def run() -> tuple[list[str], list[str], list[str]]:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
        return (await resolve("http://engines:8080/v1"), await resolve("http://single:8000/v1"),
                await resolve("http://10.1.1.1:8000/v1"))  # fmt: skip

    several, single, literal = asyncio.run(run())
    assert several == ["http://10.0.0.1:8080/v1", "http://10.0.0.2:8080/v1",
                       "http://[fd00::3]:8080/v1"]  # fmt: skip
    assert single == ["http://single:8000/v1"]  # one address: the name stays
    assert literal == ["http://10.1.1.1:8000/v1"]


def test_reconcile_keeps_the_state_of_replicas_that_stay(router: RouterHandle) -> None:
    from adaptive_router.service.app import replica_factory

    tier = router.tier("tier_low")
    make = replica_factory(ServiceConfig())
    a, b = make("http://10.0.0.1:8000/v1"), make("http://10.0.0.2:8000/v1")
    tier.set_replicas([a, b])
    a.in_flight = 3
    gone = reconcile(tier, ["http://10.0.0.1:8000/v1", "http://10.0.0.3:8000/v1"], make)
    assert gone == [b]
    assert tier.replicas[0] is a and a.in_flight == 3
    assert tier.replicas[1].url == "http://10.0.0.3:8000/v1"
    assert {r.label for r in tier.ring.replicas} == {"10.0.0.1:8000", "10.0.0.3:8000"}
