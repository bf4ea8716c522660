#!/usr/bin/env python3
"""Plan the GPU memory of a Stratum .env before anything starts: does it fit, and how much is left?

    python3 scripts/plan_vram.py --env .env --gpu-gb 15.93 [--gpu-used-gb 0.4] [--json]
    python3 scripts/plan_vram.py --profile 16gb           # one of the shipped profiles
    python3 scripts/plan_vram.py --write-generated        # .env.example's profiles, the doc tables

For each engine it works out, from the models' architecture (the ARCH table: every constant with
its source) and the format of each part of the checkpoint (CHECKPOINTS, GGUF_FILES): the weights
by part, the KV cache, and the overhead (stated allowances for the CUDA context, activations and
compute buffers: ALLOWANCES), then what is left on the card. Both engines preallocate: vLLM takes
``VLLM_GPU_MEMORY_UTILIZATION`` of the whole card (plus its CUDA context) and sizes its KV cache
inside that share; llama-server allocates its weights, KV cache and compute buffers at start.
What is left after both is the free memory the router's ``vram`` rule sees in the steady state.

Exit status: 0 when the plan fits with at least ``--min-free-gib`` (1 GiB) to spare and its
settings agree with each other; 1 when it does not fit (the message names the engine and by how
much); 2 on bad input (unknown model, malformed value, settings that contradict each other).
Standard library only: start.sh runs it on the host before any container exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import envfile  # the one .env reader (scripts/envfile.py, beside this script)
from vram_facts import (
    ALLOWANCES,
    ARCH,
    BITS,
    CHECKPOINTS,
    FP8_ONLINE,
    GGUF_FILES,
    GIB,
    GPUS_MIB,
    KV_DTYPE_BYTES,
    LLAMA_CACHE_BYTES,
    LLAMA_UBATCH,
    MMPROJ_FILES,
    RETRIEVAL_FILES,
    VLLM_BLOCK_SIZE,
    VLLM_IN_FLIGHT_TOKENS,
    Arch,
    Checkpoint,
    gguf_embedding_bytes,
    gguf_file_bytes,
    gguf_layer_bytes,
)

ROOT = Path(__file__).resolve().parents[1]


class PlanError(ValueError):
    """Bad input: a message for the user (exit status 2)."""


# --- Settings ------------------------------------------------------------------------------------

DEFAULTS: dict[str, str] = {
    # The fallbacks docker-compose.yml uses: the 16 GB plan. tests/test_vram_plan.py checks that
    # the two agree.
    "VLLM_MODEL": "xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4",
    "VLLM_QUANTIZATION_ARGS": "",
    "VLLM_GPU_MEMORY_UTILIZATION": "0.5",
    "VLLM_MAX_MODEL_LEN": "8192",
    "VLLM_MAX_NUM_SEQS": "16",
    "VLLM_KV_CACHE_DTYPE": "fp8",
    "VLLM_EAGER_ARGS": "--enforce-eager",
    "VLLM_MAX_IMAGES": "0",
    # Google's QAT Q4_0 26B and its own projector: 2.36 GB smaller than ggml-org's Q4_K_M, so
    # the 16 GB card holds 3 layers of experts instead of 2 (docs/VRAM-REALITY-CHECK.md).
    "LLAMA_MODEL_FILE": "gemma-4-26B_q4_0-it.gguf",
    "LLAMA_MMPROJ_FILE": "gemma-4-26B-it-mmproj.gguf",
    "LLAMA_MMPROJ_ARGS": "--mmproj /models/gemma-4-26B-it-mmproj.gguf",
    "LLAMA_N_CPU_MOE": "27",
    "LLAMA_N_GPU_LAYERS": "99",
    "LLAMA_CTX_SIZE": "16384",
    "LLAMA_PARALLEL": "2",
    "LLAMA_CACHE_TYPE": "f16",
    "ROUTER_VRAM_HEADROOM_GB": "0.5",
    "ROUTER_VISION_TIERS": "tier_high",
    "STRATUM_PROFILE": "gpu",
    "VLLM_GPU_DEVICE_ID": "0",
    "LLAMA_GPU_DEVICE_ID": "0",
    "CPU_TIER_LOW_MODEL_FILE": "gemma-4-E2B-it-Q4_K_M.gguf",
    "CPU_TIER_HIGH_MODEL_FILE": "gemma-4-E4B-it-Q4_K_M.gguf",
    "CPU_CTX_SIZE": "16384",
    "CPU_PARALLEL": "2",
    "RETRIEVAL_DEVICE": "cpu",
    "EMBED_MODEL_FILE": "embeddinggemma-300M-qat-Q4_0.gguf",
    "RERANK_MODEL_FILE": "bge-reranker-v2-m3-Q4_K_M.gguf",
    "ROUTER_TIER_LOW_CONTEXT_TOKENS": "8192",
    "ROUTER_TIER_HIGH_CONTEXT_TOKENS": "8192",
}


PROFILE_NAMES = ("gpu", "dual-gpu", "cpu")
"""How the engines share the hardware: one card, one card per engine, or no GPU at all."""

LAYOUTS = {"16gb": "gpu", "24gb": "gpu", "32gb": "gpu", "dual-16gb": "dual-gpu", "cpu": "cpu",
           "gpu": "gpu", "dual-gpu": "dual-gpu"}  # fmt: skip
"""What STRATUM_PROFILE may say: a shipped profile's name (start.sh writes it with the
profile's settings), or gpu / dual-gpu for a layout of your own; and the layout each means."""

OPTIONAL_FLAGS = frozenset(
    {"VLLM_QUANTIZATION_ARGS", "VLLM_EAGER_ARGS", "LLAMA_MMPROJ_FILE", "LLAMA_MMPROJ_ARGS"}
)
"""Set but empty means "off" for these (compose reads them as ${VAR-default}, without the
colon); for every other key an empty value means the default, as with ${VAR:-default}."""


def read_env(path: Path) -> dict[str, str]:
    """The .env file's values as docker compose reads them (scripts/envfile.py)."""
    try:
        return envfile.read_env(path)
    except envfile.EnvFileError as exc:
        raise PlanError(str(exc)) from None


