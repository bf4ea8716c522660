"""The GPU monitor: real thread, faked NVML, and the machine-without-a-GPU path."""

from __future__ import annotations

import logging
import threading

import pytest

from adaptive_router import AdaptiveRouter, GpuMonitor, PynvmlSource, RoutingConfig
from adaptive_router.testing import FakeNvml


def test_snapshot_reflects_the_reading(fake_nvml: FakeNvml) -> None:
    monitor = GpuMonitor(fake_nvml)
    snap = monitor.poll_once()
    assert snap.available
    assert snap.free_bytes == fake_nvml.reading.free_bytes
    assert snap.total_bytes == 16_000_000_000
    assert snap.free_gb == pytest.approx(8.0)
    assert snap.name == "NVIDIA GeForce RTX 5060 Ti"
    assert snap.timestamp > 0
    assert monitor.snapshot is snap


def test_nvml_error_marks_unavailable_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    source = FakeNvml(error=RuntimeError("NVML Shared Library Not Found"))
    monitor = GpuMonitor(source, reopen_after_s=0.0)
    with caplog.at_level(logging.WARNING, logger="adaptive_router.gpu"):
        for _ in range(5):
            snap = monitor.poll_once()
    assert not snap.available
    assert snap.free_bytes is None
    assert "Library Not Found" in (snap.error or "")
    assert len([r for r in caplog.records if "unavailable" in r.message]) == 1


def test_recovers_when_nvml_comes_back(fake_nvml: FakeNvml) -> None:
    monitor = GpuMonitor(fake_nvml, reopen_after_s=0.0)
    fake_nvml.error = RuntimeError("GPU is lost")
    assert not monitor.poll_once().available
    fake_nvml.error = None
    assert monitor.poll_once().available


def test_hot_polls_count_consecutive_readings_only(fake_nvml: FakeNvml) -> None:
    monitor = GpuMonitor(fake_nvml, util_max_pct=90.0)
    hot = fake_nvml.reading.__class__(1, 1, 2, 95.0, "x")
    cool = fake_nvml.reading.__class__(1, 1, 2, 10.0, "x")
    fake_nvml.reading = hot
    monitor.poll_once()
    assert monitor.poll_once().hot_polls == 2
    fake_nvml.reading = cool
    assert monitor.poll_once().hot_polls == 0


def test_thread_polls_and_shuts_down_cleanly(fake_nvml: FakeNvml) -> None:
    monitor = GpuMonitor(fake_nvml, interval_s=0.01).start()
    assert monitor.running
    fake_nvml.read_event.clear()
    assert fake_nvml.read_event.wait(5.0)  # the thread itself read again
    monitor.shutdown()
    assert not monitor.running
    assert fake_nvml.closed == 1
    assert not [t for t in threading.enumerate() if t.name == "gpu-monitor"]
    monitor.shutdown()  # idempotent


def test_router_starts_the_gpu_thread_only_when_asked_and_stops_it(fake_nvml: FakeNvml) -> None:
    router = AdaptiveRouter(RoutingConfig(vram_poll_interval_ms=50), gpu_source=fake_nvml)
    assert router.gpu_monitor is not None and not router.gpu_monitor.running
    assert not router.gpu.available and fake_nvml.reads == 0  # building it started nothing
    router.start()
    assert router.gpu_monitor.running
    assert router.gpu.available
    router.shutdown()
    assert not router.gpu_monitor.running


def test_real_pynvml_on_a_machine_without_gpu_never_raises() -> None:
    """On CI there is no NVIDIA driver: the real source must degrade to 'unavailable'."""
    monitor = GpuMonitor(PynvmlSource(), interval_s=0.05)
    snap = monitor.start().snapshot
    try:
        if snap.available:  # a developer machine with a GPU: the reading must be sane
            assert snap.total_bytes and snap.free_bytes is not None
            assert 0 <= snap.free_bytes <= snap.total_bytes
        else:
            assert snap.error
    finally:
        monitor.shutdown()


def test_router_without_gpu_keeps_routing(router: AdaptiveRouter) -> None:
    assert not router.gpu.available
    assert router.route("What time is it in Tokyo?") == "tier_low"
    assert router.decide("What time is it in Tokyo?").gpu.error
