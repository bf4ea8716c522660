#!/usr/bin/env python3
"""One person's script floods the 26B: do the others still get it, and how long do they wait?

    python benchmarks/fairness_bench.py [--people 3] [--flood 12] [--seconds 20] [--json out.json]
    python benchmarks/fairness_bench.py --llama-server PATH --model GGUF ...   # real CPU engines
    ... --llama-server PATH --model GGUF --flood-spread 4   # the script's answers vary 16-fold
    python benchmarks/fairness_bench.py --flood-unsure [--no-second-opinion]   # see below

Starts the router (its production command line) in front of two engines: by default the
package's fake engines with real slot behaviour (tier_high: a llama-server with ``--slots 2``
slots, about a second a request; tier_low: a vLLM with 16), or, with ``--llama-server`` and
``--model``, two CPU llama-servers serving that GGUF (tier_high with ``--parallel 2``); the router
reads tier_high's slots from its ``/props``. Then, for ``--seconds`` each, two phases:

- **alone**: ``--people`` people (each a ``user``: the router counts each as a person) ask hard
  questions through the routed model (gemma4-fast), one at a time each, a moment apart
  (0.5-2 s, seeded);
- **flood**: the same, while one more person (``script``) keeps ``--flood`` requests to
  gemma4-smart in flight, sending the next as each ends (after ``Retry-After`` on a 429).

For the people: how many of their hard prompts the router meant for tier_high (policy tier
tier_high: each prompt is checked with /v1/route first) were answered by it, and their time to
first token p50/p95 (measure.py's definition: to the first chunk with text). For the flood: its
answers per second, its 429s, and any 5xx (there must be none). Prints a Markdown table.

``--flood-unsure``: the script sends routed requests (gemma4-fast) instead, prompts the
complexity model is unsure of, so each of its decisions asks the encoder's second opinion (a few
milliseconds of the router's CPU, in a worker thread, one at a time; while 8 wait, the next goes
without). The people's prompts are sure ones: what their time to first token shows is what the
script's second opinions take from them. ``--no-second-opinion`` runs the router without the
encoder (``ROUTER_SECOND_OPINION=false``) for the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from measure import add_second_opinion_argument, chat_body, percentile, stream_chat

from adaptive_router.testing.processes import Process, free_ports, running

LOW, HIGH = "gemma-4-e4b", "gemma-4-26b-a4b"

HARD_PROMPTS = (
    "Prove that there are infinitely many primes, then derive the complexity of the sieve of "
    "Eratosthenes step by step.",
    "Derive the gradient of the softmax cross-entropy loss with respect to the logits and explain "
    "why it is numerically stable to compute them together.",
    "Design a database migration that splits a 2 TB orders table into monthly partitions with "
    "under a minute of downtime; give the steps, the locking, and how to roll back.",
    "Compare Adam and SGD with momentum for training transformers: convergence theory, "
    "generalisation, and when each one wins, with the reasoning behind each claim.",
    "Write a lock-free single-producer single-consumer ring buffer in C11 with memory orderings, "
    "and prove that it never loses or duplicates an element.",
    "Explain why the halting problem is undecidable, with the diagonal argument written out, "
    "then show how Rice's theorem follows from it.",
)
UNSURE_PROMPTS = (
    "How do noise-cancelling headphones work?",
    "How does a transistor amplify a signal?",
    "How do vaccines train the immune system?",
    "Explain how HTTPS keeps a password safe on the wire.",
    "What is overfitting and how do I spot it?",
)
"""Prompts the shipped complexity model is unsure of (checked at run time with /v1/route)."""


@dataclass
class Phase:
    people: list[dict[str, Any]] = field(default_factory=list)
    """One row per person's request: policy tier, tier, ttft_s, status, queue_ms."""
    flood_ok: int = 0
    flood_429: int = 0
    flood_5xx: int = 0
    flood_other: int = 0
    flood_second_opinions: int = 0
    """The script's answers whose decision asked the encoder (x-router-second-opinion)."""
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        meant = [r for r in self.people if r["policy"] == "tier_high" and r["status"] == 200]
        high = [r for r in meant if r["tier"] == "tier_high"]
        ttft = [r["ttft_s"] for r in self.people if r["ttft_s"] is not None]
        return {
            "people_requests": len(self.people),
            "people_errors": sum(1 for r in self.people if r["status"] != 200),
            "hard_prompts": len(meant),
            "on_tier_high": len(high),
            "share_on_tier_high": round(len(high) / len(meant), 4) if meant else None,
            "degraded_busy": sum(1 for r in meant if r["reason"] == "busy"),
            "ttft_p50_s": round(percentile(ttft, 50), 3),
            "ttft_p95_s": round(percentile(ttft, 95), 3),
            "flood_answered": self.flood_ok,
            "flood_answered_per_s": round(self.flood_ok / self.seconds, 3) if self.seconds else 0,
            "flood_429": self.flood_429,
            "flood_5xx": self.flood_5xx,
            "flood_other_errors": self.flood_other,
            "flood_second_opinions": self.flood_second_opinions,
            "seconds": round(self.seconds, 1),
        }


