"""Which replica of a tier answers: least outstanding work, or the conversation's own replica.

- **Least outstanding** (no affinity key, or affinity off): the replica with the least work on
  it: the engine's own count of requests running and queued (vLLM running + waiting,
  llama-server processing + deferred, from the last load poll: it includes other routers'
  requests), or this router's requests in flight to it when that is higher (exact and
  immediate); ties broken at random. With a handful of replicas a full scan costs nothing, and
  the local count moves the moment a request starts or ends, so power-of-two-choices, whose
  point is to avoid herding on stale load figures over many servers, buys nothing here.
- **Cache affinity**: turns of one conversation share a prefix (system prompt, first user
  message, earlier turns), which vLLM's prefix cache and llama-server's slot cache reuse only on
  the replica that saw it. The affinity key hashes that stable start, and a consistent-hash ring
  maps it to a replica; with bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent
  Hashing with Bounded Loads", 2018) a replica already carrying ``load_factor`` times the
  average or more is skipped for the next one on the ring, so conversations cannot pile up on
  one engine, and a conversation moves only when its replica is overloaded or down. The paper
  analyses factors from 1.25; with few replicas the split of conversations is uneven by chance
  and a move costs a whole prefill, so the default is 1.5. When a conversation did move, its
  prefix is on the replica that served it: the tier remembers where each recent conversation's
  last turn went (:class:`~.tiers.TierRuntime`) and sends the next turn there, within the same
  bound, rather than back to its place on the ring, where the cache is cold.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

VNODES = 64
"""Points per replica on the ring: enough for an even split among a few replicas."""
KEY_CHARS = 4096
"""Characters of the conversation's start that make the key (a long system prompt or RAG
context is identified by its beginning; hashing more costs time and adds nothing)."""


class Balanced(Protocol):
    """What the balancer reads of a replica."""

    label: str

    @property
    def up(self) -> bool: ...

    @property
    def outstanding(self) -> float: ...


def stable_hash(text: str) -> int:
    """64-bit hash, the same in every router process (Python's own ``hash`` is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _text(content: Any) -> str:
    """The text of a message's content; parts that are not text (or whose text is not a string:
    the engine judges those) add nothing."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            t for p in content if isinstance(p, dict) and isinstance(t := p.get("text"), str)
        )
    return ""


def affinity_key(messages: Sequence[dict[str, Any]] | None, prompt: str | None) -> int | None:
    """The conversation's key: its system prompt(s) and first user message, which every later
    turn repeats; for a completion, the start of its prompt. None when there is nothing to key."""
    if messages:
        parts: list[str] = []
        for message in messages:
            role = message.get("role")
            if role in ("system", "developer"):
                parts.append(_text(message.get("content")))
            elif role == "user":
                parts.append(_text(message.get("content")))
                break
        text = "\x1e".join(parts)
    else:
        text = prompt or ""
    return stable_hash(text[:KEY_CHARS]) if text else None


class HashRing:
    """``VNODES`` points per replica, sorted; built when the replica set changes."""

    def __init__(self, replicas: Sequence[Balanced]) -> None:
        points = sorted(
            (stable_hash(f"{replica.label}#{i}"), n)
            for n, replica in enumerate(replicas)
            for i in range(VNODES)
        )
        self._hashes = [h for h, _ in points]
        self._owners = [n for _, n in points]
        self.replicas = list(replicas)

    def walk(self, key: int) -> Iterator[Balanced]:
        """Every replica once, in ring order from ``key``."""
        if not self.replicas:
            return
        seen: set[int] = set()
        start = bisect.bisect_left(self._hashes, key)
        size = len(self._hashes)
        for i in range(size):
            owner = self._owners[(start + i) % size]
            if owner not in seen:
                seen.add(owner)
                yield self.replicas[owner]
                if len(seen) == len(self.replicas):
                    return


def least_outstanding(replicas: Sequence[Balanced]) -> list[Balanced]:
    """Up replicas by outstanding work, ties in random order; then the ones that are not up."""
    live = [r for r in replicas if r.up]
    live.sort(key=lambda r: (r.outstanding, random.random()))
    return live + [r for r in replicas if not r.up]


def by_affinity(
    ring: HashRing,
    key: int,
    load_factor: float,
    spare: float = 0.0,
    cached: str | None = None,
) -> list[Balanced]:
    """The conversation's replica first (bounded load), then the rest as they come on the ring;
    replicas that are not up last. Its replica is the one that served its last turn (``cached``,
    the label the tier remembers: its prefix is there), else its place on the ring. A replica
    under ``spare`` outstanding requests keeps its conversations whatever the average: at low
    load the bound is a handful of requests, and moving a conversation for that costs its cache
    and buys nothing."""
    live = [r for r in ring.replicas if r.up]
    if not live:
        return list(ring.replicas)
    total = sum(r.outstanding for r in live)
    capacity = max(math.ceil(load_factor * (total + 1) / len(live)), spare)
    fits: list[Balanced] = []
    over: list[Balanced] = []
    for replica in ring.walk(key):
        if replica.up:
            (fits if replica.outstanding < capacity else over).append(replica)
    if cached is not None:
        # A conversation moved once (its own replica was full) stays where its cache now is.
        held = next((i for i, r in enumerate(fits) if r.label == cached), None)
        if held:
            fits.insert(0, fits.pop(held))
    over.sort(key=lambda r: r.outstanding)
    return fits + over + [r for r in ring.replicas if not r.up]
