"""Small helpers the end-to-end tests share: prompts the router classifies with a clear margin,
reading Prometheus text from a live /metrics, reading an SSE stream, traffic through LiteLLM."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import stack

from adaptive_router.service.probes import parse_samples

EASY_PROMPT = "What is the capital of France?"
HARD_PROMPT = (
    "Prove that there are infinitely many prime numbers, then derive the time complexity of the "
    "sieve of Eratosthenes step by step and explain why it is O(n log log n)."
)


@dataclass
class HubRecorder:
    """A stand-in for the Hugging Face Hub (the ``hub`` fixture): its URL and every request it
    got."""

    url: str
    requests: list[str] = field(default_factory=list)


@contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP proxy in front of a real engine: forwards every request as it is and
    answers with the engine's own response; records the JSON body of each POST. Yields its URL
    and the list the bodies go to (what the engine received, as sent)."""
    bodies: list[dict[str, Any]] = []
    client = httpx.Client(base_url=upstream, timeout=120)

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.command == "POST" and raw:
                bodies.append(json.loads(raw))
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = client.request(self.command, self.path, content=raw, headers=headers)
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in (
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "content-encoding",
                ):
                    self.send_header(key, value)
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()
        client.close()


def router_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.ROUTER_API_KEY}"}


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(name, labels): value}`` of a live /metrics endpoint."""
    return parse_samples(httpx.get(url.rstrip("/") + "/metrics", timeout=5).text)


def metric_sum(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """Sum of ``name`` over the series whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, object] | str]:
    """The ``data:`` payloads of an SSE stream: dicts, or the string ``[DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        yield data if data == "[DONE]" else json.loads(data)


def retrieval_through_litellm(sdk: openai.OpenAI, base_url: str, api_key: str) -> None:
    """One embedding (two texts) and one rerank (three documents) with LiteLLM's model names."""
    sdk.embeddings.create(model="gemma-embed", input=["a first text", "a second text"])
    r = httpx.post(
        base_url + "/rerank",
        json={"model": "gemma-rerank", "query": "panda",
              "documents": ["a bear", "the giant panda", "a car"]},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )  # fmt: skip
    r.raise_for_status()


@contextmanager
def litellm_traffic(base_url: str, api_key: str, trickle_every_s: float = 0.25) -> Iterator[None]:
    """Traffic through LiteLLM (both models, easy and hard, streamed and not, and every other
    request an embedding and a rerank): a burst of 12, then a trickle that keeps the rate()
    windows of the ratio panels filled until the block ends."""
    sdk = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    stop = threading.Event()

    def one(i: int) -> None:
        if i % 2 == 0:
            retrieval_through_litellm(sdk, base_url, api_key)
        model = "gemma4-smart" if i % 4 == 3 else "gemma4-fast"
        messages = [{"role": "user", "content": HARD_PROMPT if i % 2 else EASY_PROMPT}]
        if i % 3 == 0:
            for _ in sdk.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=8,
                stream=True,
            ):
                pass
        else:
            sdk.chat.completions.create(model=model, messages=messages, max_tokens=8)  # type: ignore[arg-type]

    def trickle() -> None:
        i = 12
        while not stop.wait(trickle_every_s):
            one(i)
            i += 1

    for i in range(12):
        one(i)
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)
