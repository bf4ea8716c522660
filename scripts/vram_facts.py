"""The facts the GPU memory planner (scripts/plan_vram.py) counts with, each with its source:
the models' architecture, how each checkpoint stores each part, the GGUF quantization recipe,
the GPUs' sizes, the engines' internals the KV cache depends on, and the stated allowances for
what cannot be derived. Standard library only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

GIB = 1024**3

# --- Architecture (one table; every number with its source) -------------------------------------

HF_CONFIG = (
    "the model's config.json (copies of the Hugging Face config in public code; the same values "
    "are in vLLM's and llama.cpp's Gemma 4 model code)"
)
MODEL_CARD = "Gemma 4 model card table (Hugging Face; vLLM recipe agrees)"


@dataclass(frozen=True)
class Arch:
    """What the memory of a Gemma 4 model depends on."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    """Dense (or, in the MoE, shared-expert) MLP width."""
    heads: int
    kv_heads: int
    head_dim: int
    global_kv_heads: int
    global_head_dim: int
    full_attention_every: int
    """Layer i is full (global) attention when i % this == this - 1; the others slide."""
    sliding_window: int
    vocab: int
    kv_shared_layers: int = 0
    """The last N layers reuse earlier layers' KV (E-models): no K/V weights, no KV cache."""
    ple_dim: int = 0
    """Per-layer-embedding width (E-models): a vocab x layers x ple_dim table."""
    k_eq_v: bool = False
    """Full-attention layers use K as V (26B): no V projection."""
    double_wide_mlp: bool = False
    """The KV-sharing layers have twice the MLP width (E2B)."""
    experts: int = 0
    moe_intermediate: int = 0
    vision_params: float = 0.0
    audio_params: float = 0.0
    sources: Mapping[str, str] = field(default_factory=dict)

    def is_global(self, layer: int) -> bool:
        return layer % self.full_attention_every == self.full_attention_every - 1

    def has_own_kv(self, layer: int) -> bool:
        return layer < self.layers - self.kv_shared_layers

    def attention_params(self, layer: int) -> int:
        glob = self.is_global(layer)
        head_dim = self.global_head_dim if glob else self.head_dim
        kv_heads = self.global_kv_heads if glob else self.kv_heads
        q_and_o = 2 * self.hidden * self.heads * head_dim
        if not self.has_own_kv(layer):
            return q_and_o
        k = self.hidden * kv_heads * head_dim
        v = 0 if glob and self.k_eq_v else k
        return q_and_o + k + v

    def params(self) -> dict[str, float]:
        """Parameters by part of the checkpoint."""
        attention = sum(self.attention_params(i) for i in range(self.layers))
        mlp = 3 * self.hidden * self.intermediate * self.layers
        if self.double_wide_mlp:
            mlp += 3 * self.hidden * self.intermediate * self.kv_shared_layers
        ple_gates = 2 * self.hidden * self.ple_dim * self.layers
        ple_projection = self.hidden * self.ple_dim * self.layers
        router = self.hidden * self.experts * self.layers
        parts = {
            "embed_tokens": float(self.vocab * self.hidden),
            "per_layer_embeddings": float(self.vocab * self.layers * self.ple_dim),
            "linears": float(attention + mlp + ple_gates + ple_projection + router),
            "experts": float(3 * self.hidden * self.moe_intermediate * self.experts * self.layers),
            "vision": self.vision_params,
            "audio": self.audio_params,
        }
        return {k: v for k, v in parts.items() if v}

    def kv_bytes_per_token(self, layer: int, dtype_bytes: float, store_v: bool = True) -> float:
        """K and V of one token in one layer (0 for layers that reuse another layer's KV)."""
        if not self.has_own_kv(layer):
            return 0.0
        glob = self.is_global(layer)
        head_dim = self.global_head_dim if glob else self.head_dim
        kv_heads = self.global_kv_heads if glob else self.kv_heads
        tensors = 2 if store_v or not (glob and self.k_eq_v) else 1
        return tensors * kv_heads * head_dim * dtype_bytes