@dataclass(frozen=True)
class Settings:
    """The settings of a .env that memory depends on, checked."""

    vllm_model: str
    vllm_fp8_online: bool
    vllm_utilization: float
    vllm_max_model_len: int
    vllm_max_num_seqs: int
    vllm_kv_bytes: float
    vllm_kv_dtype: str
    vllm_eager: bool
    vllm_max_images: int
    llama_model_file: str
    llama_mmproj_file: str | None
    llama_n_cpu_moe: int
    llama_n_gpu_layers: int
    llama_ctx: int
    llama_parallel: int
    llama_cache_bytes: float
    headroom_gb: float
    vision_tiers: tuple[str, ...]
    tier_low_context: int
    tier_high_context: int
    profile: str = "gpu"
    vllm_device: int = 0
    llama_device: int = 0
    cpu_low_file: str = ""
    cpu_high_file: str = ""
    cpu_ctx: int = 16384
    cpu_parallel: int = 2
    retrieval_device: str = "cpu"
    embed_file: str = "embeddinggemma-300M-qat-Q4_0.gguf"
    rerank_file: str = "bge-reranker-v2-m3-Q4_K_M.gguf"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(key: str) -> str:
            value = env.get(key)
            if value is None or (value == "" and key not in OPTIONAL_FLAGS):
                return DEFAULTS.get(key, "")
            return value

        def number(key: str, kind: type, low: float, high: float) -> Any:
            raw = get(key)
            try:
                value = kind(raw)
            except ValueError:
                raise PlanError(f"{key}={raw!r} is not a {kind.__name__}") from None
            if not low <= value <= high:
                raise PlanError(f"{key}={raw} is outside [{low}, {high}]")
            return value

        quant = shlex.split(get("VLLM_QUANTIZATION_ARGS"))
        fp8 = False
        if quant:
            if quant not in (["--quantization", "fp8"], ["-q", "fp8"], ["--quantization=fp8"]):
                raise PlanError(
                    f"VLLM_QUANTIZATION_ARGS={get('VLLM_QUANTIZATION_ARGS')!r}: the planner "
                    "knows '--quantization fp8' or none (pre-quantized checkpoints need no flag)"
                )
            fp8 = True
        kv_dtype = get("VLLM_KV_CACHE_DTYPE")
        if kv_dtype not in KV_DTYPE_BYTES:
            raise PlanError(f"VLLM_KV_CACHE_DTYPE={kv_dtype!r}: one of {sorted(KV_DTYPE_BYTES)}")
        cache_type = get("LLAMA_CACHE_TYPE")
        if cache_type not in LLAMA_CACHE_BYTES:
            raise PlanError(f"LLAMA_CACHE_TYPE={cache_type!r}: one of {sorted(LLAMA_CACHE_BYTES)}")
        eager = shlex.split(get("VLLM_EAGER_ARGS"))
        if eager not in ([], ["--enforce-eager"]):
            raise PlanError("VLLM_EAGER_ARGS is '--enforce-eager' or empty")
        mmproj_args = shlex.split(get("LLAMA_MMPROJ_ARGS"))
        mmproj: str | None = None
        if mmproj_args:
            if len(mmproj_args) != 2 or mmproj_args[0] not in ("--mmproj", "-mm"):
                raise PlanError("LLAMA_MMPROJ_ARGS is '--mmproj /models/<file>' or empty")
            mmproj = Path(mmproj_args[1]).name
            if get("LLAMA_MMPROJ_FILE") and get("LLAMA_MMPROJ_FILE") != mmproj:
                raise PlanError(
                    f"LLAMA_MMPROJ_ARGS loads {mmproj} but LLAMA_MMPROJ_FILE downloads "
                    f"{get('LLAMA_MMPROJ_FILE')}: make them name the same file"
                )
        raw_tiers = get("ROUTER_VISION_TIERS").strip()
        tiers = (
            ()
            if raw_tiers.lower() in ("none", "[]")
            else tuple(t.strip() for t in raw_tiers.strip("[]").split(",") if t.strip())
        )
        unknown = set(tiers) - {"tier_low", "tier_high"}
        if unknown:
            raise PlanError(f"ROUTER_VISION_TIERS: unknown tier(s) {sorted(unknown)}")
        parallel = number("LLAMA_PARALLEL", int, 1, 256)
        profile = LAYOUTS.get(get("STRATUM_PROFILE"), "")
        if not profile:
            raise PlanError(
                f"STRATUM_PROFILE={get('STRATUM_PROFILE')!r}: one of {', '.join(LAYOUTS)}"
            )
        retrieval_device = get("RETRIEVAL_DEVICE")
        if retrieval_device not in ("cpu", "gpu"):
            raise PlanError(f"RETRIEVAL_DEVICE={retrieval_device!r}: cpu or gpu")
        if retrieval_device == "gpu" and profile == "cpu":
            raise PlanError("RETRIEVAL_DEVICE=gpu, but the cpu profile has no GPU")
        return cls(
            profile=profile,
            vllm_device=number("VLLM_GPU_DEVICE_ID", int, 0, 63),
            llama_device=number("LLAMA_GPU_DEVICE_ID", int, 0, 63),
            cpu_low_file=get("CPU_TIER_LOW_MODEL_FILE"),
            cpu_high_file=get("CPU_TIER_HIGH_MODEL_FILE"),
            cpu_ctx=number("CPU_CTX_SIZE", int, 512, 262144),
            cpu_parallel=number("CPU_PARALLEL", int, 1, 256),
            retrieval_device=retrieval_device,
            embed_file=get("EMBED_MODEL_FILE"),
            rerank_file=get("RERANK_MODEL_FILE"),
            vllm_model=get("VLLM_MODEL"),
            vllm_fp8_online=fp8,
            vllm_utilization=number("VLLM_GPU_MEMORY_UTILIZATION", float, 0.05, 0.99),
            vllm_max_model_len=number("VLLM_MAX_MODEL_LEN", int, 256, 131072),
            vllm_max_num_seqs=number("VLLM_MAX_NUM_SEQS", int, 1, 1024),
            vllm_kv_bytes=KV_DTYPE_BYTES[kv_dtype],
            vllm_kv_dtype=kv_dtype,
            vllm_eager=bool(eager),
            vllm_max_images=number("VLLM_MAX_IMAGES", int, 0, 64),
            llama_model_file=get("LLAMA_MODEL_FILE"),
            llama_mmproj_file=mmproj,
            llama_n_cpu_moe=number("LLAMA_N_CPU_MOE", int, 0, 999),
            llama_n_gpu_layers=number("LLAMA_N_GPU_LAYERS", int, 0, 999),
            llama_ctx=number("LLAMA_CTX_SIZE", int, 512, 262144),
            llama_parallel=parallel,
            llama_cache_bytes=LLAMA_CACHE_BYTES[cache_type],
            headroom_gb=number("ROUTER_VRAM_HEADROOM_GB", float, 0.0, 1024.0),
            vision_tiers=tiers,
            tier_low_context=number("ROUTER_TIER_LOW_CONTEXT_TOKENS", int, 1, 10**7),
            tier_high_context=number("ROUTER_TIER_HIGH_CONTEXT_TOKENS", int, 1, 10**7),
        )


# --- The plan -------------------------------------------------------------------------------------


