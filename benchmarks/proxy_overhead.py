#!/usr/bin/env python3
"""What a proxy adds to a streamed request: direct vs the router vs nginx, in one run.

    python benchmarks/proxy_overhead.py [--concurrency 1,64] [--requests 400] [--tokens 64]
                                        [--clients ours,aiohttp,httpx] [--rounds N]
                                        [--json out.json]

Starts, each in its own process group on loopback: the package's fake engine streaming
``--tokens`` chunks with no delay (so every millisecond measured is overhead), the router (the
production command line: uvicorn + uvloop + httptools) in front of it, and nginx (Debian's
``nginx``, ``proxy_buffering off``: the floor a C proxy sets; left out with a message when it is
not installed) in front of the same engine. For each concurrency it streams ``--requests`` chat
completions through each path (after a warm-up) over keep-alive connections and reports time to
first token p50/p95 (benchmarks/measure.py's definition), requests per second, errors, and each
proxy's CPU milliseconds per request: user + system time of its processes over the run divided
by the requests. CPU per request is the figure a shared 2-core machine disturbs least; the load
generator is a minimal HTTP/1.1 client (httptools, in C) so that its own CPU takes as little as
possible from the servers it measures.

``--clients`` adds a router row for each other upstream HTTP client, the same router with its
``UpstreamPool`` replaced (benchmarks/upstream_clients.py: aiohttp, httpx); ``--rounds`` repeats
every path that many times, interleaved, and the table shows each figure's median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httptools
from measure import chat_body, int_list, percentile

from adaptive_router.testing.processes import Process, cpu_seconds, free_ports, running

SERVED = "gemma-4-e4b"
CLIENTS = ("ours", "aiohttp", "httpx")
PROMPT = [{"role": "user", "content": "What time is it in Tokyo?"}]

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream engine {{ server 127.0.0.1:{engine_port}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://engine;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


class _Reply:
    """httptools callbacks for one response: when its first text arrived, when it ended."""

    def __init__(self) -> None:
        self.first_text: float | None = None
        self.done = False
        self.status = 0
        self.parser = httptools.HttpResponseParser(self)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.first_text is None and (b'"content"' in body or b'"text"' in body):
            self.first_text = time.perf_counter()

    def on_message_complete(self) -> None:
        self.done = True


async def run_load(url: str, model: str, concurrency: int, requests: int) -> dict[str, float]:
    """``requests`` streamed chats through ``url`` by ``concurrency`` clients (after a warm-up).

    Each client is one keep-alive connection speaking HTTP/1.1 through httptools (C): a load
    generator light enough not to take the 2-core machine's CPU from the servers it measures.
    TTFT is measure.py's: from sending to the first chunk that carries output text.
    """
    host, port = url.split("://", 1)[1].split(":")

    def message_of(client: int) -> bytes:
        """Each client is a person to the router (its fair line and per-person cap)."""
        user = f"overhead-c{concurrency}-{client}"
        body = json.dumps(chat_body(model, PROMPT, max_tokens=64, user=user)).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    left = requests
    ttfts: list[float] = []
    errors = 0

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def client(count: int | None, n: int) -> None:
        nonlocal left, errors
        message = message_of(n)
        reader, writer = await connect()
        try:
            while (left > 0) if count is None else count > 0:
                if count is None:
                    left -= 1
                else:
                    count -= 1
                reply = _Reply()
                started = time.perf_counter()
                writer.write(message)
                received = False
                while not reply.done:
                    data = await reader.read(65536)
                    if not data and not received:  # a kept-alive connection the server closed
                        writer.close()
                        reader, writer = await connect()
                        started = time.perf_counter()
                        writer.write(message)
                        continue
                    if not data:
                        raise ConnectionError("the server closed the connection mid-answer")
                    received = True
                    reply.parser.feed_data(data)
                if reply.status == 200 and reply.first_text is not None:
                    if count is None:
                        ttfts.append((reply.first_text - started) * 1000)
                else:
                    errors += 1
        except (OSError, httptools.HttpParserError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(8, n) for n in range(min(concurrency, 8))))  # warm-up
    errors = 0
    started = time.perf_counter()
    await asyncio.gather(*(client(None, n) for n in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "ttft_p50_ms": percentile(ttfts, 50),
        "ttft_p95_ms": percentile(ttfts, 95),
        "requests_per_s": len(ttfts) / wall,
        "errors": errors,
    }


SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def measure(proxy: Process | None, url: str, model: str, c: int, n: int) -> dict[str, float]:
    """One load run; with ``proxy`` its CPU milliseconds per request over the run."""
    before = cpu_seconds(proxy.pid) if proxy is not None else 0.0
    row = asyncio.run(run_load(url, model, c, n))
    if proxy is not None:
        row["cpu_ms_per_request"] = (cpu_seconds(proxy.pid) - before) * 1000 / n
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int_list, default=[1, 64])
    parser.add_argument("--requests", type=int, default=400, help="per path and concurrency")
    parser.add_argument("--tokens", type=int, default=64, help="chunks each fake reply streams")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--no-nginx", action="store_true", help="leave nginx out")
    parser.add_argument(
        "--clients",
        type=lambda text: [c for c in text.split(",") if c],
        default=["ours"],
        help="routers to measure, by upstream client: ours, aiohttp, httpx (default ours)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every path, interleaved")
    args = parser.parse_args(argv)
    if unknown := set(args.clients) - set(CLIENTS):
        parser.error(f"unknown client(s) {sorted(unknown)}; choose from {', '.join(CLIENTS)}")

    work = Path(tempfile.mkdtemp(prefix="proxy-overhead-"))
    py = sys.executable
    engine_port, nginx_port, *router_ports = free_ports(2 + len(args.clients))
    engine_url = f"http://127.0.0.1:{engine_port}"
    engine = Process(
        "engine",
        [py, "-m", "adaptive_router.testing.fake_engine", "--port", str(engine_port),
         "--model", SERVED, "--flavor", "vllm", "--tokens", str(args.tokens)],
        work, ready_url=engine_url + "/health",
    )  # fmt: skip
    paths: list[tuple[str, Process | None, str, str]] = [("direct", None, engine_url, SERVED)]
    for client, router_port in zip(args.clients, router_ports, strict=True):
        name = "router" if client == "ours" else f"router-{client}"
        command = ["-m", "adaptive_router.middleware"]
        if client != "ours":
            script = Path(__file__).with_name("upstream_clients.py")
            command = [str(script), "serve", "--client", client, "--"]
        router = Process(
            name,
            [py, *command, "--tier-low-url", engine_url + "/v1", "--tier-high-url",
             engine_url + "/v1", "--host", "127.0.0.1", "--port", str(router_port),
             "--log-level", "warning"],
            work, ready_url=f"http://127.0.0.1:{router_port}/livez",
            env={"ROUTER_GPU_MONITOR": "false", "ROUTER_TIER_HIGH_MODEL": SERVED},
        )  # fmt: skip
        paths.append((name, router, f"http://127.0.0.1:{router_port}", "gemma4-fast"))
    # Debian installs nginx in /usr/sbin, which is not on a normal user's PATH.
    nginx = None if args.no_nginx else shutil.which("nginx") or shutil.which("nginx", path=SBIN)
    if nginx is not None:
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=work, engine_port=engine_port, port=nginx_port))
        nginx_proxy = Process(
            "nginx", [nginx, "-p", str(work), "-c", str(conf)], work,
            ready_url=f"http://127.0.0.1:{nginx_port}/health",
        )  # fmt: skip
        paths.append(("nginx", nginx_proxy, f"http://127.0.0.1:{nginx_port}", SERVED))
    elif not args.no_nginx:
        print("nginx is not installed (Debian: apt install nginx): its rows are left out")

    rounds: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {c: [] for c in args.concurrency} for name, _, _, _ in paths
    }
    with ExitStack() as stack:
        stack.enter_context(running(engine, *(p for _, p, _, _ in paths if p is not None)))
        for _ in range(args.rounds):
            for name, proxy, url, model in paths:
                for c in args.concurrency:
                    row = measure(proxy, url, model, c, args.requests)
                    row = {k: round(v, 3) for k, v in row.items()}
                    rounds[name][c].append(row)
                    print(f"  {name:14s} c={c:<3d} {json.dumps(row)}")
    results = {
        name: {c: {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
               for c, rows in by_c.items()}
        for name, by_c in rounds.items()
    }  # fmt: skip

    print()
    print("| path | concurrency | TTFT p50 (ms) | TTFT p95 (ms) | added TTFT p50 (ms) "
          "| req/s | errors | proxy CPU ms / request |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, by_c in results.items():
        for c, r in by_c.items():
            added = r["ttft_p50_ms"] - results["direct"][c]["ttft_p50_ms"]
            cpu = r.get("cpu_ms_per_request")
            print(f"| {name} | {c} | {r['ttft_p50_ms']:.2f} | {r['ttft_p95_ms']:.2f} | "
                  f"{'—' if name == 'direct' else f'{added:+.2f}'} | {r['requests_per_s']:.0f} | "
                  f"{r['errors']:.0f} | {'—' if cpu is None else f'{cpu:.2f}'} |")  # fmt: skip
    if args.json:
        payload: dict[str, Any] = {"tokens": args.tokens, "requests": args.requests,
                                   "results": results, "rounds": rounds}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
