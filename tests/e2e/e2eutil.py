"""Small helpers the end-to-end tests share: prompts the router classifies with a clear margin,
reading Prometheus text from a live /metrics, reading an SSE stream."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import httpx
import stack

from adaptive_router.service.probes import parse_samples

EASY_PROMPT = "What is the capital of France?"
HARD_PROMPT = (
    "Prove that there are infinitely many prime numbers, then derive the time complexity of the "
    "sieve of Eratosthenes step by step and explain why it is O(n log log n)."
)


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
