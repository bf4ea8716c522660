"""The admission line on its own: slots per replica, the fair order, the per-person cap, leaving
the line, the wait estimate. No network: replicas are objects, time is a list the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from adaptive_router.service.admission import Klass, Lease, Line, Rejected
from adaptive_router.service.circuit import CircuitBreaker
from adaptive_router.service.identity import Person
from adaptive_router.service.tiers import Replica, TierRuntime
from adaptive_router.service.upstream import UpstreamPool

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def person(name: str) -> Person:
    return Person(id=f"user:{name}", name=name, source="user")


ALICE, BOB, CAROL = person("alice"), person("bob"), person("carol")


def make_line(slots: int = 2, max_in_flight: int = 0, replicas: int = 1, **kw: Any) -> Line:
    reps = []
    for i in range(replicas):
        url = f"http://127.0.0.1:{9000 + i}"
        pool = UpstreamPool(url, max_connections=4, connect_timeout_s=1.0)
        reps.append(Replica(url=url + "/v1", pool=pool, circuit=CircuitBreaker(3, 5.0),
                            slots=slots))  # fmt: skip
    tier = TierRuntime(name="tier_high", served_model="m", replicas=reps,
                       max_in_flight=max_in_flight, affinity=False)  # fmt: skip
    now = [100.0]
    line = Line(tier, clock=lambda: now[0], **kw)
    line.now = now  # type: ignore[attr-defined]
    return line


def take(line: Line, who: Person, klass: Klass = "interactive") -> Lease | None:
    return line.take(who, klass, line.tier.order(None))


def test_capacity_is_the_engines_slots_capped_by_the_setting() -> None:
    line = make_line(slots=4, max_in_flight=2)
    assert line.capacity(line.tier.replica) == 2
    line.tier.max_in_flight = 0
    assert line.capacity(line.tier.replica) == 4
    line.tier.replica.slots = 0
    line.tier.max_in_flight = 3
    assert line.capacity(line.tier.replica) == 3
    line.tier.max_in_flight = 0
    assert line.capacity(line.tier.replica) == 0 and line.total_capacity() == 0


def test_never_more_than_the_slots_then_a_freed_slot_goes_to_a_waiter() -> None:
    async def scenario() -> None:
        line = make_line(slots=2)
        first, second = take(line, ALICE), take(line, ALICE)
        assert first is not None and second is not None
        assert take(line, BOB) is None  # both slots busy
        assert line.tier.replica.in_flight == 2
        waiter = line.enqueue(BOB, "interactive")
        assert not waiter.future.done()
        line.now[0] += 3.0  # type: ignore[attr-defined]
        assert first.release() == 3.0
        lease = await waiter.future
        assert (lease.person, lease.waited_s) == (BOB, 3.0)
        assert line.tier.replica.in_flight == 2 and not line.waiting
        assert first.release() == 0.0  # idempotent

    run(scenario())


def test_the_free_slot_goes_to_the_person_using_the_tier_least_not_to_the_first_in_line() -> None:
    async def scenario() -> list[str]:
        line = make_line(slots=2)
        leases = [take(line, ALICE), take(line, ALICE)]  # the flood holds both slots
        flood = [line.enqueue(ALICE, "interactive") for _ in range(3)]
        bob = line.enqueue(BOB, "interactive")
        carol = line.enqueue(CAROL, "interactive")
        order = []
        for lease in leases:
            assert lease is not None
            lease.release()
        for waiter in (bob, carol):
            order.append((await waiter.future).person.name)
            (await waiter.future).release()
        assert [w.future.done() for w in flood] == [True, True, False]  # then the flood's turn
        return order

    assert run(scenario()) == ["bob", "carol"]


def test_recent_use_breaks_ties_and_decays() -> None:
    async def scenario() -> str:
        line = make_line(slots=1, half_life_s=10.0)
        lease = take(line, BOB)
        assert lease is not None
        line.now[0] += 20.0  # type: ignore[attr-defined]
        lease.release()  # bob used 20 slot-seconds just now
        lease = take(line, CAROL)
        assert lease is not None
        bob, alice = line.enqueue(BOB, "interactive"), line.enqueue(ALICE, "interactive")
        lease.release()
        winner = await asyncio.wait_for(asyncio.shield(alice.future), 1)
        assert not bob.future.done()
        winner.release()
        return (await bob.future).person.name

    assert run(scenario()) == "bob"
    line = make_line(half_life_s=10.0)
    share = line.share(ALICE)
    share.recent, share.stamp = 8.0, 100.0
    assert share.recent_at(120.0, 10.0) == pytest.approx(2.0)


def test_classes_come_first_interactive_then_batch_then_background() -> None:
    async def scenario() -> list[str]:
        line = make_line(slots=1)
        lease = take(line, ALICE)
        assert lease is not None
        background = line.enqueue(BOB, "background")
        batch = line.enqueue(CAROL, "batch")
        interactive = line.enqueue(ALICE, "interactive")  # alice even holds a slot already
        got = []
        for _ in range(3):
            lease.release()
            done = next(w for w in (background, batch, interactive) if w.future.done()
                        and w.klass not in got)  # fmt: skip
            got.append(done.klass)
            lease = done.future.result()
        return got

    assert run(scenario()) == ["interactive", "batch", "background"]


def test_the_per_person_cap_refuses_that_person_only() -> None:
    async def scenario() -> None:
        line = make_line(slots=1, person_cap=2)
        assert take(line, ALICE) is not None
        line.enqueue(ALICE, "interactive")
        with pytest.raises(Rejected) as refused:
            line.enqueue(ALICE, "interactive")
        assert refused.value.code == "rate_limit_exceeded"
        assert refused.value.retry_after_s >= 1
        with pytest.raises(Rejected):
            take(line, ALICE)
        line.enqueue(BOB, "interactive")  # bob is not alice

    run(scenario())


def test_leaving_the_line_frees_the_place_and_a_slot_handed_meanwhile() -> None:
    async def scenario() -> None:
        line = make_line(slots=1, person_cap=1)
        lease = take(line, ALICE)
        assert lease is not None
        waiter = line.enqueue(BOB, "interactive")
        line.leave(waiter)
        assert not line.waiting and line.share(BOB).waiting == 0
        waiter = line.enqueue(BOB, "interactive")  # bob's cap is free again
        lease.release()
        assert waiter.future.done()  # handed the slot ...
        line.leave(waiter)  # ... as it gave up: the slot goes back
        assert line.tier.replica.in_flight == 0 and line.share(BOB).running == 0

    run(scenario())


def test_a_slot_goes_only_to_a_replica_that_is_up() -> None:
    async def scenario() -> None:
        line = make_line(slots=1, replicas=2)
        a, b = line.tier.replicas
        a.circuit.trip()
        lease = take(line, ALICE)
        assert lease is not None and lease.replica is b
        assert take(line, BOB) is None
        assert line.any_up() and not line.any_up([b])
        forced = line.take(BOB, "interactive", line.tier.order(None), [b], force=True)
        assert forced is not None and forced.replica is a

    run(scenario())


def test_expected_wait_counts_the_requests_ahead_over_the_slots() -> None:
    async def scenario() -> None:
        line = make_line(slots=2)
        assert line.expected_wait(BOB, "interactive") == 0.0  # free slots
        leases = [take(line, ALICE), take(line, ALICE)]
        assert line.expected_wait(BOB, "interactive") == 0.0  # no holding time known yet
        line.hold_s = 4.0
        for _ in range(3):
            line.enqueue(ALICE, "interactive")
        # Bob would go before alice's three (she runs two): he waits for one slot of two.
        assert line.expected_wait(BOB, "interactive") == pytest.approx(2.0)
        # Alice's next would be fourth: (3 + 1) * 4 s / 2 slots.
        assert line.expected_wait(ALICE, "interactive") == pytest.approx(8.0)
        assert line.retry_after_s(1) == 8.0
        assert leases

    run(scenario())


def test_a_half_open_replica_with_its_probe_out_does_not_stop_the_others() -> None:
    async def scenario() -> None:
        line = make_line(slots=1, replicas=2)
        a, b = line.tier.replicas
        first = line.take(ALICE, "interactive", [a])
        second = line.take(BOB, "interactive", [b])
        assert first is not None and second is not None
        waiter = line.enqueue(CAROL, "interactive")
        a.circuit.trip()  # a fails; its cooldown passes: half-open, and its one probe goes out
        a.circuit._opened_at -= a.circuit.cooldown_s  # type: ignore[attr-defined]
        assert a.circuit.allow()
        first.release()  # a has room, but its probe is out
        assert not waiter.future.done()
        second.release()  # b has room: carol gets it
        assert (await waiter.future).replica is b

    run(scenario())
