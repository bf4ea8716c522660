"""Shared fixtures for the adaptive_router tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.testing import FakeNvml


@pytest.fixture
def fake_nvml() -> FakeNvml:
    return FakeNvml()


@pytest.fixture
def router() -> Iterator[AdaptiveRouter]:
    """A router with default settings and the GPU monitor off."""
    r = AdaptiveRouter(RoutingConfig(gpu_monitor=False))
    yield r
    r.shutdown()