async def person(
    client: httpx.AsyncClient, name: str, prompts: list[str], until: float, phase: Phase,
    rng: random.Random, extra: dict[str, Any], max_tokens: int,
) -> None:  # fmt: skip
    """One person asking, one question at a time, a moment apart; every question new."""
    n = 0
    while time.monotonic() < until:
        text = f"{prompts[n % len(prompts)]} (question {n + 1} from {name})"
        n += 1
        body = chat_body("gemma4-fast", [{"role": "user", "content": text}], max_tokens,
                         user=name, **extra)  # fmt: skip
        result = await stream_chat(client, "/v1/chat/completions", body)
        headers = result.headers
        tier = headers.get("x-router-tier", "")
        phase.people.append({
            "person": name,
            "status": result.status,
            "tier": tier,
            "policy": headers.get("x-router-policy-tier", tier),
            "reason": headers.get("x-router-reason", ""),
            "ttft_s": result.ttft_s,
            "queue_ms": int(headers.get("x-router-queue-ms", "0")),
            "error": result.error,
        })  # fmt: skip
        await asyncio.sleep(rng.uniform(0.5, 2.0))


async def flooder(
    client: httpx.AsyncClient, until: float, phase: Phase, extra: dict[str, Any], max_tokens: int,
    n: int, spread: float, rng: random.Random, unsure: list[str] | None = None,
) -> None:  # fmt: skip
    """One of the script's parallel workers: the next request as soon as one ends. With
    ``spread`` > 1 its answers vary, log-uniformly, from max_tokens / spread to max_tokens *
    spread tokens, as real answers do."""
    i = 0
    while time.monotonic() < until:
        i += 1
        length = max_tokens if spread <= 1 else round(max_tokens * spread ** rng.uniform(-1, 1))
        body = {"model": "gemma4-smart", "max_tokens": length, "user": "script",
                "messages": [{"role": "user", "content": f"{HARD_PROMPTS[0]} #{n}.{i}"}],
                **extra}  # fmt: skip
        if unsure:  # routed, and the complexity model unsure of it
            body["model"] = "gemma4-fast"
            body["messages"] = [{"role": "user", "content": unsure[(n + i) % len(unsure)]}]
        try:
            response = await client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError:
            phase.flood_other += 1
            continue
        if response.status_code == 200:
            phase.flood_ok += 1
            phase.flood_second_opinions += "x-router-second-opinion" in response.headers
        elif response.status_code == 429:
            phase.flood_429 += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        elif response.status_code >= 500:
            phase.flood_5xx += 1
        else:
            phase.flood_other += 1


