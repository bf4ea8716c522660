"""Cache affinity across replicas: multi-turn conversations through the router, prompt tokens
the engines took from their cache, and time to first token.

    python benchmarks/affinity_bench.py --base-url http://127.0.0.1:9000 \
        [--conversations 8] [--turns 4] [--context-chars 1500] [--json out.json]

Each conversation opens with its own long context (a document, as a RAG chat would) and then
asks follow-up questions; every turn resends the whole history, so an engine that has seen the
conversation can serve its prefix from cache (vLLM's prefix cache, llama-server's slot cache),
and one that has not prefills it all. Run it against a router with ``affinity: true`` and one
with ``affinity: false`` in front of the same replicas: the difference is what affinity buys.
Conversations run side by side, turns in order, each turn after a random pause (a user reading
and typing: ``--think-ms``, seeded), so they interleave as real ones do. Cached tokens come from
the engine's own report (llama-server ``timings.cache_n``, vLLM
``usage.prompt_tokens_details.cached_tokens``); turn 1 of each conversation is reported apart
(nothing can be cached yet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
from measure import RequestResult, auth_headers, chat_body, percentile, stream_chat

WORDS = (
    "tide",
    "basin",
    "orbit",
    "delta",
    "glacier",
    "harbor",
    "meadow",
    "summit",
    "canyon",
    "lagoon",
    "plateau",
    "estuary",
    "ridge",
    "fjord",
    "atoll",
    "steppe",
)


def document(seed: int, chars: int) -> str:
    """A context no other conversation shares (a different document per conversation)."""
    rng = random.Random(seed)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS) + str(rng.randrange(1000)))
    return " ".join(words)[:chars]


async def conversation(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    model: str,
    seed: int,
    turns: int,
    context_chars: int,
    max_tokens: int,
    think_ms: float = 0.0,
) -> list[tuple[int, RequestResult]]:
    messages: list[dict[str, str]] = [
        {
            "role": "system",
            "content": "Answer from this document only.\n" + document(seed, context_chars),
        },
        {"role": "user", "content": "Summarise the document."},
    ]
    out: list[tuple[int, RequestResult]] = []
    pauses = random.Random(seed)
    for turn in range(1, turns + 1):
        await asyncio.sleep(pauses.uniform(0, think_ms) / 1000)
        body = chat_body(model, messages, max_tokens)
        result = await stream_chat(client, url, body, headers)
        out.append((turn, result))
        messages += [
            {"role": "assistant", "content": f"Answer {turn}."},
            {"role": "user", "content": f"Follow-up question {turn}?"},
        ]
    return out


async def run(
    base_url: str,
    *,
    api_key: str = "",
    model: str = "tier_high",
    conversations: int = 8,
    turns: int = 4,
    context_chars: int = 1500,
    max_tokens: int = 4,
    seed: int = 0,
    think_ms: float = 1500.0,
) -> dict[str, Any]:
    url = base_url.rstrip("/") + "/v1/chat/completions"
    headers = auth_headers(api_key)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=10)) as client:
        results = await asyncio.gather(
            *(
                conversation(
                    client,
                    url,
                    headers,
                    model,
                    seed * 1000 + c,
                    turns,
                    context_chars,
                    max_tokens,
                    think_ms,
                )
                for c in range(conversations)
            )
        )
    later = [r for conv in results for turn, r in conv if turn > 1]
    first = [r for conv in results for turn, r in conv if turn == 1]
    errors = [r.error for conv in results for _, r in conv if not r.ok]
    replicas_per_conversation = [
        len({r.headers.get("x-router-replica") for _, r in conv}) for conv in results
    ]

    def cached_share(rs: list[RequestResult]) -> float:
        prompt = sum(r.prompt_tokens or 0 for r in rs)
        return sum(r.cached_tokens or 0 for r in rs) / prompt if prompt else 0.0

    def ttft_ms(rs: list[RequestResult], q: float) -> float:
        return percentile([r.ttft_s * 1000 for r in rs if r.ttft_s is not None], q)

    return {
        "conversations": conversations,
        "turns": turns,
        "context_chars": context_chars,
        "think_ms": think_ms,
        "errors": len(errors),
        "error_kinds": sorted({e.split(":")[0] for e in errors}),
        "later_turns": {
            "requests": len(later),
            "cached_prompt_share": round(cached_share(later), 3),
            "ttft_p50_ms": round(ttft_ms(later, 50), 1),
            "ttft_p95_ms": round(ttft_ms(later, 95), 1),
        },
        "first_turns": {
            "requests": len(first),
            "cached_prompt_share": round(cached_share(first), 3),
            "ttft_p50_ms": round(ttft_ms(first, 50), 1),
        },
        "conversations_on_one_replica": sum(1 for n in replicas_per_conversation if n == 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True, help="the router (or any OpenAI server)")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--model", default="tier_high", help="a model that pins one tier")
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--context-chars", type=int, default=1500)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="a new seed, new documents")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=1500.0,
        help="longest pause before each turn (uniform, seeded)",
    )
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(
            args.base_url,
            api_key=args.api_key,
            model=args.model,
            conversations=args.conversations,
            turns=args.turns,
            context_chars=args.context_chars,
            max_tokens=args.max_tokens,
            seed=args.seed,
            think_ms=args.think_ms,
        )
    )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
