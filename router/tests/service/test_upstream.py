"""The router's upstream HTTP client against real sockets on loopback: keep-alive reuse, chunks
that arrive together leaving together, timeouts, cut connections, a closed idle connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from adaptive_router.service import upstream
from adaptive_router.service.upstream import UpstreamError, UpstreamPool

from ..servers import closed_port_url

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head + await reader.readexactly(length)


def run(handler: Handler, scenario: Callable[[UpstreamPool], Awaitable[object]]) -> object:
    """Serve ``handler`` on loopback and run ``scenario`` against a pool towards it."""

    async def main() -> object:
        tasks: list[asyncio.Task[None]] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(f"http://127.0.0.1:{port}/v1", max_connections=4, connect_timeout_s=1)
        try:
            return await scenario(pool)
        finally:
            await pool.aclose()
            server.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    return asyncio.run(main())


async def post(pool: UpstreamPool, timeout: float = 2.0) -> upstream.UpstreamResponse:
    return await pool.request(
        b"POST", "/v1/chat/completions", body=b"{}", first_byte_timeout_s=timeout,
        read_timeout_s=timeout,
    )  # fmt: skip


def test_keep_alive_connection_is_reused_and_the_request_is_well_formed() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            seen.append(await read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def scenario(pool: UpstreamPool) -> list[bytes]:
        bodies = []
        for _ in range(2):
            response = await post(pool)
            bodies.append(await response.read())
            response.close()
        assert pool.open_connections == 1
        return bodies

    assert run(handler, scenario) == [b"ok", b"ok"]
    assert len(seen) == 2
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"content-length: 2\r\n\r\n{}" in seen[0]


def test_chunks_that_arrive_together_are_handed_over_together() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            CHUNKED + chunk(b"data: a\n\n") + chunk(b"data: b\n\n") + chunk(b"data: c\n\n")
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(chunk(b"data: d\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def scenario(pool: UpstreamPool) -> list[bytes]:
        response = await post(pool)
        parts = []
        while data := await response.next_data():
            parts.append(data)
        response.close()
        return parts

    assert run(handler, scenario) == [b"data: a\n\ndata: b\n\ndata: c\n\n", b"data: d\n\n"]


def test_connection_cut_mid_body_is_a_protocol_error_after_the_data() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED + chunk(b"data: a\n\n"))
        await writer.drain()
        writer.close()

    async def scenario(pool: UpstreamPool) -> tuple[bytes, str, str]:
        response = await post(pool)
        first = await response.next_data()
        with pytest.raises(UpstreamError) as info:
            await response.next_data()
        response.close()
        return first, info.value.kind, str(info.value)

    first, kind, message = run(handler, scenario)  # type: ignore[misc]
    assert (first, kind) == (b"data: a\n\n", "protocol")
    assert "in the middle of its answer" in message


def test_silence_is_a_timeout_and_refusal_a_connect_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def scenario(pool: UpstreamPool) -> str:
        with pytest.raises(UpstreamError) as info:
            await post(pool, timeout=0.1)
        return info.value.kind

    assert run(handler, scenario) == "timeout"

    async def refused() -> str:
        pool = UpstreamPool(closed_port_url(), max_connections=1, connect_timeout_s=1)
        with pytest.raises(UpstreamError) as info:
            await post(pool)
        assert pool.open_connections == 0
        return str(info.value)

    assert asyncio.run(refused()).startswith("ConnectError: cannot connect to 127.0.0.1:")


def test_an_idle_connection_the_engine_closed_is_replaced_transparently() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        # Answers keep-alive, then closes anyway (as an engine's idle timeout would).
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def scenario(pool: UpstreamPool) -> list[bytes]:
        out = []
        for _ in range(2):
            response = await post(pool)
            out.append(await response.read())
            response.close()
            await asyncio.sleep(0.05)  # let the close arrive, as it would between two requests
        return out

    assert run(handler, scenario) == [b"ok", b"ok"]
    assert connections == 2


def test_reading_pauses_while_the_reader_is_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "HIGH_WATER", 1024)
    piece = b"x" * 4096

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED)
        for _ in range(64):
            writer.write(chunk(piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def scenario(pool: UpstreamPool) -> tuple[int, int]:
        response = await post(pool)
        await asyncio.sleep(0.2)  # the engine writes 256 KiB; the reader is not reading
        buffered = response._conn.buffered  # type: ignore[union-attr]
        total = len(await response.read())
        response.close()
        return buffered, total

    buffered, total = run(handler, scenario)  # type: ignore[misc]
    assert total == 64 * 4096
    assert buffered < 64 * 4096 // 2  # paused long before the whole answer was buffered


def test_a_connection_lost_before_the_request_is_written_is_an_upstream_error() -> None:
    """The engine dies between the connect and the write (a replica killed mid-run): uvloop,
    the router's loop, raises RuntimeError on a write to a closed transport, which reached the
    client as a 500; it is an UpstreamError, which the dispatcher retries on another replica."""
    import uvloop

    async def scenario() -> str:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(f"http://127.0.0.1:{port}/v1", max_connections=1, connect_timeout_s=1)
        connect = pool._connect

        async def connect_then_lose() -> upstream._Connection:
            conn = await connect()
            assert conn.transport is not None
            conn.transport.close()
            for _ in range(100):  # connection_lost runs on a later turn of the loop
                if conn.closed:
                    break
                await asyncio.sleep(0)
            assert conn.closed
            return conn

        pool._connect = connect_then_lose  # type: ignore[method-assign]
        try:
            with pytest.raises(UpstreamError) as info:
                await post(pool)
            assert pool.open_connections == 0
            return info.value.kind
        finally:
            await pool.aclose()
            server.close()
            await server.wait_closed()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()) == "protocol"
