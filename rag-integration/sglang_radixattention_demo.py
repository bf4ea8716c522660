"""Right against wrong prompt structure on any OpenAI-compatible endpoint: cache hits and TTFT.

    python rag-integration/sglang_radixattention_demo.py --base-url http://127.0.0.1:30000 \
        --model google/gemma-4-E4B-it --questions 6

Named for SGLang's RadixAttention, but any engine with a prefix cache shows the effect (vLLM with
prefix caching, llama.cpp's slot cache). The same documents and questions are sent twice: built
by prompt_builder.build_messages (system, documents, question) and by build_messages_wrong (a
per-request stamp and the question first). Reports, per structure, the shared prefix between
consecutive prompts, the cached prompt tokens the engine reports, and TTFT p50.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import httpx

# An entry script that measures with the benchmarks' client (benchmarks/measure.py): run from
# anywhere, it finds it beside its own folder (pytest and mypy read pyproject.toml's paths).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from measure import add_endpoint_arguments, auth_headers, chat_body, percentile, stream_chat
from prompt_builder import Document, build_messages, build_messages_wrong, shared_fraction
from prompts import _POLICY_SECTIONS, RAG_QUESTIONS, RAG_SYSTEM


def documents(repeat: int) -> list[Document]:
    return [
        Document(id=f"policy-{i:02d}", title=title, text=" ".join([rule] * repeat))
        for i, (title, rule) in enumerate(_POLICY_SECTIONS)
    ]


async def run_structure(
    structure: str, args: argparse.Namespace, client: httpx.AsyncClient
) -> dict[str, Any]:
    url = args.base_url.rstrip("/") + "/v1/chat/completions"
    headers = auth_headers(args.api_key)
    docs = documents(args.doc_repeat)
    previous = None
    ttfts, cached, shares, errors = [], [], [], 0
    for i in range(args.questions + 1):  # the first request fills the cache: not counted
        question = RAG_QUESTIONS[i % len(RAG_QUESTIONS)] + f" (#{i})"
        if structure == "right":
            messages = build_messages(RAG_SYSTEM, docs, question)
        else:
            stamp = f"Request {i} at {dt.datetime.now(dt.UTC).isoformat()}"
            messages = build_messages_wrong(RAG_SYSTEM, docs, question, stamp)
        result = await stream_chat(
            client,
            url,
            chat_body(args.model, messages, args.max_tokens, **args.extra_body),
            headers,
        )
        if previous is not None:
            shares.append(shared_fraction(previous, messages))
            if not result.ok or result.ttft_s is None:
                errors += 1
                print(f"error ({structure}): {result.error or 'no text'}", file=sys.stderr)
            else:
                ttfts.append(result.ttft_s * 1000)
                if result.cached_tokens is not None:
                    cached.append(result.cached_tokens)
        previous = messages
    return {
        "structure": structure,
        "requests": args.questions,
        "errors": errors,
        "shared_prefix_share_p50": round(percentile(shares, 50), 3),
        "cached_tokens_p50": percentile(cached, 50) if cached else None,
        "ttft_p50_ms": round(percentile(ttfts, 50), 2),
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout, connect=10)) as client:
        return [await run_structure(s, args, client) for s in ("right", "wrong")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_endpoint_arguments(parser)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument(
        "--doc-repeat", type=int, default=6, help="document length: sentences per document"
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--extra-body", type=json.loads, default={})
    args = parser.parse_args(argv)
    try:
        rows = asyncio.run(run(args))
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {args.base_url}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2))
    right, wrong = rows
    if right["errors"] == right["requests"] or wrong["errors"] == wrong["requests"]:
        print("error: every request of a structure failed (reasons above)", file=sys.stderr)
        return 1
    print(
        f"right structure: TTFT p50 {right['ttft_p50_ms']} ms, cached tokens p50 "
        f"{right['cached_tokens_p50']}; wrong: {wrong['ttft_p50_ms']} ms, "
        f"{wrong['cached_tokens_p50']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