ARCH: dict[str, Arch] = {
    "gemma-4-E2B": Arch(
        name="gemma-4-E2B",
        layers=35,
        hidden=1536,
        intermediate=6144,
        heads=8,
        kv_heads=1,
        head_dim=256,
        global_kv_heads=1,
        global_head_dim=512,
        full_attention_every=5,
        sliding_window=512,
        vocab=262144,
        kv_shared_layers=20,
        ple_dim=256,
        double_wide_mlp=True,
        vision_params=150e6,
        audio_params=300e6,
        sources={
            "layers 35, hidden 1536, intermediate 6144, 8 heads, 1 KV head, head dims 256/512, "
            "window 512, num_kv_shared_layers 20, PLE 256, use_double_wide_mlp, every fifth "
            "layer full attention": HF_CONFIG,
            "vision ~150M, audio ~300M": MODEL_CARD,
        },
    ),
    "gemma-4-E4B": Arch(
        name="gemma-4-E4B",
        layers=42,
        hidden=2560,
        intermediate=10240,
        heads=8,
        kv_heads=2,
        head_dim=256,
        global_kv_heads=2,
        global_head_dim=512,
        full_attention_every=6,
        sliding_window=512,
        vocab=262144,
        kv_shared_layers=18,
        ple_dim=256,
        vision_params=150e6,
        audio_params=300e6,
        sources={
            "layers, hidden, intermediate, heads, kv heads, head dims, window, vocab, "
            "kv_shared_layers, ple_dim": HF_CONFIG
            + " (num_key_value_heads 2, global_head_dim 512, num_kv_shared_layers 18, "
            "hidden_size_per_layer_input 256, attention_k_eq_v false)",
            "vision ~150M, audio ~300M": MODEL_CARD,
            "linears 3.945e9 (cross-check)": "GLQ quantization of E4B lists 3,945,267,200 "
            "quantized weights (friendli.ai model page of xv0y5ncu/Gemma-4-E4B-it-GLQ-3.5bpw)",
        },
    ),
    "gemma-4-26B-A4B": Arch(
        name="gemma-4-26B-A4B",
        layers=30,
        hidden=2816,
        intermediate=2112,
        heads=16,
        kv_heads=8,
        head_dim=256,
        global_kv_heads=2,
        global_head_dim=512,
        full_attention_every=6,
        sliding_window=1024,
        vocab=262144,
        k_eq_v=True,
        experts=128,
        moe_intermediate=704,
        vision_params=550e6,
        sources={
            "layers, hidden, shared-expert intermediate, heads, kv heads, head dims, window, "
            "vocab, experts 128 (top 8), moe_intermediate 704, attention_k_eq_v": HF_CONFIG,
            "30 layers = 26B-A4B": "llama.cpp src/models/gemma4.cpp (b11549): case 30",
            "vision ~550M": MODEL_CARD,
            "25.2B parameters in all (cross-check)": MODEL_CARD,
        },
    ),
}

# --- Formats: bits per weight ---------------------------------------------------------------------

BITS = {
    "bf16": 16.0,
    "fp8": 8.0,  # per-tensor scale: negligible
    "int4-g32": 4.5,  # 4-bit values + a 16-bit scale per group of 32 (Gemma 4's QAT grid)
    "q4_0": 4.5,  # ggml: 32 x 4 bit + f16 scale
    "q4_k": 4.5,  # ggml k-quant super-blocks (ggml-common.h block_q4_K: 144 bytes / 256)
    "q5_0": 5.5,  # block_q5_0: 22 bytes / 32
    "q6_k": 6.5625,  # block_q6_K: 210 bytes / 256
    "q8_0": 8.5,  # block_q8_0: 34 bytes / 32
    "f32": 32.0,
}

# --- Checkpoints vLLM can load: the format of each part -----------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    repo: str
    arch: str
    formats: Mapping[str, str]
    """Part -> format; a part missing here is not in the checkpoint (text-only builds)."""
    separate_lm_head: str | None
    """Format of an output layer stored apart from embed_tokens (None: tied, not stored)."""
    source: str
    fp8_online: bool = False

    @property
    def multimodal(self) -> bool:
        return "vision" in self.formats


