"""A scrape target that stands in for vLLM's /metrics (the only part no CPU machine can run).

It replays `data/vllm-metrics-sample.txt`; on the n-th scrape every counter and histogram series
is n times its sample value, so `rate()` and `histogram_quantile()` over it give real numbers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "data" / "vllm-metrics-sample.txt"
_GROWING = ("_total", "_bucket", "_count", "_sum")


def render(sample: str, scrape: int) -> str:
    lines = []
    for line in sample.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name = series.split("{", 1)[0]
            if name.endswith(_GROWING):
                line = f"{series} {float(value) * scrape}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def metric_names(sample: str | None = None) -> set[str]:
    """The metric families the sample defines (``# TYPE`` lines)."""
    text = SAMPLE.read_text() if sample is None else sample
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


class VllmStub:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.scrapes = 0
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    @classmethod
    @contextlib.contextmanager
    def serving(cls) -> Iterator[VllmStub]:
        sample = SAMPLE.read_text()
        stub: VllmStub

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                stub.scrapes += 1
                body = render(sample, stub.scrapes).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        stub = cls(server)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield stub
        finally:
            server.shutdown()
            server.server_close()
