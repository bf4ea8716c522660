"""Per-tier exponential moving average of observed latency, for the SLA rule."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class LatencyEMA:
    """``ema = alpha * sample + (1 - alpha) * ema`` per tier, seeded with ``seed_ms``.

    Thread-safe: the service observes from its event loop while the decision engine may be used
    from other threads. Reads are lock-free (a float attribute load is atomic in CPython).
    """

    def __init__(self, tiers: Iterable[str], seed_ms: float, alpha: float = 0.2) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.seed_ms = seed_ms
        self._values = {tier: float(seed_ms) for tier in tiers}
        self._counts = dict.fromkeys(self._values, 0)
        self._lock = threading.Lock()

    def observe(self, tier: str, latency_ms: float) -> float:
        """Fold one observation in; returns the new average. Unknown tiers are a KeyError."""
        if latency_ms < 0 or latency_ms != latency_ms:  # negative or NaN
            raise ValueError(f"latency must be a non-negative number, got {latency_ms!r}")
        with self._lock:
            value = self.alpha * latency_ms + (1.0 - self.alpha) * self._values[tier]
            self._values[tier] = value
            self._counts[tier] += 1
            return value

    def value(self, tier: str) -> float:
        return self._values[tier]

    def count(self, tier: str) -> int:
        return self._counts[tier]

    def snapshot(self) -> dict[str, float]:
        return dict(self._values)

    def reset(self) -> None:
        with self._lock:
            for tier in self._values:
                self._values[tier] = float(self.seed_ms)
                self._counts[tier] = 0