CHECKPOINTS: dict[str, Checkpoint] = {
    "google/gemma-4-E4B-it": Checkpoint(
        repo="google/gemma-4-E4B-it",
        arch="gemma-4-E4B",
        formats={
            p: "bf16"
            for p in ("embed_tokens", "per_layer_embeddings", "linears", "vision", "audio")
        },
        separate_lm_head=None,
        source="Google's BF16 release; vLLM 0.29 loads it in 14.9 GiB on an RTX 5060 Ti "
        "(huggingface.co/google/gemma-4-E4B-it/discussions/55)",
    ),
    "google/gemma-4-E4B-it-qat-w4a16-ct": Checkpoint(
        repo="google/gemma-4-E4B-it-qat-w4a16-ct",
        arch="gemma-4-E4B",
        formats={
            "embed_tokens": "bf16",
            "per_layer_embeddings": "bf16",
            "linears": "int4-g32",
            "vision": "bf16",
            "audio": "bf16",
        },
        separate_lm_head="bf16",
        source="Google's QAT build for vLLM (compressed-tensors W4A16): linears 4-bit, embedding "
        "tables 16-bit, and a separate 262144 x 2560 BF16 lm_head; vLLM 0.30 holds 11.04 GiB of "
        "weights on an L4 (xbill9/sagemaker-gemma, 'Gemma 4 on Amazon SageMaker: 4-Bit "
        "Embeddings', safetensors headers read from the Hub)",
    ),
    "xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4": Checkpoint(
        repo="xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4",
        arch="gemma-4-E4B",
        formats={
            "embed_tokens": "int4-g32",
            "per_layer_embeddings": "int4-g32",
            "linears": "int4-g32",
        },
        separate_lm_head="int4-g32",
        source="Google's QAT weights (gemma-4-E4B-it-qat-q4_0-unquantized) repacked as "
        "compressed-tensors W4A16 with 4-bit embeddings and a 4-bit lm_head, text only; "
        "vLLM 0.30 holds 4.52 GiB of weights and a 376,156-token KV cache on an L4 at 0.9 "
        "(xbill9/sagemaker-gemma, articles 'Gemma 4 on Amazon SageMaker: 4-Bit Embeddings' and "
        "'... The NVIDIA T4 Decodes at 0.8x of the L4')",
    ),
}
FP8_ONLINE = (
    "vLLM's --quantization fp8 quantizes linear layers only: Fp8Config.get_quant_method returns "
    "None for VocabParallelEmbedding (vllm 0.31.0 model_executor/layers/quantization/fp8.py), and "
    "Gemma 4's encoders stay BF16 (gemma4_mm.py)"
)

# --- GGUF files llama-server can load ------------------------------------------------------------

GGUF_Q4_K_M = (
    "llama.cpp src/llama-quant.cpp (b11549), LLAMA_FTYPE_MOSTLY_Q4_K_M: Q4_K by default; "
    "token_embd (tied output) Q6_K; attn_v and ffn_down(_exps) Q6_K on the layers "
    "use_more_bits() picks (14 of 30), else Q4_K; a tensor whose rows are not a multiple of 256 "
    "falls back (tensor_type_fallback: Q4_K to Q5_0, Q6_K to Q8_0): Gemma 4 26B's ffn_down "
    "(2112 wide) and ffn_down_exps (704); the router ffn_gate_inp and 1-D tensors F32"
)
GGUF_Q4_0 = (
    "llama.cpp src/llama-quant.cpp (b11549), LLAMA_FTYPE_MOSTLY_Q4_0: Q4_0 for every matrix "
    "(32-wide blocks: no fallback), token_embd (tied output) Q6_K; the router and 1-D tensors F32"
)
GGUF_QAT_Q4_0 = (
    "Google's QAT Q4_0 GGUF: every matrix Q4_0, the token embedding too (Google's QAT grid); "
    "inferred from the file's size: 14,439,363,584 bytes, 178,782,240 fewer than ggml-org's Q4_0 "
    "(Q6_K token_embd), which is what a Q4_0 token_embd saves (190 MB); the recipe comes within "
    "1.5 % of both files. The tensor types themselves could not be read here"
)
RECIPES = {"q4_k_m": GGUF_Q4_K_M, "q4_0": GGUF_Q4_0, "qat_q4_0": GGUF_QAT_Q4_0}
"""How a GGUF file stores each part; gguf_layer_bytes and gguf_embedding_bytes follow them."""