@dataclass
class EnginePlan:
    name: str
    weights: dict[str, float]
    """GiB by part."""
    kv_gib: float
    overhead: dict[str, float]
    share_gib: float | None = None
    """vLLM: the --gpu-memory-utilization share that weights, activations and KV live in."""
    notes: list[str] = field(default_factory=list)
    kv_tokens: int = 0
    full_length_requests: float = 0.0
    key: str = ""
    """Its key in the JSON output (``vllm``, ``llama_server``, ``tier_low``...)."""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = "vllm" if self.name.startswith("vllm") else "llama_server"

    @property
    def short(self) -> str:
        return {"vllm": "vLLM", "llama_server": "llama-server", "stack": "rest of the stack"}.get(
            self.key, f"llama-server {self.key}"
        )

    def breakdown(self) -> str:
        """``vLLM: weights 4.26 + KV 1.90 (~103,473 tokens) + activations 1.80 + ... = 8.46``."""
        parts = [f"weights {self.weights_gib:.2f}"] if self.weights else []
        if self.kv_gib:
            parts.append(f"KV {self.kv_gib:.2f} (~{self.kv_tokens:,} tokens)")
        parts += [f"{k.replace('_', ' ')} {v:.2f}" for k, v in self.overhead.items()]
        return f"{self.short}: " + " + ".join(parts) + f" = **{self.total_gib:.2f}**"

    @property
    def weights_gib(self) -> float:
        return sum(self.weights.values())

    @property
    def total_gib(self) -> float:
        if self.share_gib is not None:
            return self.share_gib + self.overhead.get("cuda_context", 0.0)
        return self.weights_gib + self.kv_gib + sum(self.overhead.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights_gib": {k: round(v, 3) for k, v in self.weights.items()},
            "weights_total_gib": round(self.weights_gib, 3),
            "kv_cache_gib": round(self.kv_gib, 3),
            "kv_cache_tokens": self.kv_tokens,
            "full_length_requests": round(self.full_length_requests, 1),
            "overhead_gib": {k: round(v, 3) for k, v in self.overhead.items()},
            "share_gib": None if self.share_gib is None else round(self.share_gib, 3),
            "total_gib": round(self.total_gib, 3),
            "notes": self.notes,
        }


def checkpoint_weights(checkpoint: Checkpoint, fp8_online: bool, images: bool) -> dict[str, float]:
    """GiB of each part vLLM puts on the GPU."""
    arch = ARCH[checkpoint.arch]
    params = arch.params()
    weights: dict[str, float] = {}
    for part, fmt in checkpoint.formats.items():
        if part == "audio":
            continue  # --limit-mm-per-prompt.audio 0: the audio tower is not built
        if part == "vision" and not images:
            continue  # image 0 and video 0: the vision tower is not built either
        if fp8_online and part == "linears" and fmt == "bf16":
            fmt = "fp8"
        weights[part] = params[part] * BITS[fmt] / 8 / GIB
    if checkpoint.separate_lm_head:
        weights["lm_head"] = params["embed_tokens"] * BITS[checkpoint.separate_lm_head] / 8 / GIB
    return weights


def vllm_request_kv_bytes(arch: Arch, max_model_len: int, dtype_bytes: float) -> float:
    """KV bytes one request at max_model_len holds: full-attention layers keep every token,
    sliding-window layers at most window - 1 + the in-flight tokens (vllm 0.31.0
    SlidingWindowSpec.max_admission_blocks_per_request, get_max_concurrency_for_kv_cache_config)."""
    total = 0.0
    for layer in range(arch.layers):
        per_token = arch.kv_bytes_per_token(layer, dtype_bytes)
        if not per_token:
            continue
        if arch.is_global(layer):
            blocks = math.ceil(max_model_len / VLLM_BLOCK_SIZE)
        else:
            tokens = min(arch.sliding_window - 1 + VLLM_IN_FLIGHT_TOKENS, max_model_len)
            blocks = math.ceil(tokens / VLLM_BLOCK_SIZE) + 1
        total += blocks * VLLM_BLOCK_SIZE * per_token
    return total


def plan_vllm(s: Settings, gpu_gib: float) -> EnginePlan:
    checkpoint = CHECKPOINTS.get(s.vllm_model)
    if checkpoint is None:
        raise PlanError(
            f"VLLM_MODEL={s.vllm_model!r} is not in the planner's table "
            f"({', '.join(CHECKPOINTS)}); "
            "add its parts and their formats to CHECKPOINTS in scripts/plan_vram.py"
        )
    images = s.vllm_max_images > 0 and checkpoint.multimodal
    weights = checkpoint_weights(checkpoint, s.vllm_fp8_online, images)
    inside = {"activations": ALLOWANCES["vllm_activations"].gib}
    if images:
        inside["encoder_profiling"] = ALLOWANCES["vllm_encoder_profiling"].gib
    if not s.vllm_eager:
        inside["cuda_graphs"] = ALLOWANCES["vllm_cuda_graphs"].gib
    share = s.vllm_utilization * gpu_gib
    kv = share - sum(weights.values()) - sum(inside.values())
    plan = EnginePlan(
        "vllm (tier_low)",
        weights,
        kv,
        {**inside, "cuda_context": ALLOWANCES["cuda_context"].gib},
        share_gib=share,
    )
    arch = ARCH[checkpoint.arch]
    per_request = vllm_request_kv_bytes(arch, s.vllm_max_model_len, s.vllm_kv_bytes)
    plan.full_length_requests = max(kv, 0.0) * GIB / per_request
    plan.kv_tokens = int(plan.full_length_requests * s.vllm_max_model_len)
    if s.vllm_fp8_online:
        plan.notes.append("--quantization fp8: " + FP8_ONLINE)
    return plan


def llama_kv_bytes(
    arch: Arch, layers_here: int, ctx: int, parallel: int, dtype_bytes: float
) -> float:
    """llama-server's KV cache (src/llama-kv-cache-iswa.cpp, b11549) for the last
    ``layers_here`` layers: with --parallel N and the default non-unified cache each slot gets
    ctx/N cells (padded to 256) in the full-attention layers and min(ctx/N, window + ubatch)
    cells (padded to 256) in the sliding ones; layers that reuse another's KV have none."""
    per_slot = math.ceil(ctx / parallel / 256) * 256
    swa_cells = math.ceil(min(per_slot, arch.sliding_window + LLAMA_UBATCH) / 256) * 256
    kv = 0.0
    for layer in range(arch.layers - layers_here, arch.layers):
        cells = per_slot if arch.is_global(layer) else swa_cells
        kv += parallel * cells * arch.kv_bytes_per_token(layer, dtype_bytes)
    return kv


def _expert_layer_gib(model_file: str) -> float:
    """GiB one layer of experts takes on the GPU, for the GGUF file at hand."""
    gguf = GGUF_FILES.get(model_file)
    arch = ARCH[gguf.arch if gguf else "gemma-4-26B-A4B"]
    return gguf_layer_bytes(arch, arch.layers - 1, gguf.recipe if gguf else "q4_k_m")[1] / GIB


