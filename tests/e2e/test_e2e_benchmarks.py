"""Every benchmark and RAG demo runs against the real CPU llama-server for a few seconds and
produces its report (numbers from a random-weight model: they show the tools work, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import stack

IGNORE_EOS = json.dumps({"ignore_eos": True})  # the random model may stop at once otherwise


def run(script: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(stack.ROOT / script), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == expect, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_bench(engines: tuple[stack.Endpoint, stack.Endpoint], artifacts: Path) -> None:
    out = artifacts / "bench"
    low = engines[0]
    run(
        "benchmarks/bench.py", "--base-url", low.url, "--model", stack.TIER_LOW_ALIAS,
        "--name", "llama-server-cpu", "--concurrency", "1,2", "--requests", "6",
        "--max-tokens", "16", "--prompt-set", "code", "--extra-body", IGNORE_EOS, "--out", str(out),
    )  # fmt: skip
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["concurrency"] for r in runs] == [1, 2]
    assert all(r["errors"] == 0 and r["ttft_p50_ms"] > 0 for r in runs)
    assert all(r["output_tokens"] == 6 * 16 for r in runs)


def test_prefix_sweep_shows_the_cache_working(
    engines: tuple[stack.Endpoint, stack.Endpoint], artifacts: Path
) -> None:
    out = artifacts / "prefix"
    run(
        "benchmarks/radixattention_prefix_sweep.py", "--base-url", engines[0].url,
        "--model", stack.TIER_LOW_ALIAS, "--shares", "0,90", "--requests", "2",
        "--prompt-chars", "1500", "--extra-body", IGNORE_EOS, "--out", str(out),
    )  # fmt: skip
    rows = {(r["shared_prefix_pct"], r["structure"]): r for r in json.loads(
        (out / "prefix_sweep.json").read_text())}  # fmt: skip
    right, wrong = rows[(90, "system-first")], rows[(90, "documents-first")]
    assert right["cached_tokens_p50"] > 0.8 * right["prompt_tokens_p50"]
    assert wrong["cached_tokens_p50"] < 0.2 * wrong["prompt_tokens_p50"]
    assert "| 90 % | system-first |" in (out / "prefix_sweep.md").read_text()


def test_mtp_bench_without_speculation_reports_no_acceptance(
    engines: tuple[stack.Endpoint, stack.Endpoint], artifacts: Path
) -> None:
    low, high = engines
    out = artifacts / "mtp"
    run(
        "benchmarks/mtp_bench.py", "--on-url", low.url, "--off-url", high.url,
        "--model", stack.TIER_LOW_ALIAS, "--off-model", stack.TIER_HIGH_ALIAS, "--requests", "3",
        "--max-tokens", "24", "--extra-body", IGNORE_EOS, "--out", str(out),
    )  # fmt: skip
    report = json.loads((out / "mtp.json").read_text())
    assert report["on"]["errors"] == report["off"]["errors"] == 0
    assert report["on"]["acceptance_source"] == "not exposed by this endpoint"
    assert report["decode_speedup"] > 0


def test_radixattention_demo_right_structure_hits_the_cache(
    engines: tuple[stack.Endpoint, stack.Endpoint],
) -> None:
    done = run(
        "rag-integration/sglang_radixattention_demo.py", "--base-url", engines[0].url,
        "--model", stack.TIER_LOW_ALIAS, "--questions", "2", "--doc-repeat", "2",
        "--extra-body", IGNORE_EOS,
    )  # fmt: skip
    right, wrong = json.loads(done.stdout[: done.stdout.rindex("]") + 1])
    assert right["cached_tokens_p50"] > 10 * wrong["cached_tokens_p50"]
    assert right["shared_prefix_share_p50"] > 0.8 > 0.2 > wrong["shared_prefix_share_p50"]


def test_vision_demo_says_clearly_when_the_model_has_no_vision(
    engines: tuple[stack.Endpoint, stack.Endpoint],
) -> None:
    done = run(
        "rag-integration/vision_demo.py", "--base-url", engines[0].url,
        "--model", stack.TIER_LOW_ALIAS, "--budgets", "70,280", expect=2,
    )  # fmt: skip
    assert "did not accept the image" in done.stderr
    assert "image input is not supported" in done.stderr  # llama-server's own words
    assert "--mmproj" in done.stderr


def test_retrieval_bench_through_the_session_router(
    router: stack.Endpoint, artifacts: Path
) -> None:
    out = artifacts / "retrieval"
    run(
        "benchmarks/retrieval_bench.py", "--base-url", router.url + "/v1",
        "--api-key", stack.ROUTER_API_KEY, "--batches", "1,4", "--documents", "3",
        "--requests", "2", "--input-tokens", "64", "--out", str(out),
    )  # fmt: skip
    report = json.loads((out / "retrieval.json").read_text())
    assert [r["batch"] for r in report["embeddings"]] == [1, 4]
    assert all(r["inputs_per_s"] > 0 and r["tokens_per_input"] >= 32 for r in report["embeddings"])
    assert report["embeddings"][0]["dimension"] == [64]  # the tiny model's n_embd
    [rerank] = report["rerank"]
    assert rerank["documents"] == 3 and rerank["latency_p50_ms"] > 0
    assert "| documents |" in (out / "retrieval.md").read_text()


def test_retrieval_bench_spawns_its_own_engines(artifacts: Path) -> None:
    """--spawn: synthetic models, compose's embed and rerank commands, the router, here."""
    out = artifacts / "retrieval-spawn"
    run(
        "benchmarks/retrieval_bench.py", "--spawn", "--shapes", "tiny",
        "--llama-server", str(stack.llama_server_bin()), "--work", str(out / "models"),
        "--batches", "2", "--documents", "2", "--requests", "1", "--input-tokens", "32",
        "--out", str(out),
    )  # fmt: skip
    report = json.loads((out / "retrieval.json").read_text())
    assert report["target"].startswith("synthetic tiny-shape")
    assert report["embeddings"][0]["inputs"] == 2