async def hard_prompts(client: httpx.AsyncClient) -> list[str]:
    """The prompts the router itself means for tier_high (its scorer may change)."""
    out = []
    for text in HARD_PROMPTS:
        r = await client.post("/v1/route", json={
            "model": "gemma4-fast", "messages": [{"role": "user", "content": text}]})  # fmt: skip
        if r.json()["decision"]["policy_tier"] == "tier_high":
            out.append(text)
    if not out:
        raise SystemExit("error: the router sends none of the hard prompts to tier_high")
    return out


async def unsure_prompts(client: httpx.AsyncClient, second_opinion: bool) -> list[str]:
    """The prompts the router is unsure of: with the encoder, those whose decision asks it;
    without, those whose score is within the shipped encoder's band (0.18-0.82)."""
    from adaptive_router.encoder import shipped_encoder
    from adaptive_router.model import sigmoid

    band = shipped_encoder().cascade.band
    low, high = sigmoid(-band), sigmoid(band)
    out = []
    for text in UNSURE_PROMPTS:
        r = await client.post("/v1/route", json={
            "model": "gemma4-fast", "messages": [{"role": "user", "content": text}]})  # fmt: skip
        decision = r.json()["decision"]
        asked = decision["second_opinion"] is not None
        if asked if second_opinion else low < decision["score"] < high:
            out.append(text)
    if not out:
        raise SystemExit("error: the router is sure of every UNSURE_PROMPTS prompt")
    return out


async def run_phase(
    url: str, people: int, flood: int, seconds: float, seed: int, extra: dict[str, Any],
    max_tokens: int, spread: float = 1.0, unsure: bool = False, second_opinion: bool = True,
) -> Phase:  # fmt: skip
    phase = Phase()
    limits = httpx.Limits(max_connections=people + flood + 8, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=300.0, limits=limits) as client:
        prompts = await hard_prompts(client)
        flood_prompts = await unsure_prompts(client, second_opinion) if unsure else None
        started = time.monotonic()
        until = started + seconds
        tasks = [
            person(client, f"person{i + 1}", prompts[i:] + prompts[:i], until, phase,
                   random.Random(seed + i), extra, max_tokens)
            for i in range(people)
        ]  # fmt: skip
        tasks += [flooder(client, until, phase, extra, max_tokens, n, spread,
                          random.Random(seed * 1000 + n), flood_prompts)
                  for n in range(flood)]  # fmt: skip
        await asyncio.gather(*tasks)
        phase.seconds = time.monotonic() - started
    return phase


