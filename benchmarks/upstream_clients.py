#!/usr/bin/env python3
"""The router's own upstream client against aiohttp and httpx, each behind the router's interface.

    python benchmarks/upstream_clients.py serve --client aiohttp -- [adaptive-router serve flags]
    python benchmarks/upstream_clients.py faults [--json FILE]

``serve`` runs the real router (``adaptive_router.middleware``, its production command line)
with ``service.upstream.UpstreamPool`` replaced by the named client's adapter, so that
``benchmarks/proxy_overhead.py --clients ours,aiohttp,httpx`` measures the three in the same run,
on the same router, with nothing else different. ``faults`` puts each client in front of a dead
engine, one that never answers, one slow to its first token, one that stalls mid-stream and one
that cuts the connection mid-stream, with the router's own timeouts scaled down, and says what
the router would see (the answer, or the error kind it fails over or reports on) and when.

The adapters keep the interface the service uses (``UpstreamPool.request`` -> a response with
``status``, ``headers``, ``next_data``, ``finished``, ``read``, ``close``; ``aclose``;
:class:`UpstreamError` with ``connect``, ``timeout`` or ``protocol``) and the pool's behaviour
(keep-alive connections, the idle limit, the connect, first-byte and between-chunks timeouts, no
compression, a connection closed unless its answer was read to the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import httpx

from adaptive_router.service import upstream
from adaptive_router.service.upstream import IDLE_TIMEOUT_S, UpstreamError

Headers = Iterable[tuple[bytes, bytes]]


class Response(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    async def next_data(self, timeout_s: float | None = None) -> bytes: ...
    @property
    def finished(self) -> bool: ...
    async def read(self) -> bytes: ...
    def close(self) -> None: ...


class Pool(Protocol):
    async def request(
        self,
        method: bytes,
        target: str,
        *,
        headers: Headers = (),
        body: bytes = b"",
        first_byte_timeout_s: float,
        read_timeout_s: float,
    ) -> Response: ...

    async def aclose(self) -> None: ...


async def _within(seconds: float, what: str, awaitable: Awaitable[Any]) -> Any:
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise UpstreamError("timeout", f"no {what} within {seconds:g} s") from None


async def _read_all(response: Response) -> bytes:
    parts = []
    while data := await response.next_data():
        parts.append(data)
    return b"".join(parts)


# --- aiohttp ------------------------------------------------------------------------------------


class AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse, read_timeout_s: float) -> None:
        self._response: aiohttp.ClientResponse | None = response
        self._read_timeout_s = read_timeout_s
        self.status = response.status
        self.headers = list(response.raw_headers)

    async def next_data(self, timeout_s: float | None = None) -> bytes:
        assert self._response is not None
        content = self._response.content
        if content.exception() is None and (data := content.read_nowait()):
            return data  # what has arrived, without a timer (as ours does)
        try:
            more: bytes = await _within(
                timeout_s or self._read_timeout_s, "data from the engine", content.readany()
            )
        except aiohttp.ClientError as exc:
            raise UpstreamError("protocol", f"the engine's answer broke off: {exc!r}") from None
        return more

    @property
    def finished(self) -> bool:
        return self._response is not None and self._response.content.at_eof()

    async def read(self) -> bytes:
        return await _read_all(self)

    def close(self) -> None:
        response, self._response = self._response, None
        if response is None:
            return
        if response.content.at_eof():
            response.release()  # the connection goes back to the pool
        else:
            response.close()  # the engine sees the client go


class AiohttpPool:
    """``UpstreamPool`` on one ``aiohttp.ClientSession`` (created on first use, in the loop)."""

    def __init__(self, url: str, *, max_connections: int, connect_timeout_s: float) -> None:
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.max_connections = max_connections
        self.connect_timeout_s = connect_timeout_s
        self.open_connections = 0
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=IDLE_TIMEOUT_S, ttl_dns_cache=None
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def request(
        self,
        method: bytes,
        target: str,
        *,
        headers: Headers = (),
        body: bytes = b"",
        first_byte_timeout_s: float,
        read_timeout_s: float,
    ) -> AiohttpResponse:
        hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        for attempt in (1, 2):
            call = self._client().request(
                method.decode(), self.base + target, data=body, headers=hdrs
            )
            try:
                response = await _within(first_byte_timeout_s, "answer from the engine", call)
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 1:  # a kept-alive connection the engine had closed: once more
                    continue
                raise UpstreamError(
                    "protocol", f"the engine closed the connection: {exc!r}"
                ) from None
            except aiohttp.ConnectionTimeoutError:
                raise UpstreamError(
                    "timeout", f"connecting took over {self.connect_timeout_s:g} s"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                raise UpstreamError("connect", f"cannot connect: {exc.strerror or exc}") from None
            except aiohttp.ClientError as exc:
                raise UpstreamError("protocol", f"{exc!r}") from None
            return AiohttpResponse(response, read_timeout_s)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


# --- httpx --------------------------------------------------------------------------------------


class HttpxResponse:
    def __init__(self, response: httpx.Response, read_timeout_s: float) -> None:
        self._response: httpx.Response | None = response
        self._chunks: AsyncIterator[bytes] = response.aiter_raw()
        self._read_timeout_s = read_timeout_s
        self._eof = False
        self.status = response.status_code
        self.headers = list(response.headers.raw)

    async def next_data(self, timeout_s: float | None = None) -> bytes:
        if self._eof:
            return b""
        try:
            data: bytes = await _within(
                timeout_s or self._read_timeout_s, "data from the engine", anext(self._chunks)
            )
        except StopAsyncIteration:
            self._eof = True
            return b""
        except httpx.HTTPError as exc:
            raise UpstreamError("protocol", f"the engine's answer broke off: {exc!r}") from None
        return data

    @property
    def finished(self) -> bool:
        return self._eof

    async def read(self) -> bytes:
        return await _read_all(self)

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            # httpx closes asynchronously; the interface's close() is not a coroutine.
            asyncio.get_running_loop().create_task(response.aclose())


class HttpxPool:
    """``UpstreamPool`` on one ``httpx.AsyncClient``."""

    def __init__(self, url: str, *, max_connections: int, connect_timeout_s: float) -> None:
        parts = urlsplit(url)
        self.open_connections = 0
        self._client = httpx.AsyncClient(
            base_url=f"{parts.scheme}://{parts.netloc}",
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=IDLE_TIMEOUT_S,
            ),
            timeout=httpx.Timeout(connect=connect_timeout_s, read=None, write=None, pool=None),
        )

    async def request(
        self,
        method: bytes,
        target: str,
        *,
        headers: Headers = (),
        body: bytes = b"",
        first_byte_timeout_s: float,
        read_timeout_s: float,
    ) -> HttpxResponse:
        request = self._client.build_request(
            method.decode(), target, headers=list(headers), content=body
        )
        try:
            response = await _within(
                first_byte_timeout_s,
                "answer from the engine",
                self._client.send(request, stream=True),
            )
        except httpx.ConnectTimeout:
            raise UpstreamError("timeout", "connecting took too long") from None
        except httpx.ConnectError as exc:
            raise UpstreamError("connect", f"cannot connect: {exc}") from None
        except httpx.HTTPError as exc:
            raise UpstreamError("protocol", f"{exc!r}") from None
        return HttpxResponse(response, read_timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()


CLIENTS: dict[str, Callable[..., Any]] = {
    "ours": upstream.UpstreamPool,
    "aiohttp": AiohttpPool,
    "httpx": HttpxPool,
}


# --- serve: the router with another client ------------------------------------------------------


def serve(client: str, argv: list[str]) -> int:
    """The router's production command line with ``client`` as every replica's pool."""
    from adaptive_router.middleware import serve as router_serve
    from adaptive_router.service import app

    setattr(app, "UpstreamPool", CLIENTS[client])  # noqa: B010 (a replacement, on purpose)
    return router_serve(argv)


# --- faults: each client against a failing engine -----------------------------------------------

# The router's timeouts, scaled down for a short run (defaults: 2 s, 180 s, 120 s).
CONNECT_S, FIRST_BYTE_S, BETWEEN_CHUNKS_S = 1.0, 1.5, 1.0
BODY = json.dumps(
    {"model": "m", "stream": True, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
).encode()
SCENARIOS: dict[str, list[str]] = {
    # name: the fake engine's flags (none: nothing listens on the port)
    "healthy": ["--tokens", "4"],
    "dead (connection refused)": [],
    "never answers (hang)": ["--fault", "hang"],
    "slow first token (0.5 s, within the limit)": ["--first-token-delay-ms", "500"],
    "stalls mid-stream (3 s between tokens)": ["--tokens", "4", "--token-delay-ms", "3000"],
    "cuts the connection mid-stream": ["--tokens", "8", "--fault", "cut"],
}


async def one_exchange(pool: Pool) -> dict[str, Any]:
    """What the router's exchange does: the request, then the stream to its end."""
    started = time.perf_counter()
    outcome: dict[str, Any] = {}
    try:
        response = await pool.request(
            b"POST",
            "/v1/chat/completions",
            headers=((b"content-type", b"application/json"), (b"accept-encoding", b"identity")),
            body=BODY,
            first_byte_timeout_s=FIRST_BYTE_S,
            read_timeout_s=BETWEEN_CHUNKS_S,
        )
        outcome["status"] = response.status
        try:
            data = await response.read()
            outcome["bytes"] = len(data)
            outcome["result"] = f"HTTP {response.status}, {len(data)} bytes"
        finally:
            response.close()
    except UpstreamError as exc:
        outcome["result"] = f"UpstreamError {exc.kind}"
        outcome["error"] = str(exc)[:160]
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    return outcome


