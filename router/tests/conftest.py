"""Shared fixtures for the adaptive_router tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from adaptive_router import AdaptiveRouter, GpuReading, RoutingConfig


class FakeNvml:
    """An NVML source the test controls: set ``reading`` or ``error``; counts calls."""

    def __init__(self, reading: GpuReading | None = None, error: Exception | None = None) -> None:
        self.reading = reading or GpuReading(
            free_bytes=8_000_000_000,
            used_bytes=8_000_000_000,
            total_bytes=16_000_000_000,
            utilization_pct=35.0,
            name="NVIDIA GeForce RTX 5060 Ti",
        )
        self.error = error
        self.opened = 0
        self.closed = 0
        self.reads = 0
        self.read_event = threading.Event()

    def open(self, device_index: int) -> None:
        if self.error is not None:
            raise self.error
        self.opened += 1

    def read(self) -> GpuReading:
        self.reads += 1
        self.read_event.set()
        if self.error is not None:
            raise self.error
        return self.reading

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def fake_nvml() -> FakeNvml:
    return FakeNvml()


@pytest.fixture
def router() -> Iterator[AdaptiveRouter]:
    """A router with default settings and the GPU monitor off."""
    r = AdaptiveRouter(RoutingConfig(gpu_monitor=False))
    yield r
    r.shutdown()
