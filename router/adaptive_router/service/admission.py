"""Admission: each replica's slots, and a fair line of the requests waiting for one, per tier.

An engine serves a few requests at once (llama-server's ``--parallel`` slots; vLLM's
``--max-num-seqs``) and queues the rest in arrival order, so one person's script that sends a
dozen requests holds every slot and everyone else waits behind it. The router therefore sends a
replica no more than its slots (:meth:`Line.capacity`: what the engine reports, llama-server's
``GET /props`` ``total_slots``, capped by the tier's ``max_in_flight`` setting), and the rest wait
here, where the order is ours:

- a free slot goes to the waiting request of the best *class* (interactive chat, then batch work,
  then a chat UI's background tasks), and within a class to the person who uses the tier least
  right now: fewest requests running on it, then fewest recent slot-seconds (decayed with a
  half-life), then first come;
- a person may have at most ``person_cap`` requests waiting and running on a tier: beyond it
  their new requests are refused with a 429 (:class:`Rejected`), nobody else's are;
- a waiter leaves the line when its deadline passes (the caller then answers elsewhere or with a
  429) or its client goes away (the caller cancels it): nothing keeps a place it cannot use.

Everything here runs on the event loop, without locks: a slot is handed over synchronously when
another is released (:meth:`Line.dispatch`), so a free slot and a waiter that could take it never
coexist.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Literal

from .identity import Person
from .tiers import Replica, TierRuntime

Klass = Literal["interactive", "batch", "background"]
CLASSES: tuple[Klass, ...] = ("interactive", "batch", "background")
RANK: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
"""Class order in the line, and the ``priority`` a vLLM with priority scheduling gets."""

Rank = tuple[int, int, float, int]
"""A waiter's place: class, the person's requests running, their recent use, arrival."""

HOLDS_KEPT = 32
"""Recent slot-holding times kept per tier; the wait estimate reads their distribution."""
SHARES_KEPT = 4096
"""People whose recent use is remembered per tier before idle ones are forgotten."""


class Rejected(Exception):
    """A request that must be answered with a 429 (OpenAI format, ``Retry-After``)."""

    def __init__(
        self, code: str, message: str, retry_after_s: float, limit: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s
        self.limit = limit
        """The person's cap, for a 429 that it caused."""


@dataclass(slots=True)
class Share:
    """One person's use of one tier."""

    running: int = 0
    waiting: int = 0
    recent: float = 0.0
    """Slot-seconds of finished requests, halved every ``half_life_s``, as of ``stamp``."""
    stamp: float = 0.0

    def recent_at(self, now: float, half_life_s: float) -> float:
        if not self.recent:
            return 0.0
        return float(self.recent * 0.5 ** ((now - self.stamp) / half_life_s))


@dataclass(eq=False, slots=True)
class Lease:
    """A slot on one replica, held by one request until :meth:`release`."""

    line: Line
    replica: Replica
    person: Person
    klass: Klass
    started: float
    waited_s: float
    released: bool = False

    def release(self) -> float:
        """Give the slot back (idempotent); returns the seconds it was held."""
        if self.released:
            return 0.0
        self.released = True
        return self.line._release(self)


@dataclass(eq=False, slots=True)
class Waiter:
    person: Person
    share: Share
    klass: Klass
    seq: int
    arrived: float
    exclude: Collection[Replica]
    future: asyncio.Future[Lease]