def test_rag_demo_retrieves_reranks_and_asks_tier_low(router: stack.Endpoint) -> None:
    done = run(
        "rag-integration/rag_demo.py", "--base-url", router.url + "/v1",
        "--api-key", stack.ROUTER_API_KEY, "--json",
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert len(result["nearest"]) == 4  # the embeddings' candidates
    assert len(result["reranked"]) == 2 and set(result["reranked"]) <= set(result["nearest"])
    messages = result["prompt_messages"]
    assert messages[0]["role"] == "system" and messages[-1]["content"] == result["question"]
    # The reranked documents are in the prompt, in a stable order (by id: cache-friendly).
    ids = [i for i in sorted(result["reranked"])]
    documents = messages[1]["content"]
    assert all(f"[{i}]" in documents for i in ids)
    assert documents.index(f"[{ids[0]}]") < documents.index(f"[{ids[1]}]")
    assert set(result["timings"]) == {"embed_s", "rerank_s", "chat_s"}


def test_fairness_bench_on_real_cpu_engines(tiny_model: Path, artifacts: Path) -> None:
    """benchmarks/fairness_bench.py with its own two CPU llama-servers (tier_high: 2 slots, read
    by the router from /props): both phases run, people and flood are answered, no 5xx."""
    out = artifacts / "fairness-cpu.json"
    done = run(
        "benchmarks/fairness_bench.py", "--llama-server", str(stack.llama_server_bin()),
        "--model", str(tiny_model), "--max-tokens", "400", "--seconds", "6", "--json", str(out),
    )  # fmt: skip
    results = json.loads(out.read_text())
    assert results["engines"] == "llama-server"
    for phase in ("alone", "flood"):
        assert results[phase]["people_errors"] == 0 and results[phase]["hard_prompts"] > 0
    flood = results["flood"]
    assert flood["flood_answered"] > 0 and flood["flood_5xx"] == flood["flood_other_errors"] == 0
    assert "| flood of 12 |" in done.stdout