def plan_llama(s: Settings) -> EnginePlan:
    gguf = GGUF_FILES.get(s.llama_model_file)
    if gguf is None:
        raise PlanError(
            f"LLAMA_MODEL_FILE={s.llama_model_file!r} is not in the planner's table "
            f"({', '.join(GGUF_FILES)}); add it to GGUF_FILES in scripts/plan_vram.py"
        )
    arch = ARCH[gguf.arch]
    gpu_layers = min(s.llama_n_gpu_layers, arch.layers)
    non_expert = experts = 0.0
    for layer in range(arch.layers):
        if layer < arch.layers - gpu_layers:
            continue  # this layer stays in RAM
        a, b = gguf_layer_bytes(arch, layer, gguf.recipe)
        non_expert += a
        if layer >= s.llama_n_cpu_moe:
            experts += b  # --n-cpu-moe N keeps the experts of layers 0..N-1 in RAM
    weights = {"attention_and_shared_mlp": non_expert / GIB, "experts": experts / GIB}
    if s.llama_n_gpu_layers > arch.layers:
        # The tied output layer runs on the GPU as a copy of token_embd (the input embedding
        # itself stays in RAM: llama.cpp keeps the input layer on the CPU).
        weights["output"] = gguf_embedding_bytes(arch, gguf.recipe) / GIB
    overhead = {
        "compute_buffers": ALLOWANCES["llama_compute"].gib,
        "cuda_context": ALLOWANCES["cuda_context"].gib,
    }
    if s.llama_mmproj_file:
        known = MMPROJ_FILES.get(s.llama_mmproj_file)
        if known is None:
            raise PlanError(
                f"the projector {s.llama_mmproj_file!r} is not in the planner's table "
                f"({', '.join(MMPROJ_FILES)}); add it to MMPROJ_FILES in scripts/plan_vram.py"
            )
        weights["vision_projector"] = known[0] / GIB
        overhead["projector_compute"] = ALLOWANCES["mmproj_compute"].gib
    kv = llama_kv_bytes(arch, gpu_layers, s.llama_ctx, s.llama_parallel, s.llama_cache_bytes)
    plan = EnginePlan("llama-server (tier_high)", weights, kv / GIB, overhead)
    plan.kv_tokens = math.ceil(s.llama_ctx / s.llama_parallel / 256) * 256 * s.llama_parallel
    plan.full_length_requests = float(s.llama_parallel)
    return plan


@dataclass
class Device:
    """One memory the engines live in: a GPU, or (the cpu profile) the machine's RAM."""

    name: str
    total_gib: float
    used_by_others_gib: float = 0.0
    engines: list[EnginePlan] = field(default_factory=list)

    @property
    def planned_gib(self) -> float:
        return sum(e.total_gib for e in self.engines) + self.used_by_others_gib

    @property
    def free_gib(self) -> float:
        return self.total_gib - self.planned_gib

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_gib": round(self.total_gib, 3),
            "used_by_others_gib": round(self.used_by_others_gib, 3),
            "planned_gib": round(self.planned_gib, 3),
            "free_gib": round(self.free_gib, 3),
            "engines": [e.name for e in self.engines],
        }


@dataclass
class Plan:
    devices: list[Device]
    watched: Device
    """The memory the router's vram rule reads (tier_high's card), or RAM for the cpu profile."""
    min_free_gib: float
    problems: list[str] = field(default_factory=list)
    beside: list[EnginePlan] = field(default_factory=list)
    """Engines in the machine's RAM beside the GPUs (the retrieval engines; GPU profiles)."""

    @property
    def engines(self) -> list[EnginePlan]:
        return [e for d in self.devices for e in d.engines]

    @property
    def gpu_gib(self) -> float:
        return self.watched.total_gib

    @property
    def used_by_others_gib(self) -> float:
        return self.watched.used_by_others_gib

    @property
    def planned_gib(self) -> float:
        return self.watched.planned_gib

    @property
    def free_gib(self) -> float:
        return self.watched.free_gib

    @property
    def margin_gib(self) -> float:
        return min(d.free_gib for d in self.devices) - self.min_free_gib

    @property
    def fits(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "margin_gib": round(self.margin_gib, 3),
            "expected_free_gib": round(self.free_gib, 3),
            "gpu_gib": round(self.gpu_gib, 3),
            "used_by_others_gib": round(self.used_by_others_gib, 3),
            "min_free_gib": self.min_free_gib,
            "devices": {d.name: d.as_dict() for d in self.devices},
            "engines": {e.key: e.as_dict() for e in [*self.engines, *self.beside]},
            "problems": self.problems,
        }


def consistency(s: Settings) -> None:
    """Settings that contradict each other: the router would send requests a tier rejects."""
    if s.profile == "cpu":
        if s.vision_tiers:
            raise PlanError(
                "the cpu profile's engines take no images: set ROUTER_VISION_TIERS=none"
            )
        per_slot = s.cpu_ctx // s.cpu_parallel
        for tier, context in (("LOW", s.tier_low_context), ("HIGH", s.tier_high_context)):
            if context > per_slot:
                raise PlanError(
                    f"ROUTER_TIER_{tier}_CONTEXT_TOKENS={context} is more than CPU_CTX_SIZE / "
                    f"CPU_PARALLEL = {per_slot}: llama-server would reject what the router sends"
                )
        return
    checkpoint = CHECKPOINTS[s.vllm_model]
    low_images = s.vllm_max_images > 0 and checkpoint.multimodal
    high_images = s.llama_mmproj_file is not None
    for tier, accepts, how in (
        (
            "tier_low",
            low_images,
            "VLLM_MAX_IMAGES > 0 with a checkpoint that has its vision encoder",
        ),
        ("tier_high", high_images, "LLAMA_MMPROJ_ARGS set"),
    ):
        listed = tier in s.vision_tiers
        if listed and not accepts:
            raise PlanError(
                f"ROUTER_VISION_TIERS lists {tier}, which takes no images here (it needs {how}); "
                "the router would send it images it rejects. Remove it or turn images on."
            )
        if accepts and not listed:
            raise PlanError(
                f"{tier} accepts images ({how}) but ROUTER_VISION_TIERS does not list it: "
                "add it, or turn its images off to save the memory"
            )
    if s.tier_low_context > s.vllm_max_model_len:
        raise PlanError(
            f"ROUTER_TIER_LOW_CONTEXT_TOKENS={s.tier_low_context} is more than "
            f"VLLM_MAX_MODEL_LEN={s.vllm_max_model_len}: vLLM would reject what the router sends"
        )
    per_slot = s.llama_ctx // s.llama_parallel
    if s.tier_high_context > per_slot:
        raise PlanError(
            f"ROUTER_TIER_HIGH_CONTEXT_TOKENS={s.tier_high_context} is more than "
            f"LLAMA_CTX_SIZE / LLAMA_PARALLEL = {per_slot}: llama-server would reject what the "
            "router sends"
        )


def plan_cpu_engine(s: Settings, tier: str, file: str) -> EnginePlan:
    """A CPU llama-server (the cpu profile): the whole GGUF in RAM, its KV cache, buffers."""
    gguf = GGUF_FILES.get(file)
    if gguf is None or gguf.file_bytes is None:
        raise PlanError(
            f"CPU_TIER_{tier.upper()}_MODEL_FILE={file!r} is not in the planner's table "
            f"({', '.join(GGUF_FILES)}); add it to GGUF_FILES in scripts/vram_facts.py"
        )
    arch = ARCH[gguf.arch]
    kv = llama_kv_bytes(arch, arch.layers, s.cpu_ctx, s.cpu_parallel, LLAMA_CACHE_BYTES["f16"])
    plan = EnginePlan(
        f"llama-server on the CPU (tier_{tier}: {arch.name})",
        {"gguf_file": gguf.file_bytes / GIB},
        kv / GIB,
        {"compute_buffers": ALLOWANCES["llama_cpu_compute"].gib},
        key=f"tier_{tier}",
    )
    plan.kv_tokens = math.ceil(s.cpu_ctx / s.cpu_parallel / 256) * 256 * s.cpu_parallel
    plan.full_length_requests = float(s.cpu_parallel)
    return plan