@dataclass(frozen=True)
class GgufFile:
    name: str
    arch: str
    recipe: str
    file_bytes: int | None
    source: str


GGUF_FILES: dict[str, GgufFile] = {
    # The cpu profile's models: the whole file is read into RAM (llama.cpp maps it).
    "gemma-4-E2B-it-Q4_K_M.gguf": GgufFile(
        name="gemma-4-E2B-it-Q4_K_M.gguf",
        arch="gemma-4-E2B",
        recipe="q4_k_m",
        file_bytes=2963 * 1024**2,
        source="unsloth/gemma-4-E2B-it-GGUF; 2,963 MiB, sha256 9378bc47... (a public project's "
        "pinned model table)",
    ),
    "gemma-4-E4B-it-Q4_K_M.gguf": GgufFile(
        name="gemma-4-E4B-it-Q4_K_M.gguf",
        arch="gemma-4-E4B",
        recipe="q4_k_m",
        file_bytes=4_977_169_568,
        source="unsloth/gemma-4-E4B-it-GGUF; 4,977,169,568 bytes (a public project's model "
        "table; about 5 GB in others)",
    ),
    "gemma-4-26B-A4B-it-Q4_K_M.gguf": GgufFile(
        name="gemma-4-26B-A4B-it-Q4_K_M.gguf",
        arch="gemma-4-26B-A4B",
        recipe="q4_k_m",
        file_bytes=16_800_000_000,
        source="ggml-org/gemma-4-26B-A4B-it-GGUF; 16.80 GB per the Hub's file list (quoted by "
        "smeltcore.com's Gemma 4 26B-A4B recipe)",
    ),
    "gemma-4-26B-A4B-it-Q4_0.gguf": GgufFile(
        name="gemma-4-26B-A4B-it-Q4_0.gguf",
        arch="gemma-4-26B-A4B",
        recipe="q4_0",
        file_bytes=14_618_145_824,
        source="ggml-org/gemma-4-26B-A4B-it-GGUF; 14,618,145,824 bytes (the repository's file "
        "list, as read for /work/shared/reference/upstream-check.md, 2026-12-05)",
    ),
    "gemma-4-26B_q4_0-it.gguf": GgufFile(
        name="gemma-4-26B_q4_0-it.gguf",
        arch="gemma-4-26B-A4B",
        recipe="qat_q4_0",
        file_bytes=14_439_363_584,
        source="google/gemma-4-26B-A4B-it-qat-q4_0-gguf at revision d1c082be (2026-07-17, the "
        "corrected-vocabulary revision); 14,439,363,584 bytes, sha256 3eca3b8f... (pinned with "
        "the Hub's size and LFS SHA-256 by several public projects); Google's quantization-aware "
        "trained Q4_0; Apache 2.0, Gemma 4's licence",
    ),
}

RETRIEVAL_FILES: dict[str, tuple[int, str]] = {
    # The retrieval engines' models (docker-compose.yml: embed, rerank), read whole into RAM by
    # llama.cpp's CPU server. Sizes as public projects pin them with their SHA-256;
    # download_models.py checks size and SHA-256 against the Hub at download time.
    "embeddinggemma-300M-qat-Q4_0.gguf": (
        277_852_192,
        "ggml-org/embeddinggemma-300M-qat-q4_0-GGUF (the file llama.cpp's --embd-gemma-default "
        "preset loads, common/arg.cpp); 277,852,192 bytes, sha256 50d28e22...",
    ),
    "bge-reranker-v2-m3-Q4_K_M.gguf": (
        438_376_864,
        "gpustack/bge-reranker-v2-m3-GGUF; 438,376,864 bytes, sha256 e186a244...",
    ),
}