@dataclass(eq=False)
class Line:
    """The slots of one tier's replicas and the requests waiting for them."""

    tier: TierRuntime
    person_cap: int = 0
    """Requests one person may have waiting and running here (0: no cap)."""
    half_life_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    on_release: Callable[[Lease, float], None] | None = None
    """Called with each lease and the seconds it was held (the accounting)."""
    waiting: list[Waiter] = field(default_factory=list)
    shares: dict[str, Share] = field(default_factory=dict)
    holds: deque[float] = field(default_factory=lambda: deque(maxlen=HOLDS_KEPT))
    """How long the latest requests held their slot, oldest first."""
    running: set[Lease] = field(default_factory=set)
    """The leases held now."""
    _seq: int = 0

    # -- slots ---------------------------------------------------------------------------------

    def capacity(self, replica: Replica) -> int:
        """Requests this replica takes at once (0: no limit): the engine's own slots when it
        reports them, capped by the tier's ``max_in_flight``."""
        limit = self.tier.max_in_flight
        slots = replica.slots
        if slots and limit:
            return min(slots, limit)
        return slots or limit

    def has_room(self, replica: Replica) -> bool:
        cap = self.capacity(replica)
        return not cap or replica.in_flight < cap

    def total_capacity(self) -> int:
        """Slots of the replicas that take work (0 when any is unlimited)."""
        total = 0
        for replica in self.tier.replicas:
            if replica.up:
                cap = self.capacity(replica)
                if not cap:
                    return 0
                total += cap
        return total

    def any_up(self, exclude: Collection[Replica] = ()) -> bool:
        return any(r.up and r not in exclude for r in self.tier.replicas)

    # -- the person's share ---------------------------------------------------------------------

    def share(self, person: Person) -> Share:
        share = self.shares.get(person.id)
        if share is None:
            if len(self.shares) >= SHARES_KEPT:
                self._forget_idle()
            share = self.shares[person.id] = Share()
        return share

    def _forget_idle(self) -> None:
        now = self.clock()
        for pid in [p for p, s in self.shares.items()
                    if not s.running and not s.waiting
                    and s.recent_at(now, self.half_life_s) < 0.01]:  # fmt: skip
            del self.shares[pid]

    def check_cap(self, person: Person) -> Share:
        """The person's share; :class:`Rejected` when they are at their cap."""
        share = self.share(person)
        if self.person_cap and share.running + share.waiting >= self.person_cap:
            raise Rejected(
                "rate_limit_exceeded",
                f"You have {share.running + share.waiting} requests waiting or running on "
                f"{self.tier.name}, the most one person may have (service.max_requests_per_person"
                f" = {self.person_cap}); wait for one to finish.",
                self.retry_after_s(1),
                limit=self.person_cap,
            )
        return share

    # -- taking a slot --------------------------------------------------------------------------

    def take(
        self,
        person: Person,
        klass: Klass,
        order: list[Replica],
        exclude: Collection[Replica] = (),
        *,
        force: bool = False,
    ) -> Lease | None:
        """A slot now on the first replica of ``order`` that has one, or None (then wait with
        :meth:`enqueue`). ``force``: the last resort when no replica is up: the first one not
        excluded, whatever its circuit and load (it may be back)."""
        share = self.check_cap(person)
        for replica in order:
            if replica in exclude:
                continue
            if force or (replica.up and self.has_room(replica) and replica.circuit.allow()):
                return self._grant(person, share, klass, replica, 0.0)
        return None

    def enqueue(self, person: Person, klass: Klass, exclude: Collection[Replica] = ()) -> Waiter:
        """Join the line; the waiter's future gets a :class:`Lease` when a slot is its turn."""
        share = self.check_cap(person)
        self._seq += 1
        waiter = Waiter(person, share, klass, self._seq, self.clock(), exclude,
                        asyncio.get_running_loop().create_future())  # fmt: skip
        share.waiting += 1
        self.waiting.append(waiter)
        self.dispatch()  # a slot may be free that only this waiter can use
        return waiter

    def leave(self, waiter: Waiter) -> None:
        """The waiter gives up (deadline, client gone). A slot it was handed meanwhile goes
        back at once."""
        future = waiter.future
        if future.done():
            if not future.cancelled():
                future.result().release()
            return
        future.cancel()
        if waiter in self.waiting:
            self.waiting.remove(waiter)
            waiter.share.waiting -= 1

    def expected_wait(self, person: Person, klass: Klass) -> float:
        """Seconds a new request of ``person`` would wait now for a slot.

        The slots come free as the requests running now end, and each request ahead in the line
        (:meth:`_rank`) then takes one for a typical hold. A running request is expected to end
        at the median of the recent holds that lasted longer than it has run so far; one that
        has outlasted them all may end any moment. Medians (of two middles, the lower), not an
        average, so that a couple of long answers do not make a fair wait look hopeless: the
        estimate leans short on purpose, since one too short costs at most the caller's bound in
        waiting and one too long sends a hard prompt to the small model at once."""
        if not self.holds:
            return 0.0
        capacity = self.total_capacity()
        if not capacity or any(self.has_room(r) for r in self.tier.replicas if r.up):
            return 0.0
        now = self.clock()
        mine = self._rank_key(klass, self.share(person), now, self._seq + 1)
        ahead = sum(1 for w in self.waiting if self._rank(w, now) < mine)
        holds = sorted(self.holds)
        typical = holds[(len(holds) - 1) // 2]
        ends = sorted(_left_of(holds, now - lease.started)
                      for lease in self.running if lease.replica.up)  # fmt: skip
        # A slot comes free as each of the last ``capacity`` running requests ends (with more
        # running than slots, the first ones to end only bring the count down to the slots).
        free_at = ([0.0] * capacity + ends)[-capacity:]
        heapq.heapify(free_at)
        for _ in range(ahead):
            heapq.heapreplace(free_at, free_at[0] + typical)
        return free_at[0]

    def typical_hold(self) -> float | None:
        """The median of the recent slot-holding times, the lower of two middles (None before the
        first)."""
        if not self.holds:
            return None
        return sorted(self.holds)[(len(self.holds) - 1) // 2]

    def retry_after_s(self, extra: int = 0) -> float:
        """When trying again has a fair chance: the current line, ``extra`` more, over the
        slots, at the typical holding time; at least one second."""
        hold = self.typical_hold() or 1.0
        capacity = self.total_capacity() or 1
        return max(1.0, math.ceil(hold * (len(self.waiting) + extra) / capacity))

    def _rank_key(self, klass: Klass, share: Share, now: float, seq: int) -> Rank:
        return RANK[klass], share.running, share.recent_at(now, self.half_life_s), seq

    def _rank(self, waiter: Waiter, now: float) -> Rank:
        return self._rank_key(waiter.klass, waiter.share, now, waiter.seq)

    def dispatch(self) -> None:
        """Hand free slots to the best waiters, one by one, until either runs out."""
        blocked: list[Replica] = []  # half-open, their one probe already out
        while self.waiting:
            free = [r for r in self.tier.replicas
                    if r.up and self.has_room(r) and r not in blocked]  # fmt: skip
            if not free:
                return
            now = self.clock()
            best: tuple[Rank, Waiter, Replica] | None = None
            for waiter in self.waiting:
                replica = next((r for r in free if r not in waiter.exclude), None)
                if replica is None:
                    continue
                rank = self._rank(waiter, now)
                if best is None or rank < best[0]:
                    best = (rank, waiter, replica)
            if best is None:
                return
            _, waiter, replica = best
            if not replica.circuit.allow():
                blocked.append(replica)
                continue
            self.waiting.remove(waiter)
            waiter.share.waiting -= 1
            lease = self._grant(waiter.person, waiter.share, waiter.klass, replica,
                                now - waiter.arrived)  # fmt: skip
            waiter.future.set_result(lease)

    def _grant(
        self, person: Person, share: Share, klass: Klass, replica: Replica, waited_s: float
    ) -> Lease:
        share.running += 1
        replica.in_flight += 1
        lease = Lease(self, replica, person, klass, self.clock(), waited_s)
        self.running.add(lease)
        return lease

    def _release(self, lease: Lease) -> float:
        now = self.clock()
        held = now - lease.started
        lease.replica.in_flight -= 1
        self.running.discard(lease)
        share = self.shares.get(lease.person.id)
        if share is not None:
            share.running -= 1
            share.recent = share.recent_at(now, self.half_life_s) + held
            share.stamp = now
        self.holds.append(held)
        if self.on_release is not None:
            self.on_release(lease, held)
        self.dispatch()
        return held

    def waiting_by_class(self) -> Iterator[tuple[Klass, int]]:
        for klass in CLASSES:
            yield klass, sum(1 for w in self.waiting if w.klass == klass)


def _left_of(holds: list[float], elapsed: float) -> float:
    """Seconds a request that has held its slot ``elapsed`` seconds is expected to go on: the
    median of the (sorted) recent holds longer than that, less ``elapsed``; 0 when it has
    outlasted them all."""
    longer = len(holds) - bisect_right(holds, elapsed)
    if not longer:
        return 0.0
    return holds[len(holds) - longer + (longer - 1) // 2] - elapsed
