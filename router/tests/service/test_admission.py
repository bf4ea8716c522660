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


def test_expected_wait_is_when_a_slot_comes_free_for_this_request() -> None:
    async def scenario() -> None:
        line = make_line(slots=2)
        assert line.expected_wait(BOB, "interactive") == 0.0  # free slots
        first = [take(line, ALICE), take(line, ALICE)]
        assert line.expected_wait(BOB, "interactive") == 0.0  # no holding time known yet
        line.now[0] += 4.0  # type: ignore[attr-defined]
        assert [lease.release() for lease in first if lease] == [4.0, 4.0]
        assert list(line.holds) == [4.0, 4.0]
        leases = [take(line, ALICE), take(line, ALICE)]
        line.now[0] += 1.0  # type: ignore[attr-defined]
        # Both of alice's have run 1 s of a typical 4: bob's turn comes in 3 s.
        assert line.expected_wait(BOB, "interactive") == pytest.approx(3.0)
        for _ in range(3):
            line.enqueue(ALICE, "interactive")
        # Bob would still go before alice's three (she runs two).
        assert line.expected_wait(BOB, "interactive") == pytest.approx(3.0)
        # Alice's next would be fourth: her three take the two slots at 3 s and one again at
        # 7 s; the other slot comes free at 7 s too.
        assert line.expected_wait(ALICE, "interactive") == pytest.approx(7.0)
        # Three waiting, one more, over two slots, at the typical 4 s.
        assert line.retry_after_s(1) == 8.0
        assert all(leases)

    run(scenario())


def test_a_couple_of_long_answers_do_not_make_a_fair_wait_look_hopeless() -> None:
    """Answers of a second, then the script's two long ones (the latest): its next two have just
    taken the slots, and bob and then carol ask. Each waits for one of those to end, not for
    a long answer (an average that weighs the latest most said 2 s and sent them to the E4B)."""

    async def scenario() -> None:
        line = make_line(slots=2)
        line.holds.extend([1.0] * 6 + [3.0, 3.0])
        running = [take(line, ALICE), take(line, ALICE)]
        line.now[0] += 0.4  # type: ignore[attr-defined]
        assert line.expected_wait(BOB, "interactive") == pytest.approx(0.6)
        line.enqueue(BOB, "interactive")
        assert line.expected_wait(CAROL, "interactive") == pytest.approx(0.6)  # the other slot
        # Past the short answers' time, the two are expected to be long ones...
        line.now[0] += 1.1  # type: ignore[attr-defined]
        assert line.expected_wait(CAROL, "interactive") == pytest.approx(1.5)
        # ...and past every recent hold they may end any moment.
        line.now[0] += 2.0  # type: ignore[attr-defined]
        assert line.expected_wait(CAROL, "interactive") == 0.0
        assert all(running)

    run(scenario())


def test_a_flood_of_long_answers_is_a_wait_longer_than_any_bound() -> None:
    async def scenario() -> None:
        line = make_line(slots=2)
        line.holds.extend([30.0] * 8)
        running = [take(line, ALICE), take(line, ALICE)]
        line.now[0] += 1.0  # type: ignore[attr-defined]
        assert line.expected_wait(BOB, "interactive") == pytest.approx(29.0)
        assert all(running)

    run(scenario())


def test_with_more_running_than_slots_a_slot_comes_free_when_enough_have_ended() -> None:
    async def scenario() -> None:
        line = make_line(slots=4)
        line.holds.extend([1.0, 2.0, 3.0, 4.0, 5.0])
        running = [take(line, ALICE) for _ in range(4)]
        for lease, ran in zip(running, (0.5, 1.5, 2.5, 3.5), strict=True):
            assert lease is not None
            lease.started -= ran  # each has run that long
        line.tier.max_in_flight = 2  # the setting lowered: three must end before one can start
        # Left (the lower median of the longer holds, less the time run): 3 - 0.5, 3 - 1.5,
        # 4 - 2.5, 4 - 3.5, so they end at 0.5, 1.5, 1.5 and 2.5 s: the third at 1.5 s.
        assert line.expected_wait(BOB, "interactive") == pytest.approx(1.5)

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