def plan_retrieval(s: Settings, gpu: bool = False) -> list[EnginePlan]:
    """The embedding and reranking llama-servers: each GGUF whole in RAM (or, ``gpu``, on the
    card with its own CUDA context) and its compute buffers (embedding models keep no KV cache
    between requests)."""
    plans = []
    for key, what, var, file in (
        ("embed", "embeddings", "EMBED_MODEL_FILE", s.embed_file),
        ("rerank", "reranking", "RERANK_MODEL_FILE", s.rerank_file),
    ):
        known = RETRIEVAL_FILES.get(file)
        if known is None:
            raise PlanError(
                f"{var}={file!r} is not in the planner's table ({', '.join(RETRIEVAL_FILES)}); "
                "add it to RETRIEVAL_FILES in scripts/vram_facts.py"
            )
        overhead = {"compute_buffers": ALLOWANCES["retrieval_cpu_compute"].gib}
        if gpu:
            overhead["cuda_context"] = ALLOWANCES["cuda_context"].gib
        where = "on the GPU" if gpu else "on the CPU"
        plans.append(EnginePlan(
            f"llama-server {where} ({what}: {file})",
            {"gguf_file": known[0] / GIB},
            0.0,
            overhead,
            key=key,
        ))  # fmt: skip
    return plans


def make_cpu_plan(s: Settings, ram_gib: float, used_gib: float, min_free: float) -> Plan:
    """The cpu profile: both tiers on llama.cpp's CPU server, everything in system RAM."""
    consistency(s)
    stack = EnginePlan(
        "the rest of the stack (router, LiteLLM, PostgreSQL, OpenWebUI, monitoring)",
        {},
        0.0,
        {"allowance": ALLOWANCES["stack_ram"].gib},
        key="stack",
    )
    ram = Device("RAM", ram_gib, used_gib, [
        plan_cpu_engine(s, "low", s.cpu_low_file),
        plan_cpu_engine(s, "high", s.cpu_high_file),
        *plan_retrieval(s),
        stack,
    ])  # fmt: skip
    plan = Plan([ram], ram, min_free)
    if ram.free_gib < min_free:
        plan.problems.append(
            f"the machine's RAM ({ram_gib:.2f} GiB"
            + (f", {used_gib:.2f} GiB already used by other processes" if used_gib else "")
            + f") cannot hold the cpu profile with {min_free:.1f} GiB to spare: it leaves "
            f"{ram.free_gib:.2f} GiB, {min_free - ram.free_gib:.2f} GiB short. Use smaller "
            "models (CPU_TIER_*_MODEL_FILE) or a smaller CPU_CTX_SIZE."
        )
    return plan


def make_plan(
    s: Settings,
    gpu_gib: float | Sequence[float],
    used_gib: float | Sequence[float] = 0.0,
    min_free: float = 1.0,
) -> Plan:
    """The plan of ``s`` on GPUs of ``gpu_gib`` (one figure per card, by nvidia-smi index;
    one figure: every card that size), ``used_gib`` held on each by other processes. For the cpu
    profile ``gpu_gib`` is the machine's RAM."""
    sizes = [gpu_gib] if isinstance(gpu_gib, int | float) else list(gpu_gib)
    used = [used_gib] * len(sizes) if isinstance(used_gib, int | float) else list(used_gib)
    if s.profile == "cpu":
        return make_cpu_plan(s, sizes[0], used[0], min_free)
    if s.profile == "dual-gpu" and s.vllm_device == s.llama_device:
        raise PlanError(
            f"the dual-gpu profile puts both engines on GPU {s.vllm_device}: set "
            "VLLM_GPU_DEVICE_ID and LLAMA_GPU_DEVICE_ID to two different cards"
        )
    for engine, index in (("VLLM", s.vllm_device), ("LLAMA", s.llama_device)):
        if index >= len(sizes):
            raise PlanError(
                f"{engine}_GPU_DEVICE_ID={index}, but {len(sizes)} GPU size(s) were given "
                "(--gpu-gb, one per card): the machine has no such card"
            )
    devices = {i: Device(f"GPU {i}", sizes[i], used[i] if i < len(used) else 0.0)
               for i in sorted({s.vllm_device, s.llama_device})}  # fmt: skip
    vllm = plan_vllm(s, sizes[s.vllm_device])
    llama = plan_llama(s)
    consistency(s)
    devices[s.vllm_device].engines.append(vllm)
    devices[s.llama_device].engines.append(llama)
    if s.retrieval_device == "gpu":  # docker-compose.retrieval-gpu.yml: tier_high's card
        devices[s.llama_device].engines.extend(plan_retrieval(s, gpu=True))
    plan = Plan(list(devices.values()), devices[s.llama_device], min_free)
    if s.retrieval_device != "gpu":
        plan.beside = plan_retrieval(s)
    need = ALLOWANCES["vllm_activations"].gib
    if vllm.kv_gib <= 0:
        plan.problems.append(
            f"vLLM: its share ({vllm.share_gib:.2f} GiB = VLLM_GPU_MEMORY_UTILIZATION "
            f"{s.vllm_utilization} of {sizes[s.vllm_device]:.2f} GiB) holds "
            f"{vllm.weights_gib:.2f} GiB of weights and about {need:.1f} GiB of activations, "
            f"leaving {vllm.kv_gib:.2f} GiB for its KV cache: it would stop with 'No available "
            "memory for the cache blocks'. Raise VLLM_GPU_MEMORY_UTILIZATION (and give "
            "llama-server less: a higher LLAMA_N_CPU_MOE), or use a smaller checkpoint."
        )
    elif vllm.full_length_requests < 1:
        plan.problems.append(
            f"vLLM: its KV cache ({vllm.kv_gib:.2f} GiB) does not hold one request of "
            f"VLLM_MAX_MODEL_LEN={s.vllm_max_model_len} tokens; vLLM refuses to start. Raise "
            "VLLM_GPU_MEMORY_UTILIZATION or lower VLLM_MAX_MODEL_LEN."
        )
    for device in devices.values():
        if device.free_gib >= min_free:
            continue
        held = " + ".join(
            f"{'vLLM' if e.key == 'vllm' else 'llama-server'} {e.total_gib:.2f}"
            for e in device.engines
        )
        what = "both engines" if len(device.engines) == 2 else device.engines[0].name
        used_now = device.used_by_others_gib
        per_layer = _expert_layer_gib(s.llama_model_file)
        layers = math.ceil((min_free - device.free_gib) / per_layer)
        suggestion = (
            f"LLAMA_N_CPU_MOE={s.llama_n_cpu_moe + layers} moves enough"
            if any(e.key != "vllm" for e in device.engines)
            and s.llama_n_cpu_moe + layers <= ARCH[GGUF_FILES[s.llama_model_file].arch].layers
            else "raise LLAMA_N_CPU_MOE"
        )
        plan.problems.append(
            f"the card ({device.name}, {device.total_gib:.2f} GiB"
            + (f", {used_now:.2f} GiB already used by other processes" if used_now else "")
            + f") cannot hold {what} with {min_free:.1f} GiB to spare: {held} GiB leaves "
            f"{device.free_gib:.2f} GiB, {min_free - device.free_gib:.2f} GiB short. Free it "
            f"from llama-server first ({suggestion}: each layer of experts moved to RAM frees "
            f"about {per_layer:.2f} GiB; "
            "lower LLAMA_CTX_SIZE; drop LLAMA_MMPROJ_ARGS), or lower "
            "VLLM_GPU_MEMORY_UTILIZATION if vLLM keeps a KV cache."
        )
    if s.headroom_gb * 1e9 / GIB >= plan.free_gib:
        plan.problems.append(
            f"ROUTER_VRAM_HEADROOM_GB={s.headroom_gb} is not below the {plan.free_gib:.2f} GiB "
            "this plan leaves free on tier_high's card: the router's vram rule would send every "
            "hard prompt to tier_low. Set it below the expected free memory."
        )
    return plan