async def exchange_with(make: Callable[..., Any], url: str) -> dict[str, Any]:
    pool = make(url, max_connections=8, connect_timeout_s=CONNECT_S)
    try:
        return await one_exchange(pool)
    finally:
        await pool.aclose()


def faults() -> dict[str, dict[str, Any]]:
    from adaptive_router.testing.processes import Process, free_ports, running

    work = Path(tempfile.mkdtemp(prefix="upstream-faults-"))
    results: dict[str, dict[str, Any]] = {}
    for name, flags in SCENARIOS.items():
        (port,) = free_ports(1)
        url = f"http://127.0.0.1:{port}"
        engines = []
        if flags:
            argv = [sys.executable, "-m", "adaptive_router.testing.fake_engine", "--port",
                    str(port), "--model", "m", *flags]  # fmt: skip
            engines.append(Process("fault-engine", argv, work, ready_url=url + "/health"))
        results[name] = {}
        with running(*engines):
            for client, make in CLIENTS.items():
                results[name][client] = asyncio.run(exchange_with(make, url))
                print(f"  {name:45s} {client:8s} {json.dumps(results[name][client])}")
    return results


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="upstream_clients.py serve")
        parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
        rest = args[1:]
        split = rest.index("--") if "--" in rest else len(rest)
        known = parser.parse_args(rest[:split])
        return serve(known.client, rest[split + 1 :])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="the router with another client (see above)")
    p = sub.add_parser("faults", help="each client against a failing engine")
    p.add_argument("--json", type=Path, help="write the results here")
    parsed = parser.parse_args(args)
    results = faults()
    print()
    print(f"Timeouts: connect {CONNECT_S:g} s, first byte {FIRST_BYTE_S:g} s, between chunks "
          f"{BETWEEN_CHUNKS_S:g} s.\n")  # fmt: skip
    print("| engine | " + " | ".join(CLIENTS) + " |")
    print("|---|" + "---|" * len(CLIENTS))
    for name, by_client in results.items():
        cells = [f"{r['result']} after {r['seconds']:g} s" for r in by_client.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if parsed.json:
        parsed.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
