"""GPU state from NVML, read in a daemon thread and published as an immutable snapshot.

The request path only ever reads ``monitor.snapshot`` (one attribute load): the NVML calls,
which can block for milliseconds, happen beside it. Without a GPU, without the driver, or on any
NVML error the snapshot says ``available=False`` with the reason, logged once; the GPU rules then
abstain. The 0.1 release instead died with a traceback and kept a fake "16 GB free".
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("adaptive_router.gpu")


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One raw NVML reading."""

    free_bytes: int
    used_bytes: int
    total_bytes: int
    utilization_pct: float
    name: str


@dataclass(frozen=True, slots=True)
class GpuSnapshot:
    """What the router knows about the GPU right now. Immutable: swapped whole, never edited."""

    available: bool
    free_bytes: int | None = None
    used_bytes: int | None = None
    total_bytes: int | None = None
    utilization_pct: float | None = None
    name: str | None = None
    device_index: int = 0
    timestamp: float = 0.0
    """``time.time()`` of the reading (0 when never read)."""
    hot_polls: int = 0
    """Consecutive polls at or above the utilisation limit."""
    error: str | None = None
    """Why the GPU is unavailable, when it is."""

    @property
    def free_gb(self) -> float | None:
        return None if self.free_bytes is None else self.free_bytes / 1e9

    def as_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "name": self.name,
            "device_index": self.device_index,
            "free_bytes": self.free_bytes,
            "used_bytes": self.used_bytes,
            "total_bytes": self.total_bytes,
            "utilization_pct": self.utilization_pct,
            "hot_polls": self.hot_polls,
            "timestamp": self.timestamp,
            "error": self.error,
        }


UNAVAILABLE = GpuSnapshot(available=False, error="not read yet")


class NvmlSource(Protocol):
    """Where readings come from. Tests inject a fake; production uses :class:`PynvmlSource`."""

    def open(self, device_index: int) -> None: ...
    def read(self) -> GpuReading: ...
    def close(self) -> None: ...


class PynvmlSource:
    """NVML through ``nvidia-ml-py`` (module ``pynvml``), imported only when used."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handle: Any = None

    def open(self, device_index: int) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)

    def read(self) -> GpuReading:
        nvml, handle = self._nvml, self._handle
        if nvml is None:
            raise RuntimeError("NVML not initialised")
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        rates = nvml.nvmlDeviceGetUtilizationRates(handle)
        name = nvml.nvmlDeviceGetName(handle)
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        return GpuReading(
            free_bytes=int(memory.free),
            used_bytes=int(memory.used),
            total_bytes=int(memory.total),
            utilization_pct=float(rates.gpu),
            name=str(name),
        )

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            finally:
                self._nvml = None
                self._handle = None


def _error_text(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, ImportError):
        return f"nvidia-ml-py is not installed ({text})"
    return f"{exc.__class__.__name__}: {text}"


class GpuMonitor:
    """Polls NVML every ``interval_s`` in a daemon thread; ``snapshot`` is always safe to read."""

    def __init__(
        self,
        source: NvmlSource | None = None,
        *,
        device_index: int = 0,
        interval_s: float = 0.5,
        util_max_pct: float = 90.0,
        reopen_after_s: float = 30.0,
    ) -> None:
        self._source = source if source is not None else PynvmlSource()
        self._device_index = device_index
        self._interval_s = interval_s
        self._util_max_pct = util_max_pct
        self._reopen_after_s = reopen_after_s
        self._snapshot = GpuSnapshot(
            available=False, device_index=device_index, error="not read yet"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._last_error: str | None = None
        self._next_open = 0.0

    @property
    def snapshot(self) -> GpuSnapshot:
        return self._snapshot

    def poll_once(self) -> GpuSnapshot:
        """Take one reading now (the thread calls this; tests may call it directly)."""
        now = time.monotonic()
        try:
            if not self._opened:
                if now < self._next_open:
                    return self._snapshot
                self._source.open(self._device_index)
                self._opened = True
                if self._last_error is not None:
                    log.info("GPU %d readable again", self._device_index)
                self._last_error = None
            reading = self._source.read()
        except Exception as exc:
            self._fail(_error_text(exc), now)
            return self._snapshot
        hot = reading.utilization_pct >= self._util_max_pct
        previous = self._snapshot
        self._snapshot = GpuSnapshot(
            available=True,
            free_bytes=reading.free_bytes,
            used_bytes=reading.used_bytes,
            total_bytes=reading.total_bytes,
            utilization_pct=reading.utilization_pct,
            name=reading.name,
            device_index=self._device_index,
            timestamp=time.time(),
            hot_polls=(previous.hot_polls + 1) if hot else 0,
        )
        return self._snapshot

    def _fail(self, error: str, now: float) -> None:
        if error != self._last_error:
            log.warning(
                "GPU %d state unavailable, GPU rules will abstain: %s", self._device_index, error
            )
            self._last_error = error
        if self._opened:
            with contextlib.suppress(Exception):
                self._source.close()
        self._opened = False
        self._next_open = now + self._reopen_after_s
        self._snapshot = GpuSnapshot(
            available=False, device_index=self._device_index, timestamp=time.time(), error=error
        )

    def start(self) -> GpuMonitor:
        """Read once synchronously (so the first decision has a real state), then poll."""
        if self._thread is None:
            self.poll_once()
            self._thread = threading.Thread(target=self._run, name="gpu-monitor", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.poll_once()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop the thread and release NVML. Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if self._opened:
            with contextlib.suppress(Exception):
                self._source.close()
            self._opened = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