# --- Output ---------------------------------------------------------------------------------------


def render(plan: Plan) -> str:
    lines: list[str] = []
    for device in plan.devices:
        others = device.used_by_others_gib
        lines.append(
            f"{device.name}: {device.total_gib:.2f} GiB"
            + (f" ({others:.2f} GiB used by other processes)" if others else "")
        )
        for engine in device.engines:
            lines.append(f"\n{engine.name}")
            for part, gib in engine.weights.items():
                lines.append(f"  weights  {part:<26s} {gib:6.2f} GiB")
            if engine.kv_gib or engine.kv_tokens:
                kv_note = f"{engine.kv_tokens:,} tokens"
                if engine.key == "vllm":
                    kv_note += f", {engine.full_length_requests:.1f} requests at full length"
                else:
                    kv_note += f" in {int(engine.full_length_requests)} slots"
                lines.append(f"  KV cache {'':<26s} {engine.kv_gib:6.2f} GiB  ({kv_note})")
            for part, gib in engine.overhead.items():
                lines.append(f"  overhead {part:<26s} {gib:6.2f} GiB  (allowance)")
            if engine.share_gib is not None:
                lines.append(
                    f"  share    {'--gpu-memory-utilization':<26s} {engine.share_gib:6.2f} GiB"
                )
            lines.append(f"  total    {'':<26s} {engine.total_gib:6.2f} GiB")
            lines.extend(f"  note: {n}" for n in engine.notes)
        lines.append(
            f"\nplanned {device.planned_gib:.2f} GiB of {device.total_gib:.2f} GiB: "
            f"{device.free_gib:.2f} GiB left (at least {plan.min_free_gib:.1f} GiB required)\n"
        )
    if plan.beside:
        lines.append("RAM beside the GPU (no VRAM):")
        for engine in plan.beside:
            lines.append(f"  {engine.total_gib:5.2f} GiB  {engine.name}")
        lines.append("")
    if plan.fits:
        lines.append(f"FITS: {plan.margin_gib:.2f} GiB more than the required spare")
    else:
        lines.extend(f"DOES NOT FIT: {p}" for p in plan.problems)
    return "\n".join(lines)


# --- Calibration: the planner against every published figure it can be checked with ------------


@dataclass(frozen=True)
class Check:
    case: str
    published: float
    planned: float
    unit: str
    source: str

    @property
    def error(self) -> float:
        return (self.planned - self.published) / self.published


def _stored_gb(
    arch: str, fmt: str, parts: tuple[str, ...] | None = None, lm_head: bool = False
) -> float:
    params = ARCH[arch].params()
    count = sum(v for k, v in params.items() if parts is None or k in parts)
    if lm_head:
        count += params["embed_tokens"]
    return count * BITS[fmt] / 8 / 1e9


def calibration() -> list[Check]:
    """Published sizes next to the planner's. Google's table is matched with the output layer
    counted apart from the embedding, as Google's own E4B files store it (xbill9's reading of
    the safetensors headers, see CHECKPOINTS); without it the BF16 and 8-bit rows come out
    10-12 % low."""
    google = "ai.google.dev/gemma/docs/core, memory table (BF16 / SFP8 / Q4_0)"
    text = ("embed_tokens", "per_layer_embeddings", "linears", "experts")
    checks = []
    for arch, figures in (
        ("gemma-4-E4B", (17.9, 8.9, 4.5)),
        ("gemma-4-26B-A4B", (57.7, 28.8, 14.4)),
    ):
        for fmt, published in zip(("bf16", "fp8", "q4_0"), figures, strict=True):
            checks.append(
                Check(
                    f"{arch} {fmt.upper()}, Google's table",
                    published,
                    _stored_gb(arch, fmt, lm_head=True),
                    "GB",
                    google,
                )
            )
    for name in ("gemma-4-26B-A4B-it-Q4_K_M.gguf", "gemma-4-26B-A4B-it-Q4_0.gguf",
                 "gemma-4-26B_q4_0-it.gguf"):  # fmt: skip
        gguf = GGUF_FILES[name]
        assert gguf.file_bytes is not None
        checks.append(Check(
            f"{name} ({gguf.recipe})", gguf.file_bytes / 1e9,
            gguf_file_bytes(ARCH[gguf.arch], gguf.recipe) / 1e9, "GB", gguf.source,
        ))  # fmt: skip
    checks += [
        Check(
            "gemma-4-E4B BF16 GGUF (text)",
            15.1,
            _stored_gb("gemma-4-E4B", "bf16", text),
            "GB",
            "unsloth.ai/docs/models/gemma-4/qat, 'Original BF16' column",
        ),
        Check(
            "gemma-4-26B-A4B BF16 GGUF (text)",
            50.5,
            _stored_gb("gemma-4-26B-A4B", "bf16", text),
            "GB",
            "unsloth.ai/docs/models/gemma-4/qat, 'Original BF16' column",
        ),
    ]
    audio = ARCH["gemma-4-E4B"].params()["audio"] * BITS["bf16"] / 8 / GIB  # loaded by default
    for repo, published, with_audio in (
        ("google/gemma-4-E4B-it", 14.9, True),
        ("google/gemma-4-E4B-it-qat-w4a16-ct", 11.04, True),
        ("xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4", 4.52, False),
    ):
        checkpoint = CHECKPOINTS[repo]
        weights = sum(checkpoint_weights(checkpoint, False, True).values())
        checks.append(
            Check(
                f"vLLM weights, {repo}",
                published,
                weights + (audio if with_audio else 0.0),
                "GiB",
                checkpoint.source,
            )
        )
    per_request = vllm_request_kv_bytes(ARCH["gemma-4-E4B"], 8192, KV_DTYPE_BYTES["auto"])
    emb4 = "xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4"
    for gpu, total_gib, published in (
        ("L4 (23034 MiB)", 23034 / 1024, 376_156),
        ("T4 (15636037632 bytes)", 15_636_037_632 / GIB, 194_336),
    ):
        # The KV formula alone: vLLM's measured weights (4.52 GiB) and activation peak (1.79 GiB).
        kv = 0.9 * total_gib - 4.52 - 1.79
        checks.append(
            Check(
                f"vLLM KV cache tokens, emb4 on an {gpu}, 0.9, 8192",
                published,
                kv * GIB / per_request * 8192,
                "tokens",
                CHECKPOINTS[emb4].source,
            )
        )
    return checks


