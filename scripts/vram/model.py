"""The memory model: what each engine of a .env's settings holds on its card (weights by part,
KV cache, overhead), what is left, and whether that fits.

For each engine it works out, from the models' architecture (``vram_facts.ARCH``: every
constant with its source) and the format of each part of the checkpoint (``CHECKPOINTS``,
``GGUF_FILES``): the weights by part, the KV cache, and the overhead (stated allowances for the
CUDA context, activations and compute buffers: ``ALLOWANCES``), then what is left on the card.
Both engines preallocate: vLLM takes ``VLLM_GPU_MEMORY_UTILIZATION`` of the whole card (plus its
CUDA context) and sizes its KV cache inside that share; llama-server allocates its weights, KV
cache and compute buffers at start. What is left after both is the free memory the router's
``vram`` rule sees in the steady state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vram_facts import (
    ALLOWANCES,
    ARCH,
    BITS,
    CHECKPOINTS,
    FP8_ONLINE,
    GGUF_FILES,
    GIB,
    LLAMA_CACHE_BYTES,
    LLAMA_UBATCH,
    MMPROJ_FILES,
    RETRIEVAL_FILES,
    VLLM_BLOCK_SIZE,
    VLLM_IN_FLIGHT_TOKENS,
    Arch,
    Checkpoint,
    gguf_embedding_bytes,
    gguf_layer_bytes,
)

from vram.settings import PlanError, Settings


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
            "add its parts and their formats to CHECKPOINTS in scripts/vram_facts.py"
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
            f"({', '.join(GGUF_FILES)}); add it to GGUF_FILES in scripts/vram_facts.py"
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
                f"({', '.join(MMPROJ_FILES)}); add it to MMPROJ_FILES in scripts/vram_facts.py"
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
    """The plan as start.sh shows it: each card, each engine by part, then FITS or why not."""
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
