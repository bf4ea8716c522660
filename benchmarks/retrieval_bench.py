#!/usr/bin/env python3
"""Embedding throughput and rerank latency of the retrieval engines, through the router.

Against a running stack (the real models):

    python benchmarks/retrieval_bench.py --base-url http://127.0.0.1:9000/v1

Or on this machine, with nothing running (``--spawn``): writes synthetic llama-architecture GGUFs
with the real models' layer shapes (random weights, F16; ``--shapes real``: EmbeddingGemma 300M's
24 x 768 and bge-reranker-v2-m3's 24 x 1024; ``--shapes tiny``: seconds, to check the tool),
starts two CPU llama-servers with the compose file's ``embed`` and ``rerank`` commands and the
router in front of them, and measures through the router. The matrices per token are the real
models' sizes, but not their formats (F16 here; the shipped files are Q4_0 and Q4_K_M, which
llama.cpp's CPU kernels run faster) nor their attention (EmbeddingGemma's and XLM-R's are
bidirectional; a llama model's is causal): an order of magnitude, not the real models' figure.
The vocabulary is bytes, so each input is sized in tokens (``--input-tokens``), not in words.

It measures:
- embeddings: for each batch size, ``--requests`` requests one after another (and
  ``--concurrency`` at once), inputs/s and tokens/s (the engine's usage.prompt_tokens);
- rerank: a query and N documents of ``--input-tokens`` each, per N, latency p50/p95.

Writes ``OUT/retrieval.json`` and ``OUT/retrieval.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from measure import auth_headers, int_list, percentile

ROOT = Path(__file__).resolve().parent.parent

# (n_embd, n_layer, n_head, n_ff) of the real models (their config.json on the Hub, as the
# GGUF metadata repeats it): EmbeddingGemma 300M (gemma-embedding: hidden 768, 24 layers,
# 3 heads of 256, FFN 1152); bge-reranker-v2-m3 (XLM-RoBERTa large: 1024, 24, 16, 4096).
SHAPES: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "real": {"embed": (768, 24, 3, 1152), "rerank": (1024, 24, 16, 4096)},
    "tiny": {"embed": (64, 2, 4, 128), "rerank": (64, 2, 4, 128)},
}
WORDS = (
    "panda",
    "bamboo",
    "river",
    "mountain",
    "lighthouse",
    "keeper",
    "harbour",
    "engine",
    "router",
    "stratum",
    "invoice",
    "holiday",
    "deploy",
    "rotation",
    "laptop",
    "account",
)


def text_of(tokens: int, seed: int) -> str:
    """``tokens`` tokens for the byte vocabulary of the synthetic models: one per byte, with the
    BOS token (words joined by "-": a space would be SentencePiece's three-byte U+2581)."""
    words: list[str] = []
    size = 0
    i = seed
    while size < tokens - 1:
        word = WORDS[i % len(WORDS)]
        words.append(word)
        size += len(word) + 1
        i = i * 7 + 3
    return "-".join(words)[: max(tokens - 1, 1)]


class Retrieval:
    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key or ""),
            timeout=timeout,
            limits=httpx.Limits(max_connections=64),
        )

    def post(self, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        r = self.http.post(path, json=body)
        elapsed = time.perf_counter() - started
        if r.status_code != 200:
            raise RuntimeError(f"POST {path}: HTTP {r.status_code}: {r.text[:300]}")
        answer: dict[str, Any] = r.json()
        return elapsed, answer


def bench_embeddings(
    client: Retrieval, model: str, batch: int, requests: int, concurrency: int, input_tokens: int
) -> dict[str, Any]:
    bodies = [
        {"model": model, "input": [text_of(input_tokens, r * batch + i) for i in range(batch)]}
        for r in range(requests)
    ]
    client.post("/embeddings", bodies[0])  # warm-up: first request pays for buffers
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda b: client.post("/embeddings", b), bodies))
    wall = time.perf_counter() - started
    latencies = [a[0] for a in answers]
    tokens = sum(a[1]["usage"]["prompt_tokens"] for a in answers)
    dims = {len(d["embedding"]) for a in answers for d in a[1]["data"]}
    return {
        "batch": batch,
        "concurrency": concurrency,
        "requests": requests,
        "inputs": batch * requests,
        "tokens": tokens,
        "tokens_per_input": round(tokens / (batch * requests), 1),
        "seconds": round(wall, 3),
        "inputs_per_s": round(batch * requests / wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "dimension": sorted(dims),
    }


def bench_rerank(
    client: Retrieval, model: str, documents: int, requests: int, input_tokens: int
) -> dict[str, Any]:
    body = {
        "model": model,
        "query": text_of(16, 99),
        "documents": [text_of(input_tokens, d) for d in range(documents)],
    }
    client.post("/rerank", body)  # warm-up
    latencies: list[float] = []
    tokens = 0
    for _ in range(requests):
        elapsed, answer = client.post("/rerank", body)
        latencies.append(elapsed)
        tokens += answer["usage"]["prompt_tokens"]
        scores = [r["relevance_score"] for r in answer["results"]]
        assert scores == sorted(scores, reverse=True), "rerank results are not best first"
    return {
        "documents": documents,
        "requests": requests,
        "tokens_per_request": tokens // requests,
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "documents_per_s": round(documents * requests / sum(latencies), 2),
        "tokens_per_s": round(tokens / sum(latencies), 1),
    }


def spawn(
    shapes: str, llama_server: Path, work: Path, logs: Path, stack: ExitStack, threads: int
) -> str:
    """Synthetic models, two CPU llama-servers with compose's commands, the router: its URL."""
    import gguf
    import numpy as np

    from adaptive_router.testing.processes import Process, free_port, running
    from stratum_tools import tiny_gguf
    from stratum_tools.compose import compose_argv

    rng = np.random.default_rng(0)
    urls: dict[str, str] = {}
    processes = []
    for kind, (n_embd, n_layer, n_head, n_ff) in SHAPES[shapes].items():
        path = work / f"synthetic-{kind}-{shapes}.gguf"
        if not path.exists():
            dtype = np.float32 if shapes == "tiny" else np.float16

            def matrix(rows: int, cols: int, dtype: Any = dtype) -> Any:
                return (rng.standard_normal((rows, cols)) * 0.02).astype(dtype)

            file_type = (
                gguf.LlamaFileType.ALL_F32 if shapes == "tiny" else gguf.LlamaFileType.MOSTLY_F16
            )
            tiny_gguf.write_llama(
                path,
                matrix,
                file_type,
                name=f"synthetic-{kind}",
                n_embd=n_embd,
                n_layer=n_layer,
                n_head=n_head,
                n_ff=n_ff,
                n_ctx=8192,
            )
        port = free_port()
        swap = {
            "--model": str(path),
            "--host": "127.0.0.1",
            "--port": str(port),
            "--threads": str(threads),
        }
        argv = [str(llama_server), *compose_argv(kind, {}, swap)]
        urls[kind] = f"http://127.0.0.1:{port}"
        processes.append(
            Process(
                f"bench-{kind}", argv, logs, ready_url=urls[kind] + "/health", start_timeout=300
            )
        )
    port = free_port()
    router = Process(
        "bench-router",
        [
            sys.executable,
            "-m",
            "adaptive_router.middleware",
            "--tier-low-url",
            urls["embed"] + "/v1",
            "--tier-high-url",
            urls["embed"] + "/v1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        logs,
        ready_url=f"http://127.0.0.1:{port}/livez",
        env={
            "ROUTER_EMBED_URL": urls["embed"] + "/v1",
            "ROUTER_RERANK_URL": urls["rerank"] + "/v1",
            "ROUTER_GPU_MONITOR": "false",
        },
    )
    stack.enter_context(running(*processes, router))
    return f"http://127.0.0.1:{port}/v1"


def render(report: dict[str, Any]) -> str:
    lines = [
        f"# Retrieval benchmark ({report['target']})",
        "",
        "| batch | concurrency | inputs | tokens/input | inputs/s | tokens/s | p50 ms | p95 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["embeddings"]:
        lines.append(
            f"| {r['batch']} | {r['concurrency']} | {r['inputs']} | {r['tokens_per_input']} "
            f"| {r['inputs_per_s']} | {r['tokens_per_s']} | {r['latency_p50_ms']} "
            f"| {r['latency_p95_ms']} |"
        )
    lines += [
        "",
        "| documents | tokens/request | p50 ms | p95 ms | documents/s | tokens/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rerank"]:
        lines.append(
            f"| {r['documents']} | {r['tokens_per_request']} | {r['latency_p50_ms']} "
            f"| {r['latency_p95_ms']} | {r['documents_per_s']} | {r['tokens_per_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="the router's (or LiteLLM's) OpenAI base URL")
    where.add_argument(
        "--spawn",
        action="store_true",
        help="start synthetic engines and a router here (needs --llama-server)",
    )
    parser.add_argument("--llama-server", type=Path, help="the llama-server binary (--spawn)")
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="real")
    parser.add_argument("--work", type=Path, default=ROOT / "artifacts" / "retrieval-models")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="--spawn: each engine's CPU threads (compose: RETRIEVAL_THREADS, 4)",
    )
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--embed-model", default="gemma-embed")
    parser.add_argument("--rerank-model", default="gemma-rerank")
    parser.add_argument("--batches", type=int_list, default=[1, 16], help="embedding batch sizes")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--documents", type=int_list, default=[10, 40], help="documents per rerank request"
    )
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--input-tokens", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "retrieval")
    args = parser.parse_args(argv)
    if args.spawn and args.llama_server is None:
        parser.error("--spawn needs --llama-server")
    with ExitStack() as stack:
        if args.spawn:
            args.work.mkdir(parents=True, exist_ok=True)
            base_url = spawn(
                args.shapes, args.llama_server, args.work, args.out / "logs", stack, args.threads
            )
            target = (
                f"synthetic {args.shapes}-shape models on this machine's CPU "
                f"({os.cpu_count()} cores, {args.threads} threads per engine)"
            )
        else:
            base_url = args.base_url
            target = base_url
        client = Retrieval(base_url, args.api_key, args.timeout)
        try:
            embeddings = [
                bench_embeddings(
                    client,
                    args.embed_model,
                    batch,
                    args.requests,
                    args.concurrency,
                    args.input_tokens,
                )
                for batch in args.batches
            ]
            rerank = [
                bench_rerank(client, args.rerank_model, n, args.requests, args.input_tokens)
                for n in args.documents
            ]
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    report = {
        "target": target,
        "input_tokens": args.input_tokens,
        "embeddings": embeddings,
        "rerank": rerank,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval.json").write_text(json.dumps(report, indent=2))
    (args.out / "retrieval.md").write_text(render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
