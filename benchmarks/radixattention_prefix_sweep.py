"""How much of a prompt must be a shared prefix before prefix caching pays, and how much prompt
structure matters: the data behind docs/RADIXATTENTION-OPERATIVE-TABLE.md.

    python benchmarks/radixattention_prefix_sweep.py --base-url http://127.0.0.1:8080 \
        --model gemma-4-26b-a4b --shares 0,25,50,75,90,95 --out results/prefix

For each share s of a prompt of about --prompt-chars characters, --requests prompts are sent one
after another. They share s of their text (a fixed instruction block and a shared document) and
differ in the rest (a per-request document and question). Two structures:

- system-first: shared part first, per-request part last. The shared part is a common prefix,
  which any prefix cache (SGLang's RadixAttention, vLLM's automatic prefix caching, llama.cpp's
  slot cache) can reuse.
- documents-first: per-request part first, shared part after it. Same content, no common prefix.

Reports TTFT p50 and the prompt tokens the engine says it took from its cache, where it says so
(llama.cpp ``timings.cache_n``, ``usage.prompt_tokens_details.cached_tokens`` on vLLM and SGLang).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

import httpx
from measure import (
    RequestResult,
    add_endpoint_arguments,
    auth_headers,
    chat_body,
    int_list,
    percentile,
    stream_chat,
)

SHARED_UNIT = (
    "Policy note: customer data stays on encrypted disks, access is reviewed each quarter, and "
    "incidents are reported to the on-call engineer within one hour. "
)
WORDS = [
    "order",
    "parcel",
    "refund",
    "invoice",
    "courier",
    "address",
    "label",
    "damaged",
    "late",
    "missing",
    "region",
    "warehouse",
    "customer",
    "ticket",
    "priority",
    "replacement",
    "colour",
    "size",
    "return",
    "account",
    "payment",
    "card",
    "voucher",
]


def text_of(unit: str, chars: int, **fmt: Any) -> str:
    out: list[str] = []
    k = 0
    while sum(len(p) for p in out) < chars:
        out.append(unit.format(k=k, **fmt) if fmt else unit)
        k += 1
    return "".join(out)[:chars]


def unique_text(seed: int, chars: int) -> str:
    """Text that differs from the first word on between seeds (no accidental shared prefix)."""
    rng = random.Random(seed)
    words = [f"Ticket {seed}:"]
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:chars]


def build_messages(structure: str, share: float, prompt_chars: int, i: int) -> list[dict[str, str]]:
    shared = text_of(SHARED_UNIT, int(prompt_chars * share))
    unique = unique_text(i, prompt_chars - len(shared))
    question = f"Question {i}: which ticket mentions order {i}?"
    if structure == "system-first":
        return [
            {"role": "system", "content": "Answer from the notes. " + shared},
            {"role": "user", "content": unique + question},
        ]
    return [
        {"role": "system", "content": unique},
        {"role": "user", "content": "Answer from the notes. " + shared + question},
    ]


async def sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    url = args.base_url.rstrip("/") + "/v1/chat/completions"
    headers = auth_headers(args.api_key)
    rows = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout, connect=10)) as client:
        for share_pct in args.shares:
            for structure in ("system-first", "documents-first"):
                results: list[RequestResult] = []
                for i in range(args.requests + 1):  # the first one fills the cache: not counted
                    messages = build_messages(structure, share_pct / 100, args.prompt_chars, i)
                    body = chat_body(args.model, messages, args.max_tokens, **args.extra_body)
                    result = await stream_chat(client, url, body, headers)
                    if i:
                        results.append(result)
                ok = [r for r in results if r.ok and r.ttft_s is not None]
                cached = [r.cached_tokens for r in ok if r.cached_tokens is not None]
                prompt = [r.prompt_tokens for r in ok if r.prompt_tokens]
                rows.append(
                    {
                        "shared_prefix_pct": share_pct,
                        "structure": structure,
                        "requests": len(results),
                        "errors": len(results) - len(ok),
                        "ttft_p50_ms": round(percentile([r.ttft_s * 1000 for r in ok], 50), 2),  # type: ignore[operator]
                        "cached_tokens_p50": percentile(cached, 50) if cached else None,
                        "prompt_tokens_p50": percentile(prompt, 50) if prompt else None,
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Shared prefix | Structure | TTFT p50 (ms) | Cached prompt tokens (p50) "
        "| Prompt tokens | Errors |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cached = (
            "not reported" if r["cached_tokens_p50"] is None else f"{r['cached_tokens_p50']:.0f}"
        )
        prompt = "?" if r["prompt_tokens_p50"] is None else f"{r['prompt_tokens_p50']:.0f}"
        lines.append(
            f"| {r['shared_prefix_pct']} % | {r['structure']} | {r['ttft_p50_ms']:.1f} "
            f"| {cached} | {prompt} | {r['errors']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_endpoint_arguments(parser)
    parser.add_argument(
        "--shares", type=int_list, default=[0, 25, 50, 75, 90, 95], help="shared prefix, percent"
    )
    parser.add_argument("--prompt-chars", type=int, default=6000)
    parser.add_argument("--requests", type=int, default=5, help="measured requests per cell")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--extra-body", type=json.loads, default={})
    parser.add_argument("--out", type=Path, help="folder for prefix_sweep.json and .md")
    args = parser.parse_args(argv)
    if any(not 0 <= s <= 95 for s in args.shares):
        parser.error("--shares must lie between 0 and 95")
    rows = asyncio.run(sweep(args))
    text = table(rows)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "prefix_sweep.json").write_text(json.dumps(rows, indent=2))
        (args.out / "prefix_sweep.md").write_text(text)
    return 0 if all(r["errors"] < r["requests"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
