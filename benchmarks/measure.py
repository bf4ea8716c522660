"""How every benchmark here measures one streamed request, and how it summarises many.

One definition for all scripts (bench.py, load_test.py, the prefix sweep, the MTP bench):

- TTFT: from just before the request is sent to the first SSE chunk that carries output text
  (a role-only first chunk does not count: the user sees nothing yet).
- ITL: the gaps between consecutive chunks that carry output text.
- E2E: from send to the end of the stream.
- output tokens: ``usage.completion_tokens`` when the server reports it (asked for with
  ``stream_options.include_usage``), otherwise the number of text chunks.
- tokens/s: output tokens after the first, divided by the time after the first (decode speed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx


@dataclass
class RequestResult:
    ok: bool
    status: int = 0
    error: str = ""
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    """Prompt tokens the engine took from its cache (llama.cpp ``timings.cache_n``, the OpenAI
    ``usage.prompt_tokens_details.cached_tokens`` that vLLM and SGLang fill)."""
    draft_tokens: int | None = None
    draft_accepted: int | None = None
    """Speculative decoding, where llama-server reports it (``timings.draft_n[_accepted]``)."""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Ended cleanly without any text (a model may stop at once): no TTFT to report."""
        return self.ok and self.ttft_s is None

    @property
    def tokens_per_s(self) -> float | None:
        if self.ttft_s is None or self.e2e_s is None or self.output_tokens < 2:
            return None
        decode = self.e2e_s - self.ttft_s
        return (self.output_tokens - 1) / decode if decode > 0 else None


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """--base-url, --model, --api-key (default $BENCH_API_KEY), --timeout: one endpoint."""
    parser.add_argument("--base-url", required=True, help="server root (without /v1)")
    parser.add_argument("--model", required=True, help="model name to request")
    parser.add_argument(
        "--api-key", default=os.environ.get("BENCH_API_KEY", ""), help="default $BENCH_API_KEY"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")


def add_second_opinion_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-second-opinion``: the router's complexity model alone, without the encoder
    (``RoutingConfig(second_opinion=False)``, ``ROUTER_SECOND_OPINION=false``); sets
    ``args.second_opinion``."""
    parser.add_argument(
        "--no-second-opinion",
        dest="second_opinion",
        action="store_false",
        help="the complexity model alone, without the encoder's second opinion",
    )


def int_list(text: str) -> list[int]:
    """argparse type for "1,10,50": a clear usage error instead of a traceback."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,10, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def chat_body(
    model: str, messages: Sequence[Mapping[str, Any]], max_tokens: int, **extra: Any
) -> dict[str, Any]:
    return {
        "model": model,
        "messages": list(messages),
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


async def stream_chat(
    client: httpx.AsyncClient,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> RequestResult:
    """Send one streaming chat request to ``url`` (…/v1/chat/completions) and time it."""
    started = time.perf_counter()
    last_text_at: float | None = None
    result = RequestResult(ok=False)
    chunks = 0
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            result.status = response.status_code
            result.headers = {k: v for k, v in response.headers.items() if k.startswith("x-")}
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                result.error = f"HTTP {response.status_code}: {text[:200]}"
                return result
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    result.error = f"error event: {event['error'].get('message', event['error'])}"
                    return result
                now = time.perf_counter()
                if _has_text(event):
                    chunks += 1
                    if result.ttft_s is None:
                        result.ttft_s = now - started
                    elif last_text_at is not None:
                        result.itl_s.append(now - last_text_at)
                    last_text_at = now
                _read_usage(event, result)
    except httpx.HTTPError as exc:
        result.error = f"{exc.__class__.__name__}: {exc}"
        return result
    result.e2e_s = time.perf_counter() - started
    if not result.output_tokens:
        result.output_tokens = chunks
    result.ok = True  # a stream that ended cleanly; with no text it has no TTFT (``empty``)
    return result


def _has_text(event: Mapping[str, Any]) -> bool:
    for choice in event.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("reasoning_content") or choice.get("text"):
            return True
    return False


def _read_usage(event: Mapping[str, Any], result: RequestResult) -> None:
    usage = event.get("usage")
    if usage:
        result.output_tokens = int(usage.get("completion_tokens") or 0)
        result.prompt_tokens = usage.get("prompt_tokens")
        details = usage.get("prompt_tokens_details") or {}
        if details.get("cached_tokens") is not None:
            result.cached_tokens = int(details["cached_tokens"])
    timings = event.get("timings")
    if timings and "cache_n" in timings:  # llama-server's own, on the last chunk
        result.cached_tokens = int(timings["cache_n"])
    if timings and "draft_n" in timings:
        result.draft_tokens = int(timings["draft_n"])
        result.draft_accepted = int(timings.get("draft_n_accepted", 0))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), ``q`` in 0..100; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(results: Iterable[RequestResult], wall_s: float) -> dict[str, Any]:
    """p50/p95/p99 of each measure in milliseconds (tokens/s as is), plus counts and rates."""
    results = list(results)
    ok = [r for r in results if r.ok]
    ttft = [r.ttft_s * 1000 for r in ok if r.ttft_s is not None]
    e2e = [r.e2e_s * 1000 for r in ok if r.e2e_s is not None]
    itl = [gap * 1000 for r in ok for gap in r.itl_s]
    tps = [t for r in ok if (t := r.tokens_per_s) is not None]
    out: dict[str, Any] = {
        "requests": len(results),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "empty": sum(1 for r in ok if r.empty),
        "wall_s": round(wall_s, 3),
        "requests_per_s": round(len(ok) / wall_s, 3) if wall_s > 0 else math.nan,
        "output_tokens": sum(r.output_tokens for r in ok),
        "output_tokens_per_s": round(sum(r.output_tokens for r in ok) / wall_s, 1)
        if wall_s > 0
        else math.nan,
    }
    for name, values in (("ttft", ttft), ("itl", itl), ("e2e", e2e)):
        for q in (50, 95, 99):
            out[f"{name}_p{q}_ms"] = round(percentile(values, q), 2)
    for q in (50, 95):
        out[f"tokens_per_s_p{q}"] = round(percentile(tps, q), 1)
    errors: dict[str, int] = {}
    for r in results:
        if not r.ok:
            key = r.error.split(":", 1)[0] if r.error else "unknown"
            errors[key] = errors.get(key, 0) + 1
    out["error_kinds"] = errors
    return out


def as_json(result: RequestResult) -> dict[str, Any]:
    return asdict(result)
