"""Speculative decoding (MTP) on against off: the same prompts to two endpoints, one at a time.

    python benchmarks/mtp_bench.py --on-url http://127.0.0.1:8001 --off-url http://127.0.0.1:8000 \
        --model gemma-4-e4b --requests 20 --out results/mtp

Sequential requests (speculation helps most when the GPU is not busy with a batch). Reports decode
tokens/s and TTFT p50 for each endpoint, the speed-up, and the draft acceptance rate where the
engine exposes it: llama-server's ``timings.draft_n`` / ``draft_n_accepted`` per response, or
vLLM's ``vllm:spec_decode_num_accepted_tokens_total`` / ``..._num_draft_tokens_total`` counters
(read from /metrics before and after). docs/MTP-SPECULATIVE-DECODING.md says how to start each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from measure import RequestResult, auth_headers, chat_body, percentile, stream_chat
from prompts import PROMPT_SETS, prompt_set

from adaptive_router.service.probes import parse_samples

VLLM_ACCEPTED = "vllm:spec_decode_num_accepted_tokens_total"
VLLM_DRAFTED = "vllm:spec_decode_num_draft_tokens_total"


async def vllm_counters(client: httpx.AsyncClient, base_url: str) -> dict[str, float]:
    try:
        text = (await client.get(base_url.rstrip("/") + "/metrics")).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for (name, _), value in parse_samples(text).items():
        if name in (VLLM_ACCEPTED, VLLM_DRAFTED):
            out[name] = out.get(name, 0.0) + value
    return out


async def measure_endpoint(base_url: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    url = base_url.rstrip("/") + "/v1/chat/completions"
    headers = auth_headers(args.api_key)
    prompts = prompt_set(args.prompt_set)
    results: list[RequestResult] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout, connect=10)) as client:
        await stream_chat(client, url, chat_body(model, prompts[0], 16, **args.extra_body), headers)
        before = await vllm_counters(client, base_url)
        for i in range(args.requests):
            body = chat_body(model, prompts[i % len(prompts)], args.max_tokens, **args.extra_body)
            results.append(await stream_chat(client, url, body, headers))
        after = await vllm_counters(client, base_url)
    ok = [r for r in results if r.ok and r.tokens_per_s is not None]
    drafted = sum(r.draft_tokens or 0 for r in ok)
    accepted = sum(r.draft_accepted or 0 for r in ok)
    source = "llama.cpp timings" if drafted else None
    if not drafted and VLLM_DRAFTED in after:
        drafted = int(after[VLLM_DRAFTED] - before.get(VLLM_DRAFTED, 0))
        accepted = int(after.get(VLLM_ACCEPTED, 0) - before.get(VLLM_ACCEPTED, 0))
        source = "vLLM /metrics" if drafted else None
    return {
        "base_url": base_url,
        "model": model,
        "requests": len(results),
        "errors": sum(1 for r in results if not r.ok),
        "tokens_per_s_p50": round(percentile([r.tokens_per_s for r in ok], 50), 2),  # type: ignore[misc]
        "ttft_p50_ms": round(percentile([r.ttft_s * 1000 for r in ok], 50), 2),  # type: ignore[operator]
        "output_tokens_p50": percentile([r.output_tokens for r in ok], 50),
        "draft_tokens": drafted or None,
        "acceptance_rate": round(accepted / drafted, 3) if drafted else None,
        "acceptance_source": source or "not exposed by this endpoint",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--on-url", required=True, help="endpoint with speculative decoding")
    parser.add_argument("--off-url", required=True, help="the same model without it")
    parser.add_argument("--model", required=True)
    parser.add_argument("--off-model", help="model name on the off endpoint, if different")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--prompt-set", choices=PROMPT_SETS, default="code")
    parser.add_argument("--extra-body", type=json.loads, default={})
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, help="folder for mtp.json")
    args = parser.parse_args(argv)
    on = asyncio.run(measure_endpoint(args.on_url, args.model, args))
    off = asyncio.run(measure_endpoint(args.off_url, args.off_model or args.model, args))
    speedup = (
        round(on["tokens_per_s_p50"] / off["tokens_per_s_p50"], 3)
        if off["tokens_per_s_p50"] and off["tokens_per_s_p50"] == off["tokens_per_s_p50"]
        else None
    )
    report = {"on": on, "off": off, "decode_speedup": speedup}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "mtp.json").write_text(text + "\n")
    return 0 if on["errors"] < on["requests"] and off["errors"] < off["requests"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
