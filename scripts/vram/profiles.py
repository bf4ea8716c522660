"""The shipped profiles: the settings that fit a 16, 24 or 32 GB card, two 16 GB cards, or no GPU
(``bash scripts/start.sh --profile NAME`` writes one to .env; .env.example lists them all)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from vram_facts import GPUS_MIB

from vram.model import Plan, make_plan
from vram.settings import DEFAULTS, LAYOUTS, Settings


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
