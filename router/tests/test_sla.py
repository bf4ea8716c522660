"""Latency moving average per tier."""

from __future__ import annotations

import threading

import pytest

from adaptive_router import LatencyEMA


def test_seed_and_update() -> None:
    ema = LatencyEMA(["tier_low", "tier_high"], seed_ms=800.0, alpha=0.5)
    assert ema.value("tier_high") == 800.0
    assert ema.observe("tier_high", 400.0) == 600.0
    assert ema.value("tier_low") == 800.0
    assert ema.count("tier_high") == 1
    ema.reset()
    assert ema.snapshot() == {"tier_low": 800.0, "tier_high": 800.0}


def test_rejects_nonsense() -> None:
    ema = LatencyEMA(["tier_low"], seed_ms=1.0)
    with pytest.raises(ValueError):
        ema.observe("tier_low", -1.0)
    with pytest.raises(ValueError):
        ema.observe("tier_low", float("nan"))
    with pytest.raises(KeyError):
        ema.observe("tier_mid", 1.0)
    with pytest.raises(ValueError):
        LatencyEMA(["a"], seed_ms=1.0, alpha=0.0)


def test_concurrent_observations_are_all_counted() -> None:
    ema = LatencyEMA(["tier_low"], seed_ms=100.0, alpha=0.1)

    def work() -> None:
        for _ in range(2000):
            ema.observe("tier_low", 100.0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ema.count("tier_low") == 8000
    assert ema.value("tier_low") == pytest.approx(100.0)