MMPROJ_FILES: dict[str, tuple[int, str]] = {
    "mmproj-gemma-4-26B-A4B-it-Q8_0.gguf": (
        806_408_320,
        "ggml-org/gemma-4-26B-A4B-it-GGUF at revision bb4531cd, 806,408,320 bytes (pinned with "
        "its sha256 in several public projects)",
    ),
    "mmproj-gemma-4-26B-A4B-it-F16.gguf": (
        1_190_000_000,
        "same repository, about 1.19 GB (secondary: quoted sizes)",
    ),
    "gemma-4-26B-it-mmproj.gguf": (
        1_194_828_160,
        "google/gemma-4-26B-A4B-it-qat-q4_0-gguf at revision d1c082be, the QAT file's own "
        "projector: 1,194,828,160 bytes, sha256 a359953a... (public projects' pins; F16-sized)",
    ),
}


def use_more_bits(layer: int, layers: int) -> bool:
    """llama-quant.cpp's choice of layers that get more bits in Q4_K_M."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def _k_quant(bits: str, ncols: int) -> float:
    """llama-quant.cpp's tensor_type_fallback: a 256-block type on rows it cannot divide."""
    if ncols % 256 == 0:
        return BITS[bits]
    return BITS[{"q4_k": "q5_0", "q6_k": "q8_0"}[bits]]


def gguf_layer_bytes(arch: Arch, layer: int, recipe: str = "q4_k_m") -> tuple[float, float]:
    """(non-expert bytes, expert bytes) of one layer of a GGUF file made with ``recipe``."""
    glob = arch.is_global(layer)
    head_dim = arch.global_head_dim if glob else arch.head_dim
    kv_heads = arch.global_kv_heads if glob else arch.kv_heads
    q = o = arch.hidden * arch.heads * head_dim
    k = arch.hidden * kv_heads * head_dim
    v = 0 if glob and arch.k_eq_v else k
    shared_mlp = arch.hidden * arch.intermediate
    router = arch.hidden * arch.experts * BITS["f32"]  # ffn_gate_inp is never quantized
    expert_width = arch.hidden * arch.moe_intermediate * arch.experts
    if recipe == "q4_k_m":
        more = "q6_k" if use_more_bits(layer, arch.layers) else "q4_k"
        non_expert = (
            (q + o + k + 2 * shared_mlp) * BITS["q4_k"]
            + v * BITS[more]
            + shared_mlp * _k_quant(more, arch.intermediate)
            + router
        ) / 8
        experts = (
            2 * expert_width * BITS["q4_k"] + expert_width * _k_quant(more, arch.moe_intermediate)
        ) / 8
    elif recipe in ("q4_0", "qat_q4_0"):
        non_expert = ((q + o + k + v + 3 * shared_mlp) * BITS["q4_0"] + router) / 8
        experts = 3 * expert_width * BITS["q4_0"] / 8
    else:
        raise ValueError(f"unknown GGUF recipe {recipe!r} (known: {', '.join(RECIPES)})")
    return non_expert, experts


def gguf_embedding_bytes(arch: Arch, recipe: str = "q4_k_m") -> float:
    """The token embedding (tied: also the output layer)."""
    return arch.vocab * arch.hidden * BITS["q4_0" if recipe == "qat_q4_0" else "q6_k"] / 8


def gguf_file_bytes(arch: Arch, recipe: str = "q4_k_m") -> float:
    layers = [gguf_layer_bytes(arch, i, recipe) for i in range(arch.layers)]
    return gguf_embedding_bytes(arch, recipe) + sum(a + b for a, b in layers)


# --- Allowances (stated, not measured here) -------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    gib: float
    why: str


