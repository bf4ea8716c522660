"""A small HTTP/1.1 client for the router's own upstream traffic: asyncio + httptools.

Why not httpx: on the proxy's hot path httpx, httpcore and h11 (pure-Python HTTP parsing, one
event per chunk of the engine's chunked encoding) took about half of the router's CPU per
streamed request, and passing on each chunk as its own write took another quarter (py-spy,
benchmarks/proxy_overhead.py; numbers in docs/BENCHMARKS.md). This client parses with httptools
(llhttp, in C; uvicorn's parser, already a dependency) and hands over *everything that has
arrived* on each read, so chunks that come together leave together, as nginx does.

It does only what the router needs: one request at a time per keep-alive connection, a bounded
pool of connections per engine, a connect timeout, a first-byte timeout and a timeout between
chunks, a bounded read buffer (reading pauses while the client is slower than the engine), and
one transparent retry when a reused idle connection turns out to be closed before any answer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterable
from typing import cast
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024
"""Bytes buffered from an engine before reading pauses (until the client catches up)."""
IDLE_TIMEOUT_S = 4.0
"""An idle keep-alive connection older than this is not reused. Engines close idle connections
after 5 s (uvicorn, which vLLM runs on, and cpp-httplib in llama-server): reusing one at that
moment would race its close."""


_LABELS = {"connect": "ConnectError", "timeout": "Timeout", "protocol": "ProtocolError"}


class UpstreamError(Exception):
    """The engine could not be reached or did not answer in time or in HTTP.

    ``kind`` is ``connect``, ``timeout`` or ``protocol`` (the labels of
    router_upstream_errors_total).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{_LABELS.get(kind, kind)}: {message}")
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.paused = False
        self._new_response()

    def _new_response(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.received = False
        self.error: UpstreamError | None = None
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = UpstreamError("protocol", f"the engine's answer is not valid HTTP: {exc}")
            self.close()
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            detail = f": {exc}" if exc else ""
            what = "in the middle of its answer" if self.received else "without an answer"
            self.error = UpstreamError(
                "protocol", f"the engine closed the connection {what}{detail}"
            )
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- used by the response -----------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout_s: float, what: str) -> None:
        """Until something new arrives (data, the end, an error), at most ``timeout_s``."""
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout_s, _expire, waiter, timeout_s, what)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def take(self) -> bytes:
        """Everything received so far (empty when nothing is)."""
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None], timeout_s: float, what: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamError("timeout", f"no {what} within {timeout_s:g} s"))


class UpstreamResponse:
    """The engine's answer: status and headers now, the body as it comes."""

    __slots__ = ("_conn", "_pool", "_read_timeout_s", "headers", "status")

    def __init__(self, conn: _Connection, pool: UpstreamPool, read_timeout_s: float) -> None:
        self._conn = conn
        self._pool = pool
        self._read_timeout_s = read_timeout_s
        self.status = conn.status
        self.headers = conn.headers

    async def next_data(self, timeout_s: float | None = None) -> bytes:
        """All body bytes that have arrived (waiting for some if none have); ``b""`` at the end.

        Raises :class:`UpstreamError` when the engine fails or stays silent too long.
        """
        conn = self._conn
        while not conn.body:
            if conn.error is not None:
                raise conn.error
            if conn.complete:
                return b""
            await conn.wait(timeout_s or self._read_timeout_s, "data from the engine")
        return conn.take()

    @property
    def finished(self) -> bool:
        """The whole body has arrived and been taken."""
        conn = self._conn
        return conn.complete and not conn.body

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while data := await self.next_data():
            parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        """Give the connection back for reuse when its answer was read to the end; otherwise
        close it (the engine sees the client go and stops generating). Idempotent."""
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is not None:
            self._pool.release(conn)


class UpstreamPool:
    """Keep-alive connections to one engine (scheme, host and port of ``url``)."""

    def __init__(self, url: str, *, max_connections: int, connect_timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (host if default_port else f"{host}:{self.port}").encode("idna")
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.open_connections = 0

    async def request(
        self,
        method: bytes,
        target: str,
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        first_byte_timeout_s: float,
        read_timeout_s: float,
    ) -> UpstreamResponse:
        """Send one request and return once the response's status and headers are in."""
        head = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method, target.encode(), self.host_header)]
        for name, value in headers:
            head.append(b"%s: %s\r\n" % (name, value))
        if body or method == b"POST":
            head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"\r\n")
        message = b"".join(head) + body
        await self._slots.acquire()
        try:
            conn, reused = self._idle_connection(), True
            if conn is None:
                conn, reused = await self._connect(), False
            try:
                await self._exchange(conn, message, first_byte_timeout_s)
            except UpstreamError as exc:
                if not reused or conn.received or exc.kind != "protocol":
                    raise
                # A kept-alive connection the engine had closed: once more on a new one.
                conn = await self._connect()
                await self._exchange(conn, message, first_byte_timeout_s)
        except BaseException:
            self._slots.release()
            raise
        return UpstreamResponse(conn, self, read_timeout_s)

    async def _exchange(self, conn: _Connection, message: bytes, timeout_s: float) -> None:
        assert conn.transport is not None
        try:
            if conn.closed:  # lost before the write (uvloop raises RuntimeError on one)
                raise conn.error or UpstreamError("protocol", "the engine closed the connection")
            conn.transport.write(message)
            while not conn.headers_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(timeout_s, "answer from the engine")
        except BaseException:
            self._discard(conn)
            raise

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TIMEOUT_S:
                conn._new_response()
                return conn
            self._discard(conn)
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                ),
                self.connect_timeout_s,
            )
        except TimeoutError:
            raise UpstreamError(
                "timeout", f"connecting to {self.host}:{self.port} took over "
                f"{self.connect_timeout_s:g} s",
            ) from None  # fmt: skip
        except OSError as exc:
            raise UpstreamError(
                "connect", f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self.open_connections += 1
        return conn

    def release(self, conn: _Connection) -> None:
        """A response is done with its connection: keep it for the next request, or close it."""
        self._slots.release()
        if conn.complete and conn.keep_alive and not conn.closed and conn.error is None:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        if not conn.closed:
            conn.close()
        self.open_connections -= 1

    async def aclose(self) -> None:
        for conn in self._idle:
            self._discard(conn)
        self._idle.clear()
