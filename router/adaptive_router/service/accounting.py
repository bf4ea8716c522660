"""Who used what: per person and tier, slots held, waits, 429s, in Prometheus.

The label set is bounded: a person's label is their name (:class:`~.identity.Names`) for the
first ``limit`` people seen since the router started, then ``other``. Each series child is looked
up once and kept, so a request costs a few dictionary lookups and counter adds.
"""

from __future__ import annotations

from typing import Any

from .admission import Lease
from .identity import Names, Person
from .metrics import RouterMetrics


class Accounting:
    def __init__(self, metrics: RouterMetrics, people: int) -> None:
        self.metrics = metrics
        self.names = Names(people)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*labels)
        return found

    def granted(self, lease: Lease) -> None:
        """A request got a slot (after ``lease.waited_s`` in line)."""
        tier = lease.line.tier.name
        person = self.names.label(lease.person)
        m = self.metrics
        self._child(m.person_requests, person, tier, lease.klass).inc()
        if lease.waited_s > 0:
            self._child(m.person_waits, person, tier).inc()
            self._child(m.person_wait_seconds, person, tier).inc(lease.waited_s)
            self._child(m.queue_wait_seconds, tier).observe(lease.waited_s)
            self.outcome(tier, "waited")

    def held(self, lease: Lease, seconds: float) -> None:
        """A slot was given back after ``seconds``."""
        person = self.names.label(lease.person)
        self._child(self.metrics.person_slot_seconds, person, lease.line.tier.name).inc(seconds)

    def rejected(self, person: Person, tier: str, code: str) -> None:
        self._child(self.metrics.person_rejections, self.names.label(person), tier, code).inc()

    def outcome(self, tier: str, outcome: str) -> None:
        self._child(self.metrics.queue_outcomes, tier, outcome).inc()
