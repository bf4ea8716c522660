"""The GPU check's steps, each run as its own process by :mod:`stratum_tools.gpu_check.run`.

    python -m stratum_tools.gpu_check.steps facts  --out DIR [--cpu]
    python -m stratum_tools.gpu_check.steps model  --out DIR --work DIR [--cpu]
    python -m stratum_tools.gpu_check.steps nvml   --out DIR --work DIR [--cpu] [--torch-python PY]
    python -m stratum_tools.gpu_check.steps bench  --out DIR --work DIR --llama-server BIN [--cpu]
    python -m stratum_tools.gpu_check.steps plan   --out DIR
    python -m stratum_tools.gpu_check.steps report --out DIR

Each step writes ``DIR/steps/<step>.json``; ``report`` gathers them (and the step table the run
keeps in ``DIR/steps/status.json``: what ran, for how long, what was skipped for time) into
``DIR/report.json`` and ``DIR/report.md``. A step process finds the router, ``scripts/`` and
``benchmarks/`` on the ``PYTHONPATH`` the run gives it (``run.step_env``). Internal commands:
``fake-router`` (the router with ``adaptive_router.testing.FakeNvml`` fed from a file: the
``--cpu`` stand-in for a GPU), ``hog-memory`` and ``hog-util`` (PyTorch: hold GPU memory, keep
the GPU busy).

Only the standard library at import time: ``hog-*`` run under the PyTorch interpreter, which may
have nothing else; each step imports what it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from stratum_tools import ROOT

STEPS = [sys.executable, "-m", "stratum_tools.gpu_check.steps"]
"""This module as a command (its internal commands run under other interpreters as well)."""
GIB = 1024**3
MIB = 1024**2
ALIAS = "stratum-gpu-check"
HARD_PROMPT = (
    "Prove that there are infinitely many primes, step by step, and analyse the complexity of "
    "the sieve of Eratosthenes in Python."
)
SMI_QUERY = "name,memory.total,memory.used,compute_cap,driver_version"
TTFT_TARGET_PCT = 1.0

# The synthetic llama models: big enough that the GPU matters (about 1.6 B parameters, 3.2 GB in
# F16), or small enough for two CPU cores.
MODEL_SHAPES: dict[str, dict[str, int]] = {
    "gpu": {"n_embd": 2048, "n_layer": 24, "n_head": 16, "n_ff": 8192, "n_ctx": 16384},
    "cpu": {"n_embd": 256, "n_layer": 4, "n_head": 4, "n_ff": 1024, "n_ctx": 4096},
}
PARALLEL = 16


# --- small helpers --------------------------------------------------------------------------


def router_argv(python: str, engine_url: str, port: int) -> list[str]:
    """The router's production command line, both tiers on one engine, on loopback."""
    return [python, "-m", "adaptive_router.middleware", "--tier-low-url", engine_url + "/v1",
            "--tier-high-url", engine_url + "/v1", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def step_path(out: Path, step: str) -> Path:
    return out / "steps" / f"{step}.json"


def write_step(out: Path, step: str, data: Mapping[str, Any]) -> None:
    path = step_path(out, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"[{step}] wrote {path}")


def read_step(out: Path, step: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(step_path(out, step).read_text())
    except (OSError, ValueError):
        return None
    return data


def run_text(argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run a command; its exit status and output (127 and the reason when it cannot start)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, f"{exc.__class__.__name__}: {exc}"
    return done.returncode, (done.stdout + done.stderr).strip()


def smi_query(fields: str, index: int = 0) -> dict[str, str] | None:
    """One row of ``nvidia-smi --query-gpu=<fields>``; None without nvidia-smi or a GPU."""
    rc, text = run_text(
        ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits", f"-i={index}"]
    )
    if rc != 0 or not text:
        return None
    values = [v.strip() for v in text.splitlines()[0].split(",")]
    return dict(zip(fields.split(","), values, strict=False))


def rnd(value: float | None, digits: int = 2) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(value, digits)


# --- a. machine facts -----------------------------------------------------------------------


def cmd_facts(args: argparse.Namespace) -> int:
    facts: dict[str, Any] = {"mode": "cpu" if args.cpu else "gpu", "cpus": os.cpu_count()}
    rc, text = run_text(["nvidia-smi", f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"])
    facts["nvidia_smi"] = {"command": f"nvidia-smi --query-gpu={SMI_QUERY} "
                           "--format=csv,noheader,nounits", "rc": rc, "output": text}  # fmt: skip
    gpus = []
    if rc == 0:
        for line in text.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 5:
                name, total, used, cap, driver = parts
                gpus.append({"name": name, "memory_total_mib": float(total),
                             "memory_used_mib": float(used), "compute_cap": cap,
                             "driver_version": driver})  # fmt: skip
    facts["gpus"] = gpus
    rc, text = run_text(["nvcc", "--version"])
    facts["nvcc"] = text.splitlines()[-1] if rc == 0 and text else f"unavailable ({text[:200]})"
    facts["python"] = sys.version.split()[0]
    if not args.cpu and not gpus:
        facts["error"] = "no GPU: nvidia-smi did not list one (use --cpu on a machine without)"
        write_step(args.out, "facts", facts)
        return 1
    write_step(args.out, "facts", facts)
    for gpu in gpus:
        print(f"[facts] {gpu['name']}: {gpu['memory_total_mib']:.0f} MiB, "
              f"compute {gpu['compute_cap']}, driver {gpu['driver_version']}")  # fmt: skip
    print(f"[facts] nvcc: {facts['nvcc']}")
    return 0


# --- c. the model ---------------------------------------------------------------------------


def model_params(shape: Mapping[str, int], n_vocab: int) -> int:
    e, f, layers = shape["n_embd"], shape["n_ff"], shape["n_layer"]
    per_layer = 4 * e * e + 3 * e * f + 2 * e
    return 2 * n_vocab * e + layers * per_layer + e


def write_model(path: Path, shape: Mapping[str, int], seed: int = 0) -> dict[str, Any]:
    """A llama-architecture GGUF in F16 (norms F32) with random weights, written fast.

    The vocabulary and chat template are stratum_tools/tiny_gguf.py's (byte tokens: one token per
    byte of text). To write gigabytes in seconds every matrix is a view into one random F16
    pool (the layers share their values; the compute does not care), except the output layer,
    whose end-of-text row is zeroed so answers run to max_tokens.
    """
    import gguf
    import numpy as np

    from stratum_tools import tiny_gguf as tiny

    started = time.perf_counter()
    e, f, layers = shape["n_embd"], shape["n_ff"], shape["n_layer"]
    rng = np.random.default_rng(seed)
    pool = (
        rng.standard_normal(max(e * f, e * e, tiny.BYTE_VOCAB_SIZE * e), dtype=np.float32) * 0.02
    ).astype(np.float16)

    def matrix(rows: int, cols: int) -> Any:
        return pool[: rows * cols].reshape(rows, cols)

    n_vocab = tiny.write_llama(
        path, matrix, gguf.LlamaFileType.MOSTLY_F16, name="stratum-gpu-check-model",
        n_embd=e, n_layer=layers, n_head=shape["n_head"], n_ff=f, n_ctx=shape["n_ctx"],
    )  # fmt: skip
    params = model_params(shape, n_vocab)
    return {
        "path": str(path),
        "shape": dict(shape),
        "n_vocab": n_vocab,
        "params": params,
        "file_bytes": path.stat().st_size,
        "weight_bytes_f16": params * 2,
        "kv_bytes_per_token_f16": 2 * layers * e * 2,
        "write_s": round(time.perf_counter() - started, 2),
    }


def gemma_comparison() -> list[dict[str, Any]]:
    """Gemma 4 E4B and 26B-A4B as scripts/vram_facts.py states them (with its sources)."""
    import vram_facts as facts

    rows = []
    for name, file in (("gemma-4-E4B", "gemma-4-E4B-it-Q4_K_M.gguf"),
                       ("gemma-4-26B-A4B", "gemma-4-26B-A4B-it-Q4_K_M.gguf")):  # fmt: skip
        arch = facts.ARCH[name]
        parts = arch.params()
        gguf_file = facts.GGUF_FILES[file]
        active = None
        if arch.experts:
            # 8 of the 128 experts per token (the source table: "experts 128 (top 8)").
            active = sum(v for k, v in parts.items() if k != "experts") + parts["experts"] * 8 / 128
        rows.append({
            "model": name,
            "layers": arch.layers, "hidden": arch.hidden, "intermediate": arch.intermediate,
            "heads": arch.heads, "kv_heads": arch.kv_heads, "head_dim": arch.head_dim,
            "experts": arch.experts, "vocab": arch.vocab,
            "params": round(sum(parts.values())),
            "active_params": None if active is None else round(active),
            "gguf_file": file, "gguf_file_bytes": gguf_file.file_bytes,
            "source": "scripts/vram_facts.py: " + gguf_file.source,
        })  # fmt: skip
    return rows


def cmd_model(args: argparse.Namespace) -> int:
    args.work.mkdir(parents=True, exist_ok=True)
    path = args.work / ("model-cpu.gguf" if args.cpu else "model-gpu.gguf")
    data = write_model(path, MODEL_SHAPES["cpu" if args.cpu else "gpu"])
    data["gemma"] = gemma_comparison()
    write_step(args.out, "model", data)
    print(f"[model] {data['params'] / 1e9:.3f} B parameters, {data['file_bytes'] / 1e9:.2f} GB, "
          f"written in {data['write_s']} s: {path}")  # fmt: skip
    return 0


# --- d. engine vs router --------------------------------------------------------------------


def bench_prompt(i: int, length: int) -> list[dict[str, str]]:
    """A prompt of about ``length`` byte tokens, unique from its first byte (no prefix cache)."""
    head = f"Request {i:06d}. Summarise the following notes in one paragraph: "
    filler = "the quick brown fox jumps over the lazy dog while the router measures time. "
    text = (head + filler * (length // len(filler) + 1))[:length]
    return [{"role": "user", "content": text}]


async def load_round(url: str, model: str, concurrency: int, per_client: int, start: int,
                     prompt_len: int, max_tokens: int) -> list[Any]:  # fmt: skip
    """``concurrency`` clients, each streaming ``per_client`` chats one after another."""
    import httpx
    import measure

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300.0, limits=limits) as client:

        async def one_client(c: int) -> list[Any]:
            results = []
            for k in range(per_client):
                # Each client is a person to the router (its fair line and per-person cap).
                body = measure.chat_body(model, bench_prompt(start + c * per_client + k,
                                                             prompt_len), max_tokens,
                                         user=f"gpu-check-{c}")  # fmt: skip
                results.append(await measure.stream_chat(client, url, body))
            return results

        chunks = await asyncio.gather(*(one_client(c) for c in range(concurrency)))
    return [r for chunk in chunks for r in chunk]


def summarize_path(results: Sequence[Any]) -> dict[str, Any]:
    import measure

    ok = [r for r in results if r.ok and r.ttft_s is not None]
    ttft = [r.ttft_s * 1000 for r in ok]
    tps = [t for r in ok if (t := r.tokens_per_s) is not None]
    errors = [r.error for r in results if not r.ok][:3]
    return {
        "requests": len(results), "ok": len(ok), "errors": len(results) - len(ok),
        "first_errors": errors,
        "ttft_p50_ms": rnd(measure.percentile(ttft, 50), 3),
        "ttft_p95_ms": rnd(measure.percentile(ttft, 95), 3),
        "decode_tokens_per_s_p50": rnd(measure.percentile(tps, 50), 1),
        "decode_tokens_per_s_p95": rnd(measure.percentile(tps, 95), 1),
        "output_tokens": sum(r.output_tokens for r in ok),
    }  # fmt: skip


def overhead_pct(direct: float | None, router: float | None) -> float | None:
    if direct is None or router is None or direct <= 0:
        return None
    return round((router - direct) / direct * 100.0, 3)


LOG_BUFFER = re.compile(
    r"(?P<device>[A-Za-z0-9_]+)\s+(?P<kind>model|KV|compute|output|RS)\s+buffer size\s*=\s*"
    r"(?P<mib>[\d.]+)\s*MiB"
)


def llama_buffers(log_text: str) -> list[dict[str, Any]]:
    """llama-server's own lines about what it allocated (``CUDA0 model buffer size = ...``)."""
    rows = []
    for m in LOG_BUFFER.finditer(log_text):
        rows.append({"device": m["device"], "kind": m["kind"], "mib": float(m["mib"])})
    return rows


def llama_argv(binary: str, model: Path, port: int, cpu: bool, ctx: int) -> list[str]:
    argv = [binary, "--model", str(model), "--alias", ALIAS, "--host", "127.0.0.1",
            "--port", str(port), "--metrics", "--parallel", str(PARALLEL),
            "--ctx-size", str(ctx), "--flash-attn", "on", "--jinja",
            # verbosity 4: the load lines with the buffer sizes (hidden at the default 3)
            "--log-verbosity", "4"]  # fmt: skip
    if cpu:
        argv += ["--n-gpu-layers", "0", "--threads", str(max(1, (os.cpu_count() or 2) - 1))]
    else:
        argv += ["--n-gpu-layers", "99"]
    return argv


def cmd_bench(args: argparse.Namespace) -> int:
    from adaptive_router.testing.processes import Process, free_ports, running

    model_info = read_step(args.out, "model")
    if model_info is None:
        print("[bench] no model: the model step did not run", file=sys.stderr)
        return 1
    model = Path(model_info["path"])
    deadline = time.monotonic() + args.seconds
    logs = args.work / "logs"
    engine_port, router_port = free_ports(2)
    engine_url = f"http://127.0.0.1:{engine_port}"
    router_url = f"http://127.0.0.1:{router_port}"
    used_before = smi_query("memory.used") if not args.cpu else None
    engine = Process(
        "llama-server", llama_argv(args.llama_server, model, engine_port, args.cpu,
                                   model_info["shape"]["n_ctx"]),
        logs, ready_url=engine_url + "/health", start_timeout=min(120.0, args.seconds / 2),
    )  # fmt: skip
    router_env = {
        "ROUTER_GPU_MONITOR": "false" if args.cpu else "true",
        "ROUTER_TIER_LOW_MODEL": ALIAS,
        "ROUTER_TIER_HIGH_MODEL": ALIAS,
        # The SLA probe would add requests to the engine while it is measured.
        "ROUTER_SLA_PROBE_INTERVAL_S": "0",
    }
    router = Process(
        "router",
        router_argv(sys.executable, engine_url, router_port),
        logs, ready_url=router_url + "/livez", env=router_env,
    )  # fmt: skip
    prompt_len = 512 if not args.cpu else 128
    max_tokens = 64 if not args.cpu else 32
    data: dict[str, Any] = {
        "llama_server": args.llama_server,
        "engine_argv": list(engine.argv),
        "router_argv": list(router.argv),
        "router_env": router_env,
        "prompt_tokens": prompt_len,
        "max_tokens": max_tokens,
        "routed_model": "gemma4-fast",
        "method": "direct and router rounds interleaved (direct, router, direct, ...); "
        "TTFT and decode tokens/s as benchmarks/measure.py defines them; every prompt unique "
        "from its first token (no prefix-cache hits)",
    }
    paths = {"direct": (engine_url, ALIAS), "router": (router_url, "gemma4-fast")}
    rows: dict[str, dict[str, Any]] = {}
    with running(engine, router):
        started_at = time.monotonic()
        if used_before is not None:
            after = smi_query("memory.used")
            if after is not None:
                data["smi_used_mib_before"] = float(used_before["memory.used"])
                data["smi_used_mib_with_llama_server"] = float(after["memory.used"])
        counter = 0
        for _, (url, model_name) in paths.items():  # warm-up
            asyncio.run(load_round(url + "/v1/chat/completions", model_name, 4, 2, counter,
                                   prompt_len, max_tokens))  # fmt: skip
            counter += 8
        plan = [(1, 1, 12 if args.cpu else 20), (PARALLEL, 1, 3 if args.cpu else 6)]
        for concurrency, per_client, rounds in plan:
            results: dict[str, list[Any]] = {"direct": [], "router": []}
            done_rounds = 0
            for _ in range(rounds):
                if time.monotonic() > deadline - 5:
                    break
                for name, (url, model_name) in paths.items():
                    results[name] += asyncio.run(load_round(
                        url + "/v1/chat/completions", model_name, concurrency, per_client,
                        counter, prompt_len, max_tokens))  # fmt: skip
                    counter += concurrency * per_client
                done_rounds += 1
            row: dict[str, Any] = {name: summarize_path(rs) for name, rs in results.items()}
            row["rounds"] = done_rounds
            row["ttft_overhead_pct_p50"] = overhead_pct(row["direct"]["ttft_p50_ms"],
                                                        row["router"]["ttft_p50_ms"])  # fmt: skip
            row["ttft_overhead_pct_p95"] = overhead_pct(row["direct"]["ttft_p95_ms"],
                                                        row["router"]["ttft_p95_ms"])  # fmt: skip
            row["ttft_added_p50_ms"] = rnd(
                (row["router"]["ttft_p50_ms"] or math.nan) - (row["direct"]["ttft_p50_ms"] or 0), 3
            )
            rows[f"c{concurrency}"] = row
            print(f"[bench] c={concurrency}: direct TTFT p50 {row['direct']['ttft_p50_ms']} ms, "
                  f"router {row['router']['ttft_p50_ms']} ms "
                  f"({row['ttft_overhead_pct_p50']} %), decode p50 "
                  f"{row['direct']['decode_tokens_per_s_p50']} / "
                  f"{row['router']['decode_tokens_per_s_p50']} tok/s")  # fmt: skip
        data["measure_s"] = round(time.monotonic() - started_at, 1)
    data["results"] = rows
    log_text = engine.log_path.read_text(errors="replace")
    data["llama_log"] = str(engine.log_path)
    data["llama_buffers"] = llama_buffers(log_text)
    data["llama_log_lines"] = [line for line in log_text.splitlines()
                               if "buffer size" in line or "llama_kv_cache" in line
                               or "offloaded" in line or "ggml_cuda_init" in line
                               or "Device 0" in line][:40]  # fmt: skip
    shutil.copy(engine.log_path, args.out / "llama-server.log")
    write_step(args.out, "bench", data)
    failed = any(r[p]["ok"] == 0 for r in rows.values() for p in ("direct", "router"))
    return 1 if failed or not rows else 0


# --- e. NVML for real -----------------------------------------------------------------------


class FileNvml:
    """An NVML source read from a JSON file each poll (the ``--cpu`` stand-in for a GPU): the
    readings of ``adaptive_router.testing.FakeNvml`` with what the file sets."""

    def __init__(self, path: Path) -> None:
        from adaptive_router.testing import FakeNvml

        self.path = path
        self.fake = FakeNvml()

    def open(self, device_index: int) -> None:
        self.fake.open(device_index)

    def read(self) -> Any:
        import dataclasses

        base = self.fake.read()
        try:
            changes = json.loads(self.path.read_text())
        except (OSError, ValueError):
            changes = {}
        return dataclasses.replace(base, **changes)

    def close(self) -> None:
        self.fake.close()


def cmd_fake_router(args: argparse.Namespace) -> int:
    """The production service (create_app, uvicorn) with FileNvml in place of NVML."""
    import logging

    import uvicorn

    from adaptive_router.router import AdaptiveRouter
    from adaptive_router.service.app import create_app
    from adaptive_router.service.config import load_service_config

    service, routing = load_service_config(
        None,
        service_overrides={"tier_low_url": args.tier_url, "tier_high_url": args.tier_url,
                           "host": "127.0.0.1", "port": args.port, "log_level": "warning"},
        routing_overrides={},
    )  # fmt: skip
    logging.basicConfig(level="WARNING")
    router = AdaptiveRouter(routing, gpu_source=FileNvml(args.control))
    app = create_app(service, routing, router=router)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_hog_memory(args: argparse.Namespace) -> int:
    """Allocate GPU memory in 256 MiB blocks until less than ``--leave-free-gb`` is free; hold
    it until stdin closes."""
    torch: Any = importlib.import_module("torch")

    blocks = []
    free, total = torch.cuda.mem_get_info()
    target = int(args.leave_free_gb * 1e9)
    while free > target:
        size = min(256 * MIB, max(free - target + MIB, MIB))
        blocks.append(torch.empty(size, dtype=torch.uint8, device="cuda"))
        free, total = torch.cuda.mem_get_info()
    torch.cuda.synchronize()
    print(json.dumps({"ready": True, "free_bytes": free, "total_bytes": total,
                      "held_bytes": sum(b.numel() for b in blocks)}), flush=True)  # fmt: skip
    sys.stdin.read()
    return 0


def cmd_hog_util(args: argparse.Namespace) -> int:
    """Keep the GPU busy (a bf16 matmul loop) until stdin closes."""
    import threading

    torch: Any = importlib.import_module("torch")

    stop = threading.Event()

    def wait_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    print(json.dumps({"ready": True}), flush=True)
    while not stop.is_set():
        for _ in range(20):
            a = (a @ b) * 1e-4
        torch.cuda.synchronize()
    return 0


@contextlib.contextmanager
def hog(python: str, command: str, *extra: str) -> Iterator[dict[str, Any]]:
    """Run ``hog-<command>`` under the PyTorch interpreter until the block ends."""
    proc = subprocess.Popen(
        [python, *STEPS[1:], f"hog-{command}", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"hog-{command} exited with {proc.wait(30)} before it was ready")
        yield json.loads(line)
    finally:
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def routed_reason(router_url: str) -> dict[str, str]:
    """The router's headers for one routed (gemma4-fast) hard prompt."""
    import httpx

    body = {"model": "gemma4-fast", "max_tokens": 1,
            "messages": [{"role": "user", "content": HARD_PROMPT}]}  # fmt: skip
    response = httpx.post(router_url + "/v1/chat/completions", json=body, timeout=30.0)
    return {"status": str(response.status_code),
            "reason": response.headers.get("x-router-reason", ""),
            "tier": response.headers.get("x-router-tier", "")}  # fmt: skip


def wait_reason(router_url: str, want: Callable[[str], bool], timeout: float) -> dict[str, Any]:
    """Ask until the reason satisfies ``want``; the last answer and how long it took."""
    started = time.monotonic()
    while True:
        seen = routed_reason(router_url)
        elapsed = time.monotonic() - started
        if want(seen["reason"]) or elapsed > timeout:
            return {**seen, "ok": want(seen["reason"]), "after_s": round(elapsed, 2)}
        time.sleep(0.1)


def equals(want: str) -> Callable[[str], bool]:
    return lambda reason: reason == want


def differs(want: str) -> Callable[[str], bool]:
    return lambda reason: reason != want


def gpu_block(router_url: str) -> dict[str, Any]:
    import httpx

    health: dict[str, Any] = httpx.get(router_url + "/health", timeout=5.0).json()
    gpu: dict[str, Any] = health.get("gpu", {})
    return gpu


def side_by_side(gpu: Mapping[str, Any], reference: Mapping[str, float]) -> dict[str, Any]:
    """The router's /health GPU block next to the reference reading (MiB)."""
    row: dict[str, Any] = {
        "router_available": gpu.get("available"),
        "router_error": gpu.get("error"),
    }
    for key in ("free", "used", "total"):
        value = gpu.get(f"{key}_bytes")
        mine = None if value is None else value / MIB
        theirs = reference.get(f"{key}_mib")
        row[f"router_{key}_mib"] = rnd(mine, 1)
        row[f"reference_{key}_mib"] = theirs
        row[f"diff_{key}_mib"] = None if mine is None or theirs is None else rnd(mine - theirs, 1)
    row["router_utilization_pct"] = gpu.get("utilization_pct")
    row["reference_utilization_pct"] = reference.get("utilization_pct")
    row["router_reading_age_s"] = rnd(time.time() - float(gpu.get("timestamp") or 0), 3)
    return row


def smi_reading() -> dict[str, float]:
    row = smi_query("memory.free,memory.used,memory.total,utilization.gpu")
    if row is None:
        return {}
    return {"free_mib": float(row["memory.free"]), "used_mib": float(row["memory.used"]),
            "total_mib": float(row["memory.total"]),
            "utilization_pct": float(row["utilization.gpu"])}  # fmt: skip


def cmd_nvml(args: argparse.Namespace) -> int:
    from adaptive_router.testing.processes import Process, cpu_seconds, free_ports, running

    logs = args.work / "logs"
    engine_port, router_port, quiet_port = free_ports(3)
    engine_url = f"http://127.0.0.1:{engine_port}"
    router_url = f"http://127.0.0.1:{router_port}"
    headroom_gb = args.headroom_gb
    env = {"ROUTER_VRAM_HEADROOM_GB": str(headroom_gb), "ROUTER_TIER_LOW_MODEL": "fake",
           "ROUTER_TIER_HIGH_MODEL": "fake", "ROUTER_SLA_PROBE_INTERVAL_S": "0"}  # fmt: skip
    py = sys.executable
    control = args.work / "fake-nvml.json"
    engine = Process(
        "fake-engine", [py, "-m", "adaptive_router.testing.fake_engine", "--port",
                        str(engine_port), "--model", "fake", "--tokens", "1"],
        logs, ready_url=engine_url + "/health",
    )  # fmt: skip
    if args.cpu:
        control.write_text("{}")
        argv = [*STEPS, "fake-router", "--port", str(router_port), "--tier-url",
                engine_url + "/v1", "--control", str(control)]  # fmt: skip
    else:
        argv = router_argv(py, engine_url, router_port)
    router = Process("router-nvml", argv, logs, ready_url=router_url + "/livez",
                     env={**env, "ROUTER_GPU_MONITOR": "true"})  # fmt: skip
    quiet = Process(
        "router-no-monitor",
        router_argv(py, engine_url, quiet_port),
        logs, ready_url=f"http://127.0.0.1:{quiet_port}/livez",
        env={**env, "ROUTER_GPU_MONITOR": "false"},
    )  # fmt: skip

    def reference() -> dict[str, float]:
        if not args.cpu:
            return smi_reading()
        from adaptive_router.testing.fake_nvml import RTX_5060_TI_16GB

        reading = {"free_bytes": RTX_5060_TI_16GB.free_bytes,
                   "used_bytes": RTX_5060_TI_16GB.used_bytes,
                   "total_bytes": RTX_5060_TI_16GB.total_bytes,
                   "utilization_pct": RTX_5060_TI_16GB.utilization_pct}  # fmt: skip
        reading.update(json.loads(control.read_text() or "{}"))
        return {"free_mib": reading["free_bytes"] / MIB, "used_mib": reading["used_bytes"] / MIB,
                "total_mib": reading["total_bytes"] / MIB,
                "utilization_pct": float(reading["utilization_pct"])}  # fmt: skip

    @contextlib.contextmanager
    def pressure(kind: str) -> Iterator[dict[str, Any]]:
        if args.cpu:
            ref = reference()
            change: dict[str, Any] = (
                {"free_bytes": int(headroom_gb * 1e9 / 2),
                 "used_bytes": int(ref["total_mib"] * MIB - headroom_gb * 1e9 / 2)}
                if kind == "memory" else {"utilization_pct": 99.0}
            )  # fmt: skip
            control.write_text(json.dumps(change))
            try:
                yield {"ready": True, "fake_nvml": change}
            finally:
                control.write_text("{}")
        else:
            extra = ["--leave-free-gb", str(headroom_gb / 2)] if kind == "memory" else []
            with hog(args.torch_python, kind, *extra) as info:
                yield info

    data: dict[str, Any] = {
        "source": "fake NVML (adaptive_router.testing.FakeNvml through a control file)"
        if args.cpu
        else "NVML (nvidia-ml-py) in the router; nvidia-smi as the reference",
        "headroom_gb": headroom_gb,
        "router_argv": argv,
        "hard_prompt": HARD_PROMPT,
    }
    if args.cpu:
        data["skipped"] = "no GPU: the checks ran against the fake NVML, not a card"
    with running(engine, router, quiet):
        time.sleep(1.0)  # a few polls (500 ms interval)
        gpu = gpu_block(router_url)
        data["health_vs_reference"] = side_by_side(gpu, reference())
        data["baseline"] = routed_reason(router_url)
        checks: dict[str, Any] = {}
        for kind, reason in (("memory", "vram"), ("util", "gpu_util")):
            try:
                with pressure(kind) as info:
                    seen = wait_reason(router_url, equals(reason), 10.0)
                    under = side_by_side(gpu_block(router_url), reference())
                released = wait_reason(router_url, differs(reason), 10.0)
                checks[reason] = {"pressure": info, "while": seen, "health_while": under,
                                  "after_release": released,
                                  "ok": bool(seen["ok"] and released["ok"])}  # fmt: skip
            except Exception as exc:
                checks[reason] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
            print(f"[nvml] {reason}: {json.dumps(checks[reason], default=str)[:300]}")
        data["rules"] = checks
        window = args.quiet_s
        before = {"monitor": cpu_seconds(router.pid), "no_monitor": cpu_seconds(quiet.pid)}
        time.sleep(window)
        after = {"monitor": cpu_seconds(router.pid), "no_monitor": cpu_seconds(quiet.pid)}
        per_s = {k: (after[k] - before[k]) * 1000 / window for k in before}
        polls = window / 0.5
        data["polling_cost"] = {
            "quiet_window_s": window,
            "cpu_ms_per_s_with_monitor": rnd(per_s["monitor"], 3),
            "cpu_ms_per_s_without_monitor": rnd(per_s["no_monitor"], 3),
            "monitor_cpu_ms_per_s": rnd(per_s["monitor"] - per_s["no_monitor"], 3),
            "monitor_cpu_ms_per_poll": rnd((after["monitor"] - before["monitor"]
                                            - after["no_monitor"] + before["no_monitor"])
                                           * 1000 / polls, 3),
            "resolution_ms": round(1000 / (os.sysconf("SC_CLK_TCK")), 1),
        }  # fmt: skip
    data["ok"] = bool(
        data["health_vs_reference"]["router_available"] and all(c["ok"] for c in checks.values())
    )
    write_step(args.out, "nvml", data)
    print(f"[nvml] /health vs reference: {json.dumps(data['health_vs_reference'])}")
    print(f"[nvml] polling cost: {json.dumps(data['polling_cost'])}")
    return 0 if data["ok"] else 1


# --- f. the planner -------------------------------------------------------------------------


def predicted_llama(model: Mapping[str, Any], parallel: int) -> dict[str, Any]:
    """What the planner's own formulas predict for the synthetic model under the bench's flags:
    weights as stored (F16), the KV cache by vram.model.llama_kv_bytes (every layer full
    attention, F16 cache), the compute buffers and CUDA context by its stated ALLOWANCES."""
    import vram_facts as facts
    from vram.model import llama_kv_bytes

    shape = model["shape"]
    head_dim = shape["n_embd"] // shape["n_head"]
    arch = facts.Arch(
        name="stratum-gpu-check", layers=shape["n_layer"], hidden=shape["n_embd"],
        intermediate=shape["n_ff"], heads=shape["n_head"], kv_heads=shape["n_head"],
        head_dim=head_dim, global_kv_heads=shape["n_head"], global_head_dim=head_dim,
        full_attention_every=1, sliding_window=shape["n_ctx"], vocab=model["n_vocab"],
    )  # fmt: skip
    kv = llama_kv_bytes(arch, shape["n_layer"], shape["n_ctx"], parallel,
                        facts.LLAMA_CACHE_BYTES["f16"])  # fmt: skip
    # llama.cpp keeps the input embedding in RAM; the output layer goes to the GPU.
    n_vocab, e = model["n_vocab"], shape["n_embd"]
    weights_gpu = model["weight_bytes_f16"] - n_vocab * e * 2
    return {
        "model_mib": rnd(weights_gpu / MIB, 1),
        "kv_mib": rnd(kv / MIB, 1),
        "compute_mib_allowance": facts.ALLOWANCES["llama_compute"].gib * 1024,
        "cuda_context_mib_allowance": facts.ALLOWANCES["cuda_context"].gib * 1024,
    }


def cmd_plan(args: argparse.Namespace) -> int:
    facts = read_step(args.out, "facts") or {}
    gpus = facts.get("gpus") or []
    data: dict[str, Any] = {"runs": []}
    if gpus:
        total_gib = gpus[0]["memory_total_mib"] / 1024
        used_gib = gpus[0]["memory_used_mib"] / 1024
        source = "nvidia-smi (step a)"
    else:
        total_gib, used_gib, source = 16311 / 1024, 0.0, "no GPU: the 16gb profile's card"
    data["card"] = {"gpu_gib": round(total_gib, 3), "used_gib": round(used_gib, 3),
                    "source": source}  # fmt: skip
    for profile in ("16gb", "24gb", "32gb"):
        argv = [
            sys.executable,
            str(ROOT / "scripts" / "plan_vram.py"),
            "profile",
            profile,
            "--gpu-gb",
            f"{total_gib:.3f}",
            "--gpu-used-gb",
            f"{used_gib:.3f}",
            "--json",
        ]
        rc, text = run_text(argv)
        try:
            plan = json.loads(text[text.index("{") :]) if "{" in text else {}
        except ValueError:
            plan = {"unparsed": text[:500]}
        data["runs"].append({
            "command": " ".join(argv[1:]).replace(str(ROOT) + "/", ""), "rc": rc,
            "fits": plan.get("fits"), "expected_free_gib": plan.get("expected_free_gib"),
            "planned_gib": (plan.get("devices") or {}).get("GPU 0", {}).get("planned_gib"),
            "problems": plan.get("problems"),
        })  # fmt: skip
    bench = read_step(args.out, "bench")
    model = read_step(args.out, "model")
    if bench and model:
        measured: dict[str, float] = {}
        for row in bench.get("llama_buffers", []):
            if row["device"].startswith("CUDA") and row["device"][4:].isdigit():
                measured[row["kind"]] = measured.get(row["kind"], 0.0) + row["mib"]
        predicted = predicted_llama(model, PARALLEL)
        compare: dict[str, Any] = {
            "measured_cuda_mib": measured,
            "predicted_mib": predicted,
            "smi_delta_mib": None,
            "note": "the planner models Gemma 4 only; its formulas (KV cache per slot, "
            "allowances) applied to the synthetic llama model. On --cpu there are no CUDA "
            "buffers: the CPU lines are listed instead.",
        }
        if "smi_used_mib_with_llama_server" in bench:
            compare["smi_delta_mib"] = rnd(
                bench["smi_used_mib_with_llama_server"] - bench["smi_used_mib_before"], 1
            )
        if not measured:
            compare["measured_cpu_mib"] = {
                f"{r['device']} {r['kind']}": r["mib"] for r in bench.get("llama_buffers", [])
            }
        for kind, key in (("model", "model_mib"), ("KV", "kv_mib"),
                          ("compute", "compute_mib_allowance")):  # fmt: skip
            got = measured.get(kind) if measured else None
            if got is None:
                got = (
                    sum(
                        r["mib"]
                        for r in bench.get("llama_buffers", [])
                        if r["kind"] == kind and r["device"] in ("CPU", "CPU_Mapped")
                    )
                    or None
                )
            want = predicted[key]
            compare[f"{kind}_ratio_measured_over_predicted"] = (
                rnd(got / want, 3) if got and want else None
            )
        data["llama_server_vs_planner"] = compare
    write_step(args.out, "plan", data)
    for run in data["runs"]:
        print(f"[plan] {run['command']}: fits={run['fits']} free={run['expected_free_gib']} GiB")
    return 0


# --- the report -----------------------------------------------------------------------------


def read_status(out: Path) -> list[dict[str, Any]]:
    """The run's step table (:class:`stratum_tools.gpu_check.run.Budget` writes it)."""
    try:
        rows: list[dict[str, Any]] = json.loads((out / "steps" / "status.json").read_text())
    except (OSError, ValueError):
        return []
    return rows


def build_report(out: Path) -> dict[str, Any]:
    steps = {name: read_step(out, name) for name in ("facts", "build", "model", "bench", "nvml",
                                                     "plan")}  # fmt: skip
    status = read_status(out)
    report: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": (steps["facts"] or {}).get("mode", "unknown"),
        "steps": status,
        "skipped_for_time": [s["step"] for s in status if s["status"] == "skipped-time"],
        **{name: data for name, data in steps.items() if data is not None},
    }
    meta_path = out / "steps" / "run.json"
    if meta_path.exists():
        report["run"] = json.loads(meta_path.read_text())
    results = (steps["bench"] or {}).get("results", {})
    headline = {f"c{c}": results.get(f"c{c}", {}).get("ttft_overhead_pct_p50")
                for c in (1, PARALLEL)}  # fmt: skip
    values = [v for v in headline.values() if v is not None]
    report["headline"] = {
        "router_ttft_overhead_pct_p50": headline,
        "target_pct": TTFT_TARGET_PCT,
        "met": (max(values) < TTFT_TARGET_PCT) if values else None,
    }
    return report


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [f"# GPU check ({report.get('mode', '?')} mode)", "",
             f"Generated {report.get('generated', '?')}."]  # fmt: skip
    run = report.get("run")
    if run:
        lines.append(f"Command: `{run.get('command', '')}`; budget {run.get('budget_s')} s, "
                     f"took {run.get('elapsed_s')} s.")  # fmt: skip
    head = report.get("headline", {})
    pct = head.get("router_ttft_overhead_pct_p50", {})
    lines += [
        "",
        "## Headline",
        "",
        "Router TTFT overhead (p50, router vs direct): "
        + ", ".join(f"{k}: {fmt(v)} %" for k, v in pct.items())
        + f" (target < {fmt(head.get('target_pct'))} %: "
        + {True: "met", False: "NOT met", None: "not measured"}[head.get("met")]
        + ").",
    ]
    lines += ["", "## Steps", "", "| step | status | seconds | limit (s) | note |",
              "|---|---|---|---|---|"]  # fmt: skip
    for s in report.get("steps", []):
        note = str(s.get("note", "")).replace("|", "\\|")
        lines.append(f"| {s['step']} | {s['status']} | {fmt(s['seconds'])} | "
                     f"{fmt(s['limit_s'])} | {note} |")  # fmt: skip
    skipped = report.get("skipped_for_time") or []
    lines += ["", "Skipped for time: " + (", ".join(skipped) if skipped else "nothing") + "."]
    facts = report.get("facts")
    if facts:
        lines += ["", "## Machine", ""]
        for gpu in facts.get("gpus") or []:
            lines.append(f"- {gpu['name']}: {fmt(gpu['memory_total_mib'])} MiB "
                         f"({fmt(gpu['memory_used_mib'])} used), compute capability "
                         f"{gpu['compute_cap']}, driver {gpu['driver_version']}")  # fmt: skip
        if not facts.get("gpus"):
            lines.append(
                "- no GPU (nvidia-smi: "
                + str(facts.get("nvidia_smi", {}).get("output", ""))[:120]
                + ")"
            )
        lines.append(f"- nvcc: {facts.get('nvcc')}; CPUs: {facts.get('cpus')}")
    build = report.get("build")
    if build:
        lines += ["", "## llama-server", ""]
        lines += [
            f"- {k}: `{v}`" if k in ("binary", "cmake_args") else f"- {k}: {v}"
            for k, v in build.items()
        ]
    model = report.get("model")
    if model:
        shape = model["shape"]
        lines += ["", "## Model", "", "| model | params | file | layers | hidden | FFN | heads "
                  "| KV heads | vocab |", "|---|---|---|---|---|---|---|---|---|",
                  f"| synthetic llama F16 (this run) | {model['params'] / 1e9:.3f} B | "
                  f"{model['file_bytes'] / 1e9:.2f} GB | {shape['n_layer']} | {shape['n_embd']} | "
                  f"{shape['n_ff']} | {shape['n_head']} | {shape['n_head']} | "
                  f"{model['n_vocab']} |"]  # fmt: skip
        for g in model.get("gemma", []):
            active = f" ({g['active_params'] / 1e9:.2f} B active)" if g["active_params"] else ""
            size = g["gguf_file_bytes"]
            experts = f" + {g['experts']} experts" if g["experts"] else ""
            lines.append(f"| {g['model']} (Q4_K_M GGUF) | {g['params'] / 1e9:.2f} B{active} | "
                         f"{'—' if size is None else f'{size / 1e9:.2f} GB'} | {g['layers']} | "
                         f"{g['hidden']} | {g['intermediate']}{experts} | {g['heads']} "
                         f"| {g['kv_heads']} | {g['vocab']} |")  # fmt: skip
        lines.append(f"\nWritten in {model['write_s']} s. Gemma facts: scripts/vram_facts.py.")
    bench = report.get("bench")
    if bench:
        lines += ["", "## Engine vs router", "",
                  f"Prompt {bench['prompt_tokens']} tokens (unique), {bench['max_tokens']} "
                  f"output tokens; {bench['method']}.", "",
                  "| concurrency | path | requests (ok) | TTFT p50 (ms) | TTFT p95 (ms) "
                  "| decode tok/s p50 | TTFT overhead p50 / p95 |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for c, row in bench.get("results", {}).items():
            for path in ("direct", "router"):
                r = row[path]
                over = (
                    (
                        f"{fmt(row['ttft_overhead_pct_p50'])} % / "
                        f"{fmt(row['ttft_overhead_pct_p95'])} %"
                    )
                    if path == "router"
                    else ""
                )
                lines.append(f"| {c[1:]} | {path} | {r['requests']} ({r['ok']}) | "
                             f"{fmt(r['ttft_p50_ms'])} | {fmt(r['ttft_p95_ms'])} | "
                             f"{fmt(r['decode_tokens_per_s_p50'])} | {over} |")  # fmt: skip
    nvml = report.get("nvml")
    if nvml:
        lines += ["", "## NVML", ""]
        if nvml.get("skipped"):
            lines.append(f"**skipped: {nvml['skipped']}**")
        lines.append(f"Source: {nvml['source']}; ROUTER_VRAM_HEADROOM_GB={nvml['headroom_gb']}.")
        h = nvml.get("health_vs_reference", {})
        lines += ["", "| | router /health | reference | diff |", "|---|---|---|---|"]
        for key in ("free", "used", "total"):
            lines.append(f"| {key} MiB | {fmt(h.get(f'router_{key}_mib'))} | "
                         f"{fmt(h.get(f'reference_{key}_mib'))} | "
                         f"{fmt(h.get(f'diff_{key}_mib'))} |")  # fmt: skip
        lines.append(f"| utilisation % | {fmt(h.get('router_utilization_pct'))} | "
                     f"{fmt(h.get('reference_utilization_pct'))} | |")  # fmt: skip
        lines += ["", f"Baseline routed hard prompt: reason `{nvml['baseline'].get('reason')}`."]
        for reason, check in nvml.get("rules", {}).items():
            if "error" in check:
                lines.append(f"- `{reason}`: FAILED ({check['error']})")
                continue
            lines.append(f"- `{reason}`: {'ok' if check['ok'] else 'FAILED'}: under pressure "
                         f"`{check['while']['reason']}` after {check['while']['after_s']} s; "
                         f"released: `{check['after_release']['reason']}` after "
                         f"{check['after_release']['after_s']} s")  # fmt: skip
        cost = nvml.get("polling_cost", {})
        lines.append(f"- polling cost: {fmt(cost.get('monitor_cpu_ms_per_s'))} CPU ms per second "
                     f"({fmt(cost.get('cpu_ms_per_s_with_monitor'))} with the monitor, "
                     f"{fmt(cost.get('cpu_ms_per_s_without_monitor'))} without, over "
                     f"{fmt(cost.get('quiet_window_s'))} quiet seconds; clock resolution "
                     f"{fmt(cost.get('resolution_ms'))} ms)")  # fmt: skip
    plan = report.get("plan")
    if plan:
        lines += ["", "## Planner", "", f"Card: {plan['card']}", ""]
        for run_ in plan.get("runs", []):
            lines.append(f"- `python3 {run_['command']}`: fits {run_['fits']}, "
                         f"planned {fmt(run_['planned_gib'])} GiB, expected free "
                         f"{fmt(run_['expected_free_gib'])} GiB")  # fmt: skip
        cmp_ = plan.get("llama_server_vs_planner")
        if cmp_:
            lines += ["", "llama-server's own buffer lines vs the planner's formulas:", "",
                      f"- measured (CUDA): {cmp_['measured_cuda_mib'] or '—'}",
                      f"- measured (CPU, no CUDA buffers): {cmp_.get('measured_cpu_mib', '—')}",
                      f"- predicted: {cmp_['predicted_mib']}",
                      f"- nvidia-smi used, llama-server up minus before: "
                      f"{fmt(cmp_['smi_delta_mib'])} MiB",
                      "- measured / predicted: " + ", ".join(
                          f"{k.split('_')[0]} {fmt(cmp_[k])}" for k in cmp_
                          if k.endswith("_ratio_measured_over_predicted")),
                      f"- {cmp_['note']}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: Mapping[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "report.md").write_text(render_markdown(report))


def cmd_report(args: argparse.Namespace) -> int:
    report = build_report(args.out)
    write_report(args.out, report)
    print(f"[report] {args.out / 'report.json'}, {args.out / 'report.md'}")
    print(f"[report] headline: {json.dumps(report['headline'])}")
    return 0


# --- the command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], work: bool = False) -> Any:
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        if name not in ("fake-router", "hog-memory", "hog-util"):
            p.add_argument("--out", type=Path, required=True)
            p.add_argument("--cpu", action="store_true", help="no GPU: the CPU stand-ins")
        if work:
            p.add_argument("--work", type=Path,
                           default=Path(tempfile.gettempdir()) / "gpu-check-work")  # fmt: skip
        return p

    add("facts", cmd_facts)
    add("model", cmd_model, work=True)
    p = add("bench", cmd_bench, work=True)
    p.add_argument("--llama-server", required=True)
    p.add_argument("--seconds", type=float, default=120.0, help="time for the whole step")
    p = add("nvml", cmd_nvml, work=True)
    p.add_argument("--torch-python", default=sys.executable)
    p.add_argument("--headroom-gb", type=float, default=4.0)
    p.add_argument("--quiet-s", type=float, default=10.0)
    add("plan", cmd_plan)
    add("report", cmd_report)
    p = add("fake-router", cmd_fake_router)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tier-url", required=True)
    p.add_argument("--control", type=Path, required=True)
    p = add("hog-memory", cmd_hog_memory)
    p.add_argument("--leave-free-gb", type=float, required=True)
    add("hog-util", cmd_hog_util)
    args = parser.parse_args(argv)
    if getattr(args, "out", None) is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    fn: Callable[[argparse.Namespace], int] = args.fn
    return fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
