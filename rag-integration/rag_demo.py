"""Retrieval-augmented chat against the stack's own endpoints, end to end:

1. embed the documents (``POST /v1/embeddings``, EmbeddingGemma's document prefix),
2. embed the question (its query prefix) and take the nearest documents by cosine similarity,
3. rerank those candidates (``POST /v1/rerank``, the cross-encoder) and keep the best,
4. build the cache-friendly prompt (prompt_builder.py: fixed system prompt, documents in a
   stable order, the question last) and ask tier_low.

Every call goes to the router (or to LiteLLM with a team key: the same paths, the model names
are the same). Nothing here is Stratum-specific beyond the model names: it is the client code a
team writes for its own RAG.

    python rag-integration/rag_demo.py --base-url http://127.0.0.1:9000/v1
    python rag-integration/rag_demo.py --base-url http://127.0.0.1:4000/v1 --api-key sk-...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
from prompt_builder import Document, build_messages

# EmbeddingGemma's task prefixes (Google's model card): the engine embeds what it is given, so
# the client adds them.
QUERY_PREFIX = "task: search result | query: "
DOCUMENT_PREFIX = "title: {title} | text: "

SYSTEM = (
    "You answer questions about the team's documents. Use only the documents given; cite them "
    "by their [id]. If they do not hold the answer, say so."
)

CORPUS = [
    Document(
        "handbook-01",
        "New members get a laptop and an account on their first day; the "
        "account is created by the IT desk on floor 2.",
        "Onboarding",
    ),
    Document(
        "handbook-02",
        "Expenses under 50 euros need no approval; above that, the team "
        "lead approves them in the expenses tool within a week.",
        "Expenses",
    ),
    Document(
        "handbook-03",
        "The on-call rotation changes every Monday at 10:00; swaps are "
        "agreed in the #oncall channel and recorded in the rota.",
        "On-call",
    ),
    Document(
        "handbook-04",
        "Production deploys are frozen from Friday 16:00 to Monday 09:00 "
        "unless the incident commander approves an exception.",
        "Deploys",
    ),
    Document(
        "handbook-05",
        "Holidays are requested in the HR portal at least two weeks ahead; "
        "public holidays follow the office's country.",
        "Holidays",
    ),
]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class Client:
    """The three calls, with OpenAI-style errors turned into exceptions that say what failed."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"POST {path}: HTTP {r.status_code}: {r.text[:300]}")
        answer: dict[str, Any] = r.json()
        return answer

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        data = self._post("/embeddings", {"model": model, "input": list(texts)})["data"]
        return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]

    def rerank(self, model: str, query: str, documents: Sequence[str], top_n: int) -> list[int]:
        body = {"model": model, "query": query, "documents": list(documents), "top_n": top_n}
        return [r["index"] for r in self._post("/rerank", body)["results"]]

    def chat(self, model: str, messages: list[dict[str, Any]], max_tokens: int) -> str:
        body = {"model": model, "messages": messages, "max_tokens": max_tokens}
        content = self._post("/chat/completions", body)["choices"][0]["message"]["content"]
        return str(content or "")


def answer(
    client: Client,
    question: str,
    corpus: Sequence[Document] = CORPUS,
    *,
    candidates: int = 4,
    keep: int = 2,
    embed_model: str = "gemma-embed",
    rerank_model: str = "gemma-rerank",
    chat_model: str = "tier_low",
    max_tokens: int = 128,
) -> dict[str, Any]:
    """Retrieve, rerank, prompt, ask: what each step chose and how long it took."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    doc_vectors = client.embed(
        embed_model, [DOCUMENT_PREFIX.format(title=d.title or "none") + d.text for d in corpus]
    )
    [query_vector] = client.embed(embed_model, [QUERY_PREFIX + question])
    timings["embed_s"] = time.perf_counter() - started
    ranked = sorted(range(len(corpus)), key=lambda i: -cosine(query_vector, doc_vectors[i]))
    nearest = ranked[:candidates]
    started = time.perf_counter()
    order = client.rerank(rerank_model, question, [corpus[i].text for i in nearest], keep)
    timings["rerank_s"] = time.perf_counter() - started
    chosen = [corpus[nearest[i]] for i in order]
    messages = build_messages(SYSTEM, chosen, question)
    started = time.perf_counter()
    reply = client.chat(chat_model, messages, max_tokens)
    timings["chat_s"] = time.perf_counter() - started
    return {
        "question": question,
        "nearest": [corpus[i].id for i in nearest],
        "reranked": [d.id for d in chosen],
        "prompt_messages": messages,
        "answer": reply,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base-url",
        default="http://127.0.0.1:9000/v1",
        help="the router's (or LiteLLM's) OpenAI base URL",
    )
    parser.add_argument("--api-key", default=None, help="ROUTER_API_KEY, or a LiteLLM key")
    parser.add_argument("--question", default="Who approves an expense of 80 euros?")
    parser.add_argument(
        "--chat-model",
        default="tier_low",
        help="tier_low (the router's name) or gemma4-tasks (LiteLLM's)",
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args(argv)
    client = Client(args.base_url, args.api_key, args.timeout)
    try:
        result = answer(client, args.question, chat_model=args.chat_model)
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"question:  {result['question']}")
        print(f"nearest:   {', '.join(result['nearest'])}  (embeddings, cosine)")
        print(f"reranked:  {', '.join(result['reranked'])}  (cross-encoder)")
        print(f"answer:    {result['answer'].strip()[:500]}")
        print("timings:   " + ", ".join(f"{k} {v:.3f}" for k, v in result["timings"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
