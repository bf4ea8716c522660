"""The routing rules. Each is a small pure function ``rule(query, state) -> tier | None``.

The router asks them in order and the first answer that is not ``None`` wins; when all abstain
the prompt goes to tier_high. The order (see :data:`BUILTIN_RULES`): an explicit request, then
what must hold (the context fits, images go to a vision tier), then the quality choice
(complexity), then the protections of the shared GPU and of the latency target (utilisation
circuit, free memory, SLA). Two redirects (:data:`REDIRECTS`) then move a soft choice away from a
tier that is down or saturated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import RoutingConfig, Tier
from .gpu import UNAVAILABLE, GpuSnapshot


class RoutingError(ValueError):
    """No tier can take this request; the message says why in words a user understands."""

    code = "routing_error"


class ContextLengthError(RoutingError):
    code = "context_length_exceeded"


class NoVisionTierError(RoutingError):
    code = "vision_not_supported"


@dataclass(frozen=True, slots=True)
class TierStatus:
    """What the service knows about a tier (health probes, load polling)."""

    up: bool = True
    saturated: bool = False


@dataclass(frozen=True)
class RouterState:
    """Everything a rule may look at for one decision. Immutable."""

    config: RoutingConfig
    score: float = 0.0
    dimensions: Mapping[str, float] = field(default_factory=dict)
    gpu: GpuSnapshot = UNAVAILABLE
    ema_ms: Mapping[str, float] = field(default_factory=dict)
    tiers: Mapping[str, TierStatus] = field(default_factory=dict)
    requested_tier: Tier | None = None
    images: int = 0
    estimated_tokens: int = 0
    housekeeping: bool = False
    """The request is a chat UI's background task (title, tags...): see :mod:`.tasks`."""
    regenerate: bool = False
    """The same person sent the same messages again, soon after their answer (a chat UI's
    "regenerate", or the same question asked again): the service remembers, the rule decides."""

    # Names the 0.1 release's custom rules used.
    @property
    def complexity(self) -> float:
        return self.score

    @property
    def vram_free_gb(self) -> float | None:
        return self.gpu.free_gb if self.gpu.available else None

    @property
    def gpu_util_pct(self) -> float | None:
        return self.gpu.utilization_pct if self.gpu.available else None

    def tier(self, name: str) -> TierStatus:
        return self.tiers.get(name, _UP)


_UP = TierStatus()

Rule = Callable[[str, RouterState], Any]


def _other(tier: str) -> Tier:
    return "tier_high" if tier == "tier_low" else "tier_low"


def override_rule(query: str, state: RouterState) -> Tier | None:
    """The caller named a tier (a model alias such as gemma4-smart, or tier_low/tier_high)."""
    return state.requested_tier


def context_rule(query: str, state: RouterState) -> Tier | None:
    """A prompt too long for tier_low goes to tier_high; too long for both is refused."""
    cfg = state.config
    if state.estimated_tokens <= cfg.tier_low_context_tokens:
        return None
    if state.estimated_tokens <= cfg.tier_high_context_tokens:
        return "tier_high"
    raise ContextLengthError(
        f"the request needs about {state.estimated_tokens} tokens (prompt and output), more "
        f"than either tier's context window (tier_low {cfg.tier_low_context_tokens}, "
        f"tier_high {cfg.tier_high_context_tokens}); shorten the conversation or max_tokens"
    )


def vision_rule(query: str, state: RouterState) -> Tier | None:
    """Images go to a tier configured as vision-capable, preferring one that is up."""
    if not state.images:
        return None
    capable = state.config.vision_tiers
    if not capable:
        raise NoVisionTierError(
            "this request contains images but no tier is configured to accept them "
            "(vision_tiers is empty)"
        )
    for tier in capable:
        if state.tier(tier).up:
            return tier
    return capable[0]


def health_redirect(tier: Tier, state: RouterState) -> Tier | None:
    """The chosen tier is marked down and the other is up: use the other."""
    other = _other(tier)
    if not state.tier(tier).up and state.tier(other).up:
        return other
    return None


def load_redirect(tier: Tier, state: RouterState) -> Tier | None:
    """The chosen tier is saturated (queue over its limit) and the other is not: use the other."""
    other = _other(tier)
    if state.tier(tier).saturated and not state.tier(other).saturated and state.tier(other).up:
        return other
    return None


