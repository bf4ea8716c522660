"""The settings of a .env that GPU memory depends on: read as Docker Compose reads them, with
docker-compose.yml's fallbacks, and checked (a bad value is a :class:`PlanError`)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import envfile  # the one .env reader (scripts/envfile.py)
from vram_facts import KV_DTYPE_BYTES, LLAMA_CACHE_BYTES


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


LAYOUTS = {"16gb": "gpu", "24gb": "gpu", "32gb": "gpu", "dual-16gb": "dual-gpu", "cpu": "cpu",
           "gpu": "gpu", "dual-gpu": "dual-gpu"}  # fmt: skip
"""What STRATUM_PROFILE may say: a shipped profile's name (start.sh writes it with the
profile's settings), or gpu / dual-gpu for a layout of your own; and the layout each means: how
the engines share the hardware (gpu: one card, dual-gpu: one card per engine, cpu: no GPU)."""

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
