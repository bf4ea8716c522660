"""The user's own signal: the same messages again from the same person, soon after their answer.

A chat UI's "regenerate" sends the conversation as it was when the answer it replaces was asked
for: the same messages. So does a person who asks the very same thing again. Either way the
first answer did not satisfy; the decision engine's ``regenerate`` rule sends such a request to
tier_high (:func:`~adaptive_router.rules.regenerate_rule`). This module only remembers: per
person and conversation (a hash of the person's id and the whole ``messages`` list: another
person's identical question is another key), when its last answer ended. The proxy remembers
streamed chats only, and asks only for streamed ones: chat UIs stream what a person reads, while
the same prompt sent again without streaming is a script's or an evaluation's next sample.

A repeat counts when it comes at least ``min_gap_s`` after the answer it repeats ended (a person
reads an answer before asking again; a script that sends the same prompt in a loop, or several
copies at once, does not wait) and at most ``window_s`` after, and only for the first
``max_repeats`` repeats of one conversation in the window (a person regenerates once or twice; a
script that sends one prompt over and over, slowly, does not take the 26B each time). Memory is
bounded: the ``capacity`` most recent answers, oldest forgotten first (a 16-byte key, a float and
a count each).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .identity import Person

MIN_GAP_S = 1.0
"""Least time between an answer's end and its repeat for the repeat to count."""
MAX_REPEATS = 3
"""Repeats of one conversation that count as regenerates within the window."""
CAPACITY = 8192


class RecentAnswers:
    def __init__(
        self,
        window_s: float,
        *,
        min_gap_s: float = MIN_GAP_S,
        max_repeats: int = MAX_REPEATS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.min_gap_s = min_gap_s
        self.max_repeats = max_repeats
        self.capacity = capacity
        self.clock = clock
        self._ended: OrderedDict[bytes, list[float]] = OrderedDict()
        """Key -> [when its last answer ended, repeats counted so far]."""

    @property
    def enabled(self) -> bool:
        return self.window_s > 0

    @staticmethod
    def key(person: Person, messages: list[Any]) -> bytes:
        text = json.dumps(messages, ensure_ascii=False, separators=(",", ":"), default=str)
        digest = hashlib.blake2b(person.id.encode(), digest_size=16)
        digest.update(b"\x1e" + text.encode())
        return digest.digest()

    def repeated(self, key: bytes) -> bool:
        """Is this a repeat that counts: its last answer ended between ``min_gap_s`` and
        ``window_s`` ago, and fewer than ``max_repeats`` repeats came before it? Counts it."""
        entry = self._ended.get(key)
        if entry is None:
            return False
        age = self.clock() - entry[0]
        if not self.min_gap_s <= age <= self.window_s or entry[1] >= self.max_repeats:
            return False
        entry[1] += 1
        return True

    def answered(self, key: bytes) -> None:
        """The answer to this conversation ended now."""
        ended = self._ended
        now = self.clock()
        entry = ended.get(key)
        if entry is None or now - entry[0] > self.window_s:
            ended[key] = [now, 0.0]
        else:
            entry[0] = now
        ended.move_to_end(key)
        if len(ended) > self.capacity:
            ended.popitem(last=False)