def render_calibration(checks: list[Check]) -> str:
    rows = ["| case | published | planner | error | source |", "|---|---:|---:|---:|---|"]
    for c in checks:
        fmt = "{:,.0f}" if c.unit == "tokens" else "{:.2f}"
        rows.append(
            f"| {c.case} | {fmt.format(c.published)} {c.unit} | "
            f"{fmt.format(c.planned)} {c.unit} | {c.error:+.1%} | {c.source} |"
        )
    return "\n".join(rows)


# --- Profiles (the source of .env.example's GPU sections) ---------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    memory_gib: tuple[float, ...]
    """GiB of each card (nvidia-smi index order), or of RAM for the cpu profile."""
    values: Mapping[str, str]

    @property
    def keys(self) -> list[str]:
        """The settings this profile's block in .env.example lists."""
        return CPU_KEYS if LAYOUTS[self.values["STRATUM_PROFILE"]] == "cpu" else GPU_KEYS


GPU_KEYS = [
    "STRATUM_PROFILE", "VLLM_GPU_DEVICE_ID", "LLAMA_GPU_DEVICE_ID",
    *(k for k in DEFAULTS if k.startswith(("VLLM_", "LLAMA_")) and "DEVICE" not in k),
    "ROUTER_VISION_TIERS", "ROUTER_TIER_LOW_CONTEXT_TOKENS", "ROUTER_TIER_HIGH_CONTEXT_TOKENS",
    "ROUTER_VRAM_HEADROOM_GB",
]  # fmt: skip
CPU_KEYS = [
    "STRATUM_PROFILE", *(k for k in DEFAULTS if k.startswith("CPU_")),
    "ROUTER_VISION_TIERS", "ROUTER_TIER_LOW_CONTEXT_TOKENS", "ROUTER_TIER_HIGH_CONTEXT_TOKENS",
]  # fmt: skip
QAT_CT = "google/gemma-4-E4B-it-qat-w4a16-ct"


def _mib(name: str) -> float:
    return GPUS_MIB[name][0] / 1024


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("16gb", f"16 GB ({GPUS_MIB['16gb'][1]})", (_mib("16gb"),), dict(DEFAULTS)),
        Profile("24gb", f"24 GB ({GPUS_MIB['24gb'][1]})", (_mib("24gb"),), {
            **DEFAULTS, "VLLM_MODEL": QAT_CT, "VLLM_GPU_MEMORY_UTILIZATION": "0.62",
            "VLLM_MAX_MODEL_LEN": "16384", "VLLM_MAX_NUM_SEQS": "16", "VLLM_EAGER_ARGS": "",
            "VLLM_MAX_IMAGES": "1", "LLAMA_MMPROJ_FILE": "", "LLAMA_MMPROJ_ARGS": "",
            "LLAMA_N_CPU_MOE": "22", "LLAMA_CTX_SIZE": "32768", "ROUTER_VISION_TIERS": "tier_low",
            "ROUTER_TIER_LOW_CONTEXT_TOKENS": "16384", "ROUTER_TIER_HIGH_CONTEXT_TOKENS": "16384",
        }),
        Profile("32gb", f"32 GB ({GPUS_MIB['32gb'][1]})", (_mib("32gb"),), {
            **DEFAULTS, "VLLM_MODEL": QAT_CT, "VLLM_GPU_MEMORY_UTILIZATION": "0.5",
            "VLLM_MAX_MODEL_LEN": "32768", "VLLM_MAX_NUM_SEQS": "32", "VLLM_EAGER_ARGS": "",
            "VLLM_MAX_IMAGES": "1", "LLAMA_N_CPU_MOE": "10", "LLAMA_CTX_SIZE": "65536",
            "ROUTER_VISION_TIERS": "tier_low,tier_high",
            "ROUTER_TIER_LOW_CONTEXT_TOKENS": "32768", "ROUTER_TIER_HIGH_CONTEXT_TOKENS": "32768",
        }),
        Profile("dual-16gb", f"two cards, one per engine ({GPUS_MIB['dual-16gb'][1]})",
                (_mib("dual-16gb"), _mib("dual-16gb")), {
            **DEFAULTS, "STRATUM_PROFILE": "dual-gpu", "LLAMA_GPU_DEVICE_ID": "1",
            "VLLM_GPU_MEMORY_UTILIZATION": "0.8", "VLLM_MAX_MODEL_LEN": "16384",
            "VLLM_MAX_NUM_SEQS": "32", "VLLM_EAGER_ARGS": "", "LLAMA_N_CPU_MOE": "7",
            "LLAMA_CTX_SIZE": "32768", "ROUTER_TIER_LOW_CONTEXT_TOKENS": "16384",
            "ROUTER_TIER_HIGH_CONTEXT_TOKENS": "16384",
        }),
        Profile("cpu", "no GPU: 15 GiB of free RAM planned (a machine with 24 GB)", (15.0,), {
            **DEFAULTS, "STRATUM_PROFILE": "cpu", "ROUTER_VISION_TIERS": "none",
        }),
    )
}  # fmt: skip


# .env records which profile it holds: each profile's STRATUM_PROFILE is its own name.
PROFILES = {
    name: replace(p, values={**p.values, "STRATUM_PROFILE": name}) for name, p in PROFILES.items()
}


def profile_gpu_gib(profile: str) -> float:
    """The (first) card's GiB of a profile: its RAM for the cpu profile."""
    return PROFILES[profile].memory_gib[0]


def plan_profile(profile: Profile) -> Plan:
    return make_plan(Settings.from_env(profile.values), list(profile.memory_gib))


def summary(plan: Plan) -> str:
    """One line per memory: what holds how much, what is left."""
    parts = []
    for device in plan.devices:
        held = ", ".join(f"{e.short} {e.total_gib:.2f}" for e in device.engines)
        parts.append(
            f"{device.name}: {held} GiB; {device.free_gib:.2f} GiB left of {device.total_gib:.2f}"
        )
    return ". ".join(parts) + "."


BEGIN = (
    "# >>> GPU profiles: generated by `python3 scripts/plan_vram.py --write-generated`; do not edit"
)
END = "# <<< GPU profiles"