ALLOWANCES: dict[str, Allowance] = {
    "cuda_context": Allowance(
        0.5,
        "per process: the CUDA context and libraries (cuBLAS, kernels) outside any engine's own "
        "accounting; vLLM takes its memory snapshot after creating it, so it comes on top of "
        "the --gpu-memory-utilization share (vllm 0.31.0 v1/worker/gpu_worker.py). An "
        "allowance, not a measurement.",
    ),
    "vllm_activations": Allowance(
        1.8,
        "vLLM's profiling-run peak, which it subtracts inside its share: 1.79 GiB measured for "
        "the emb4 builds under vLLM 0.30 with the default 2048 batched tokens, on a cold start "
        "that includes torch.compile (xbill9/sagemaker-gemma, '4-Bit Embeddings'); "
        "--enforce-eager skips the compile, so this is an upper bound there.",
    ),
    "vllm_encoder_profiling": Allowance(
        0.5,
        "extra profiling peak when images are on: vLLM runs the vision encoder on dummy images "
        "at start. An allowance.",
    ),
    "vllm_cuda_graphs": Allowance(
        1.0,
        "CUDA graphs (without --enforce-eager): vLLM estimates their memory and subtracts it "
        "inside its share (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 by default in 0.31). An "
        "allowance; the first start also compiles, which can add to the measured peak.",
    ),
    "llama_compute": Allowance(
        1.0,
        "llama-server's compute buffers on the GPU for a 512-token micro-batch (logits of a "
        "262144-word vocabulary, attention, MoE routing). An allowance; the start log prints "
        "the real figure ('CUDA0 compute buffer size').",
    ),
    "llama_cpu_compute": Allowance(
        0.5,
        "a CPU llama-server's compute buffers (the cpu profile). An allowance.",
    ),
    "stack_ram": Allowance(
        3.0,
        "the rest of the stack in RAM on a CPU-only machine: OpenWebUI (no embedding model of its "
        "own: it uses the stack's), "
        "LiteLLM and PostgreSQL, Prometheus, Grafana, the router. An allowance.",
    ),
    "retrieval_cpu_compute": Allowance(
        0.5,
        "a retrieval engine's compute buffers for its 2048-token micro-batch (attention over "
        "a whole input at once), on the CPU or the GPU. An allowance; the start log prints the "
        "real figure ('compute buffer size').",
    ),
    "mmproj_compute": Allowance(
        0.3,
        "the vision projector's compute buffer for one image. An allowance.",
    ),
}

# --- GPUs (nvidia-smi memory.total) ---------------------------------------------------------------

GPUS_MIB = {
    # nvidia-smi's memory.total as public logs show it; the smaller of a class where cards differ.
    "16gb": (16311, "RTX 5060 Ti class, 16311 MiB"),
    "24gb": (24564, "RTX 4090 / 3090 class, 24564 MiB"),
    "32gb": (32607, "RTX 5090 class, 32607 MiB"),
    "dual-16gb": (16311, "two RTX 5060 Ti class cards, 16311 MiB each"),
}

# --- vLLM internals the KV cache size depends on --------------------------------------------------

VLLM_BLOCK_SIZE = 16
VLLM_BATCHED_TOKENS = 2048
"""Default max_num_batched_tokens for the API server on GPUs under 70 GiB (vllm 0.31.0
engine/arg_utils.py); with async scheduling two batches are in flight (config/vllm.py,
max_in_flight_tokens)."""
VLLM_IN_FLIGHT_TOKENS = 2 * VLLM_BATCHED_TOKENS
LLAMA_UBATCH = 512
"""llama-server's default micro-batch (common/common.h n_ubatch)."""

KV_DTYPE_BYTES = {
    "auto": 2.0,
    "bfloat16": 2.0,
    "float16": 2.0,
    "fp8": 1.0,
    "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0,
}
LLAMA_CACHE_BYTES = {
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": BITS["q8_0"] / 8,
    "q4_0": BITS["q4_0"] / 8,
    "f32": 4.0,
}
