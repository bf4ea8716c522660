"""Start, watch and stop real processes on loopback: engines, the router, nginx, LiteLLM...

The one way the tests and the benchmarks run a server: each process logs to a file (a failing
test can be read afterwards), readiness is an HTTP check polled until a deadline (the process's
own answer, not a sleep), and stopping reaches the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` different loopback TCP ports nothing listens on right now (drawn together: ports
    drawn one at a time may repeat)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    return httpx.get(url, timeout=timeout).status_code == 200


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[None]:
    """Start the processes in order; stop them in reverse, also when a start fails half-way."""
    started: list[Process] = []
    try:
        for process in processes:
            started.append(process)
            process.start()
        yield
    finally:
        for process in reversed(started):
            process.stop()


@dataclass
class Process:
    """One child process: the command, where it logs, how to tell it is ready."""

    name: str
    argv: Sequence[str]
    log_dir: Path
    ready_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} is not running"
        return self.popen.pid

    def start(self) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n=== start {self.starts}: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,  # its own process group: stop() reaches its children too
        )
        log.close()
        if self.ready_url is not None:
            try:
                wait_until(self._ready, self.start_timeout, f"{self.name} at {self.ready_url}")
            except TimeoutError as exc:
                self.stop()
                raise RuntimeError(f"{exc}; last lines of its log:\n{self.tail()}") from None
        return self

    def _ready(self) -> bool:
        assert self.popen is not None and self.ready_url is not None
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}; its log:\n{self.tail()}"
            )
        return http_ok(self.ready_url)

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to close connections cleanly."""
        self._signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.running():
            return
        assert self.popen is not None
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.popen.wait(10)

    def _signal(self, sig: int) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def cpu_seconds(pgid: int) -> float:
    """CPU time (user + system, children reaped included) of every process in group ``pgid``.

    Read from ``/proc/<pid>/stat`` (Linux): the measure of a proxy's cost per request that a
    shared, noisy machine disturbs least.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / ticks