def task_rule(query: str, state: RouterState) -> Tier | None:
    """A chat UI's housekeeping (title, tags, follow-ups, queries...) is tier_low's work."""
    return "tier_low" if state.housekeeping else None


def regenerate_rule(query: str, state: RouterState) -> Tier | None:
    """The same messages again from the same person: the first answer did not satisfy, so the
    strong model answers, unless tier_high is down (then the usual rules)."""
    if state.regenerate and state.tier("tier_high").up:
        return "tier_high"
    return None


def complexity_rule(query: str, state: RouterState) -> Tier | None:
    """Below the threshold the small model is enough; at or above, let the GPU rules speak."""
    return "tier_low" if state.score < state.config.complexity_threshold else None


def gpu_util_rule(query: str, state: RouterState) -> Tier | None:
    """The GPU has been saturated for ``gpu_util_polls`` polls in a row: spare it."""
    if state.gpu.available and state.gpu.hot_polls >= state.config.gpu_util_polls:
        return "tier_low"
    return None


def vram_rule(query: str, state: RouterState) -> Tier | None:
    """Less free GPU memory than the headroom: the big model's KV cache could not grow."""
    free = state.vram_free_gb
    if free is not None and free < state.config.vram_headroom_gb:
        return "tier_low"
    return None


def sla_rule(query: str, state: RouterState) -> Tier | None:
    """tier_high's recent latency is over the SLA: answer on tier_low instead."""
    ema = state.ema_ms.get("tier_high")
    if ema is not None and ema > state.config.latency_sla_ms:
        return "tier_low"
    return None


BUILTIN_RULES: tuple[tuple[str, Rule], ...] = (
    ("override", override_rule),
    ("context", context_rule),
    ("vision", vision_rule),
    ("task", task_rule),
    ("regenerate", regenerate_rule),
    ("complexity", complexity_rule),
    ("gpu_util", gpu_util_rule),
    ("vram", vram_rule),
    ("sla", sla_rule),
)
"""Built-in rules in the order they are asked (custom rules come right after ``override``),
with the reason each reports."""

REDIRECTS: tuple[tuple[str, Callable[[Tier, RouterState], Tier | None]], ...] = (
    ("health", health_redirect),
    ("load", load_redirect),
)
"""Asked after the rules, about the tier they chose, unless the choice was a hard one
(``HARD_REASONS``): they move work away from a tier that is down or saturated."""

HARD_REASONS = frozenset({"override", "context", "vision"})


def context_tokens(tier: str, config: RoutingConfig) -> int:
    return config.tier_low_context_tokens if tier == "tier_low" else config.tier_high_context_tokens


_VISION_WHY = {
    "override": "the model named in the request",
    "context": "the only tier whose context window fits the request",
}


def check_vision(tier: Tier, reason: str, state: RouterState) -> None:
    """An image never goes to a tier outside ``vision_tiers``, whatever rule chose it."""
    if state.images and tier not in state.config.vision_tiers:
        why = _VISION_WHY.get(reason, f"chosen by the {reason!r} rule")
        capable = ", ".join(state.config.vision_tiers) or "none"
        raise NoVisionTierError(
            f"this request contains images, but {tier} ({why}) does not accept them "
            f"(vision_tiers: {capable}); send it without images or to a model that takes them"
        )


def fallback(tier: Tier, reason: str, state: RouterState) -> tuple[Tier | None, str | None]:
    """The one failover policy: the tier to retry on when ``tier`` fails before its first byte,
    or ``None`` and why not. The service only executes it."""
    cfg = state.config
    other = _other(tier)
    if reason == "override" and not cfg.allow_degraded:
        return None, "this model does not fall back: allow_degraded is off"
    if state.images and other not in cfg.vision_tiers:
        return None, f"the request has images and {other} does not accept them (vision_tiers)"
    if state.estimated_tokens > context_tokens(other, cfg):
        return None, "the prompt only fits this tier's context window"
    return other, None


DEFAULT_REASON = "complexity"
"""Reason reported when every rule abstained: the prompt was complex enough for tier_high."""
