"""An NVML source for tests: readings the test sets, errors it injects, calls it can count."""

from __future__ import annotations

import threading

from ..gpu import GpuReading

RTX_5060_TI_16GB = GpuReading(
    free_bytes=8_000_000_000,
    used_bytes=8_000_000_000,
    total_bytes=16_000_000_000,
    utilization_pct=35.0,
    name="NVIDIA GeForce RTX 5060 Ti",
)


class FakeNvml:
    """Implements :class:`~adaptive_router.gpu.NvmlSource`. Set ``reading`` or ``error``."""

    def __init__(self, reading: GpuReading | None = None, error: Exception | None = None) -> None:
        self.reading = reading or RTX_5060_TI_16GB
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
