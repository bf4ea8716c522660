"""The router service under real uvicorn, in front of fake engines on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.service import ServiceConfig, create_app
from adaptive_router.service.probes import parse_samples
from adaptive_router.service.tiers import Replica, TierRuntime
from adaptive_router.testing.fake_engine import FakeEngine

from ..servers import serve

HARD = "Prove that there are infinitely many primes, step by step."
EASY = "What time is it in Tokyo?"


def chat(content: str = EASY, model: str = "gemma4-fast", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture(scope="session")
def engines() -> Iterator[dict[str, Any]]:
    low = FakeEngine("gemma-4-e4b", "vllm")
    high = FakeEngine("gemma-4-26b-a4b", "llamacpp")
    with serve(low) as low_url, serve(high) as high_url:
        yield {"low": low, "high": high, "low_url": low_url + "/v1", "high_url": high_url + "/v1"}


@pytest.fixture
def fresh(engines: dict[str, Any]) -> dict[str, Any]:
    engines["low"].reset()
    engines["high"].reset()
    return engines


class RouterHandle:
    """A running router: its URL, a client, its tiers and its /metrics."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def tier(self, name: str) -> TierRuntime:
        tier: TierRuntime = self.app.state.tiers[name]
        return tier

    def replica(self, name: str) -> Replica:
        return self.tier(name).replica

    def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the series of ``name`` whose labels include ``labels`` (None: no series)."""
        want = set(labels.items())
        values = [
            value
            for (series, have), value in parse_samples(self.client.get("/metrics").text).items()
            if series == name and want <= have
        ]
        return sum(values) if values else None


@pytest.fixture
def make_router(fresh: dict[str, Any]) -> Iterator[Callable[..., RouterHandle]]:
    with ExitStack() as stack:

        def make(routing: RoutingConfig | None = None, **service: Any) -> RouterHandle:
            service.setdefault("tier_low_url", fresh["low_url"])
            service.setdefault("tier_high_url", fresh["high_url"])
            app = create_app(
                ServiceConfig(**service),
                router=AdaptiveRouter(routing or RoutingConfig(gpu_monitor=False)),
                probes=False,
            )
            url = stack.enter_context(serve(app))
            handle = RouterHandle(url, app)
            stack.callback(handle.client.close)
            return handle

        yield make


@pytest.fixture
def router(make_router: Callable[..., RouterHandle]) -> RouterHandle:
    return make_router()