def engines(args: argparse.Namespace, work: Path, ports: list[int]) -> list[Process]:
    low_port, high_port = ports
    if args.llama_server:

        def llama(name: str, port: int, alias: str, parallel: int) -> Process:
            argv = [args.llama_server, "--model", str(args.model), "--alias", alias,
                    "--host", "127.0.0.1", "--port", str(port), "--metrics",
                    "--ctx-size", str(4096 * parallel), "--parallel", str(parallel),
                    "--threads", str(args.threads)]  # fmt: skip
            return Process(name, argv, work, ready_url=f"http://127.0.0.1:{port}/health")

        return [llama("tier-low", low_port, LOW, 4), llama("tier-high", high_port, HIGH, 2)]
    py = sys.executable

    def fake(name: str, port: int, model: str, flavor: str, slots: int, delay_ms: float) -> Process:
        argv = [py, "-m", "adaptive_router.testing.fake_engine", "--port", str(port),
                "--model", model, "--flavor", flavor, "--slots", str(slots),
                "--first-token-delay-ms", str(delay_ms), "--token-delay-ms", str(delay_ms),
                "--tokens", str(args.tokens)]  # fmt: skip
        return Process(name, argv, work, ready_url=f"http://127.0.0.1:{port}/health")

    # tier_high: about args.hold_s a request; tier_low: four times faster.
    per_token_ms = args.hold_s * 1000 / (args.tokens + 1)
    return [fake("tier-low", low_port, LOW, "vllm", 16, per_token_ms / 4),
            fake("tier-high", high_port, HIGH, "llamacpp", 2, per_token_ms)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--flood", type=int, default=12, help="the script's requests in flight")
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hold-s", type=float, default=1.0,
                        help="fake engines: seconds a request holds a tier_high slot")  # fmt: skip
    parser.add_argument("--tokens", type=int, default=16, help="fake engines: tokens per answer")
    parser.add_argument("--llama-server", help="run two CPU llama-servers from this binary")
    parser.add_argument("--model", type=Path, help="the GGUF they serve (with --llama-server)")
    parser.add_argument("--max-tokens", type=int, default=3000,
                        help="real engines: tokens per answer (ignore_eos)")  # fmt: skip
    parser.add_argument("--flood-spread", type=float, default=1.0,
                        help="real engines: the script's answers last from max-tokens / F to "
                             "max-tokens * F tokens (log-uniform, seeded)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="real engines: threads each")
    parser.add_argument("--flood-unsure", action="store_true",
                        help="the script's flood: routed prompts the complexity model is unsure "
                             "of (each asks the encoder's second opinion)")  # fmt: skip
    add_second_opinion_argument(parser)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if bool(args.llama_server) != bool(args.model):
        parser.error("--llama-server and --model go together")
    if args.flood_spread != 1.0 and not args.llama_server:
        parser.error("--flood-spread needs real engines: the fake ones ignore max_tokens")

    work = Path(tempfile.mkdtemp(prefix="fairness-"))
    low_port, high_port, router_port = free_ports(3)
    router = Process(
        "router",
        [sys.executable, "-m", "adaptive_router.middleware",
         "--tier-low-url", f"http://127.0.0.1:{low_port}/v1",
         "--tier-high-url", f"http://127.0.0.1:{high_port}/v1",
         "--host", "127.0.0.1", "--port", str(router_port), "--log-level", "warning"],
        work, ready_url=f"http://127.0.0.1:{router_port}/livez",
        env={"ROUTER_GPU_MONITOR": "false", "ROUTER_HEALTH_INTERVAL_S": "0.5",
             "ROUTER_SECOND_OPINION": str(args.second_opinion).lower()},
    )  # fmt: skip
    url = f"http://127.0.0.1:{router_port}"
    extra = {"ignore_eos": True} if args.llama_server else {}
    results: dict[str, Any] = {"engines": "llama-server" if args.llama_server else "fake",
                               "people": args.people, "flood": args.flood,
                               "flood_unsure": args.flood_unsure,
                               "second_opinion": args.second_opinion}  # fmt: skip
    with ExitStack() as stack:
        stack.enter_context(running(*engines(args, work, [low_port, high_port]), router))
        deadline = time.monotonic() + 30
        while httpx.get(url + "/health").json()["tiers"]["tier_high"].get("slots") != 2:
            if time.monotonic() > deadline:
                raise SystemExit("error: the router did not read tier_high's 2 slots from /props")
            time.sleep(0.1)
        for name, flood in (("alone", 0), ("flood", args.flood)):
            phase = asyncio.run(run_phase(url, args.people, flood, args.seconds, args.seed,
                                          extra, args.max_tokens, args.flood_spread,
                                          args.flood_unsure, args.second_opinion))  # fmt: skip
            results[name] = phase.summary()
            print(f"  {name:5s} {json.dumps(results[name])}")
    alone, flooded = results["alone"], results["flood"]
    print()
    print("| phase | people's hard prompts | on tier_high | share | TTFT p50 (s) | TTFT p95 (s) "
          "| degraded (busy) | flood answers/s | flood 429s | 5xx "
          "| flood second opinions |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in (("alone", alone), (f"flood of {args.flood}", flooded)):
        share = r["share_on_tier_high"]
        print(f"| {name} | {r['hard_prompts']} | {r['on_tier_high']} | "
              f"{'—' if share is None else f'{share:.0%}'} | {r['ttft_p50_s']:.2f} | "
              f"{r['ttft_p95_s']:.2f} | {r['degraded_busy']} | {r['flood_answered_per_s']:.2f} | "
              f"{r['flood_429']} | {r['flood_5xx'] + r['people_errors']} | "
              f"{r['flood_second_opinions']} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