def env_example_section() -> str:
    """The generated part of .env.example: the 16 GB plan active, the others commented."""
    out = [BEGIN]
    for profile in PROFILES.values():
        out += ["#", f"# --- {profile.name} profile: {profile.title} ---"]
        wrapped = _wrap(summary(plan_profile(profile)), 88)
        out += [f"# Planned: {wrapped[0]}", *(f"#   {line}" for line in wrapped[1:])]
        if profile.name == "16gb":
            out.append("# Active below: the default plan.")
            out += [f"{k}={profile.values[k]}" for k in profile.keys]
        else:
            out.append(f"# `bash scripts/start.sh --profile {profile.name}` writes these to .env:")
            out += [f"#   {k}={profile.values[k]}" for k in profile.keys]
    out.append(END)
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def profiles_markdown() -> str:
    """What each shipped profile puts where, and what nvidia-smi (or free) should show."""
    rows = [
        "| profile | memory | what it holds (GiB) | used after start | free after start |",
        "|---|---|---|---:|---:|",
    ]
    for profile in PROFILES.values():
        plan = plan_profile(profile)
        for device in plan.devices:
            held = "<br>".join(e.breakdown() for e in device.engines)
            rows.append(
                f"| {profile.name}: {profile.title} | {device.name}, {device.total_gib:.2f} GiB "
                f"| {held} | {device.planned_gib:.2f} GiB | {device.free_gib:.2f} GiB |"
            )
    return "\n".join(rows)


def allowances_markdown() -> str:
    rows = ["| allowance | GiB | why |", "|---|---:|---|"]
    rows += [f"| `{k}` | {a.gib:.1f} | {a.why} |" for k, a in ALLOWANCES.items()]
    return "\n".join(rows)


def architecture_markdown() -> str:
    rows = [
        "| model | layers (sliding / full, own KV) | hidden | heads / KV heads (full) | head dim "
        "(full) | window | vocab | PLE | experts | encoders |",
        "|---|---|---:|---|---|---:|---:|---:|---|---|",
    ]
    for a in ARCH.values():
        full = sum(a.is_global(i) for i in range(a.layers))
        own = a.layers - a.kv_shared_layers
        experts = f"{a.experts} × {a.moe_intermediate}" if a.experts else "—"
        encoders = ", ".join(
            f"{k} {v / 1e6:.0f}M"
            for k, v in (("vision", a.vision_params), ("audio", a.audio_params))
            if v
        )
        rows.append(
            f"| {a.name} | {a.layers} ({a.layers - full} / {full}, {own}) | {a.hidden} | "
            f"{a.heads} / {a.kv_heads} ({a.global_kv_heads}) | {a.head_dim} "
            f"({a.global_head_dim}) | {a.sliding_window} | {a.vocab} | {a.ple_dim or '—'} | "
            f"{experts} | {encoders} |"
        )
    return "\n".join(rows)


# Generated blocks: (file, name, renderer). In a Markdown file a block sits between
# "<!-- plan_vram.py: NAME -->" and "<!-- end plan_vram.py: NAME -->".
GENERATED_DOCS = {
    "docs/VRAM-REALITY-CHECK.md": {
        "profiles": profiles_markdown,
        "calibration": lambda: render_calibration(calibration()),
        "allowances": allowances_markdown,
        "architecture": architecture_markdown,
    },
}


def replace_block(text: str, begin: str, end: str, body: str, where: str) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < 0:
        raise PlanError(f"{where} has no generated block ({begin!r} ... {end!r})")
    return text[: start + len(begin)] + "\n" + body + "\n" + text[stop:]


def generated_files() -> dict[Path, str]:
    """Every file with generated parts, as it should read."""
    out: dict[Path, str] = {}
    env_example = ROOT / ".env.example"
    text = env_example.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        raise PlanError(f"{env_example} has no generated section ({BEGIN!r} ... {END!r})")
    out[env_example] = text[:start] + env_example_section() + text[text.index("\n", end) + 1 :]
    for rel, blocks in GENERATED_DOCS.items():
        path = ROOT / rel
        text = path.read_text()
        for name, render_block in blocks.items():
            text = replace_block(
                text,
                f"<!-- plan_vram.py: {name} -->",
                f"<!-- end plan_vram.py: {name} -->",
                render_block(),
                rel,
            )
        out[path] = text
    return out


def gib_list(text: str) -> list[float]:
    """``15.93`` or ``15.93,23.99``: GiB per card."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of GiB: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--env", type=Path, help="the .env file to plan")
    source.add_argument("--profile", choices=sorted(PROFILES), help="a shipped profile")
    source.add_argument(
        "--show-profile",
        choices=sorted(PROFILES),
        help="print a shipped profile's settings as KEY=VALUE lines (start.sh writes them to .env)",
    )
    source.add_argument(
        "--write-generated",
        action="store_true",
        help="rewrite the generated parts of .env.example and docs/VRAM-REALITY-CHECK.md",
    )
    source.add_argument(
        "--calibration",
        action="store_true",
        help="the planner next to every published size it is checked against",
    )
    parser.add_argument(
        "--gpu-gb",
        type=gib_list,
        help="each card's memory in GiB as nvidia-smi counts it (memory.total MiB / 1024, e.g. "
        "15.93), comma-separated by card index; 16, 24 or 32 alone mean the shipped profiles' "
        "cards",
    )
    parser.add_argument(
        "--gpu-used-gb",
        type=gib_list,
        default=[0.0],
        help="GiB other processes already hold on each card (a desktop session)",
    )
    parser.add_argument(
        "--ram-gb",
        type=float,
        help="the cpu profile: the machine's available RAM in GiB (start.sh passes MemAvailable)",
    )
    parser.add_argument(
        "--min-free-gib",
        type=float,
        default=1.0,
        help="what must stay free after both engines start (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.calibration:
            print(render_calibration(calibration()))
            return 0
        if args.show_profile:
            profile = PROFILES[args.show_profile]
            print("\n".join(f"{k}={profile.values[k]}" for k in profile.keys))
            return 0
        if args.write_generated:
            for path, text in generated_files().items():
                changed = path.read_text() != text
                if changed:
                    path.write_text(text)
                print(f"{path.relative_to(ROOT)}: " + ("updated" if changed else "up to date"))
            return 0
        if args.profile:
            profile = PROFILES[args.profile]
            values: Mapping[str, str] = profile.values
            memory = args.gpu_gb or ([args.ram_gb] if args.ram_gb else list(profile.memory_gib))
        else:
            # As docker compose does: the shell's environment wins over the file.
            values = {
                **read_env(args.env),
                **{k: os.environ[k] for k in DEFAULTS if k in os.environ},
            }
            if values.get("STRATUM_PROFILE") == "cpu":
                if not args.ram_gb:
                    raise PlanError("--ram-gb is required for the cpu profile (start.sh passes it)")
                memory = [args.ram_gb]
            else:
                if not args.gpu_gb:
                    raise PlanError("--gpu-gb is required (start.sh passes nvidia-smi's)")
                memory = args.gpu_gb
        if len(memory) == 1 and memory[0] in (16, 24, 32):
            memory = [profile_gpu_gib(f"{int(memory[0])}gb")]
        if min(memory) <= 0 or min(args.gpu_used_gb) < 0:
            raise PlanError("memory sizes must be positive and the used memory not negative")
        plan = make_plan(Settings.from_env(values), memory, args.gpu_used_gb, args.min_free_gib)
    except PlanError as exc:
        if args.json:
            print(json.dumps({"fits": False, "error": str(exc)}))
        print(f"plan_vram: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(plan.as_dict(), indent=2) if args.json else render(plan))
    return 0 if plan.fits else 1


if __name__ == "__main__":
    raise SystemExit(main())
