"""The decision engine: score the prompt, ask the rules, return a tier, the reason and the
fallback.

Pure and synchronous: no I/O on the decision path. The GPU monitor's thread swaps an immutable
snapshot that :meth:`AdaptiveRouter.decide` reads; the tiers' health and load are passed in by
the caller (the service keeps them, in one place) with each decision.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .config import TIERS, RoutingConfig, Tier
from .conversation import Conversation, Message, read_conversation
from .encoder import DifficultyEncoder, EncoderFileError, shipped_encoder
from .gpu import GpuMonitor, GpuSnapshot, NvmlSource
from .rules import (
    BUILTIN_RULES,
    DEFAULT_REASON,
    HARD_REASONS,
    REDIRECTS,
    RouterState,
    RoutingError,
    Rule,
    TierStatus,
    check_vision,
    fallback,
)
from .scorer import ComplexityScorer, ScoreBreakdown
from .sla import LatencyEMA
from .tasks import is_housekeeping


@dataclass(frozen=True)
class Decision:
    """A routing decision and everything that explains it."""

    tier: Tier
    reason: str
    """Name of the rule that decided (``complexity``, ``vram``, ``sla``, ``override``...)."""
    score: float
    dimensions: Mapping[str, float]
    gpu: GpuSnapshot
    ema_ms: Mapping[str, float]
    context_score: float | None = None
    estimated_tokens: int = 0
    policy_tier: Tier | None = None
    """The tier chosen before a health/load redirect (equals ``tier`` when none happened)."""
    decision_us: float = 0.0
    tiers: Mapping[str, TierStatus] = field(default_factory=dict)
    fallback: Tier | None = None
    """The tier to retry on if ``tier`` fails before its first byte (``None``: no retry)."""
    no_fallback: str | None = None
    """Why there is no fallback, in words for an error message."""
    housekeeping: bool = False
    """The request is a chat UI's background task (see :mod:`.tasks`), whatever tier it named."""
    linear_score: float | None = None
    """The score the complexity model alone gives, when the encoder was asked too."""
    second_opinion: float | None = None
    """The encoder's score of the last turn, when it was asked (see :mod:`.encoder`)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "reason": self.reason,
            "score": round(self.score, 4),
            "linear_score": _rounded(self.linear_score),
            "second_opinion": _rounded(self.second_opinion),
            "dimensions": {k: round(v, 4) for k, v in self.dimensions.items()},
            "context_score": None if self.context_score is None else round(self.context_score, 4),
            "estimated_tokens": self.estimated_tokens,
            "policy_tier": self.policy_tier or self.tier,
            "gpu": self.gpu.as_dict(),
            "ema_ms": {k: round(v, 1) for k, v in self.ema_ms.items()},
            "tiers": {k: {"up": v.up, "saturated": v.saturated} for k, v in self.tiers.items()},
            "fallback": self.fallback,
            "no_fallback": self.no_fallback,
            "decision_us": round(self.decision_us, 1),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True)
class Assessment:
    """The part of a decision that reads the prompt (see :meth:`AdaptiveRouter.assess`)."""

    conversation: Conversation
    breakdown: ScoreBreakdown
    housekeeping: bool
    elapsed_us: float
    """CPU-bound time spent so far (reading and scoring; the encoder's pass when it ran)."""

    @property
    def needs_second_opinion(self) -> bool:
        return self.breakdown.pending is not None

    def without_second_opinion(self) -> Assessment:
        """The same assessment, decided by the complexity model alone."""
        return replace(self, breakdown=replace(self.breakdown, pending=None))


log = logging.getLogger(__name__)

SLA_SAMPLE_CAP = 4.0
"""A latency sample enters the SLA average as at most this many times the SLA."""


class AdaptiveRouter:
    """Chooses tier_low or tier_high per request.

    ``rules`` are custom rules ``rule(query, state) -> "tier_high" | "tier_low" | None`` asked
    after an explicit override and before the built-in rules; the first non-None answer wins.
    """

    def __init__(
        self,
        config: RoutingConfig | None = None,
        rules: Iterable[Rule] | None = None,
        *,
        scorer: ComplexityScorer | None = None,
        gpu_source: NvmlSource | None = None,
        gpu_monitor: GpuMonitor | None = None,
        start_gpu_monitor: bool = False,
    ) -> None:
        self.config = config if config is not None else RoutingConfig()
        self.scorer = (
            scorer
            if scorer is not None
            else ComplexityScorer(
                model_path=self.config.scorer_model_path, encoder=_encoder(self.config)
            )
        )
        custom: list[tuple[str, Rule]] = [(_rule_name(rule), rule) for rule in rules or ()]
        self._rules: tuple[tuple[str, Rule], ...] = (BUILTIN_RULES[0], *custom, *BUILTIN_RULES[1:])
        self.ema = LatencyEMA(
            TIERS, seed_ms=self.config.sla_warmup_seed_ms, alpha=self.config.ema_alpha
        )
        if gpu_monitor is not None:
            self.gpu_monitor: GpuMonitor | None = gpu_monitor
        elif self.config.gpu_monitor:
            self.gpu_monitor = GpuMonitor(
                gpu_source,
                device_index=self.config.gpu_device_index,
                interval_s=self.config.vram_poll_interval_ms / 1000.0,
                util_max_pct=self.config.gpu_util_max_pct,
            )
        else:
            self.gpu_monitor = None
        if start_gpu_monitor:
            self.start()

    def start(self) -> AdaptiveRouter:
        """Start reading the GPU (one reading now, then a daemon thread). Without this the GPU
        rules abstain: building a router never starts a thread by itself."""
        if self.gpu_monitor is not None:
            self.gpu_monitor.start()
        return self

    # -- inputs from the service -------------------------------------------------------------

    def observe(self, tier: str, latency_ms: float) -> float:
        """Feed one time to first token to the SLA's moving average; returns the new average.

        A sample counts at most :data:`SLA_SAMPLE_CAP` times the SLA: one answer stuck for a
        minute and one at 8 s both mean "far over", and the average must be able to come back
        under the SLA within a few good samples (see the service's SLA probe).
        """
        cap = SLA_SAMPLE_CAP * self.config.latency_sla_ms
        return self.ema.observe(tier, min(latency_ms, cap))

    @property
    def gpu(self) -> GpuSnapshot:
        return self.gpu_monitor.snapshot if self.gpu_monitor is not None else _GPU_OFF

    # -- decisions ---------------------------------------------------------------------------

    def route(self, query: str | Sequence[Message]) -> Tier:
        """The 0.1 API: the tier for a prompt string (or a messages list)."""
        return self.decide(query).tier

    def assess(
        self,
        query: str | Sequence[Message],
        *,
        requested_tier: Tier | None = None,
        regenerate: bool = False,
        defer: bool = False,
    ) -> Assessment:
        """Read and score the prompt: the first half of :meth:`decide`.

        The encoder's second opinion is asked only where the score decides: not for a request
        that named a tier, a chat UI's background task or a regenerate. With ``defer=True`` it
        is left to the caller (an async service runs :meth:`second_opinion` in a worker thread,
        then passes its result to :meth:`decide`).
        """
        started = time.perf_counter()
        cfg = self.config
        if isinstance(query, str):
            conversation = Conversation(
                last_user=query, context="", images=0, total_chars=len(query)
            )
        else:
            conversation = read_conversation(query, cfg.context_turns)
        housekeeping = cfg.detect_tasks and is_housekeeping(conversation)
        breakdown = self.scorer.score_conversation(
            conversation,
            cfg.context_weight,
            defer=defer,
            second_opinion=requested_tier is None and not housekeeping and not regenerate,
        )
        return Assessment(
            conversation, breakdown, housekeeping, (time.perf_counter() - started) * 1e6
        )

    def second_opinion(self, assessment: Assessment) -> tuple[float, float]:
        """The encoder's logit for a deferred assessment, and the microseconds it took (a few
        milliseconds of CPU: call it off the event loop)."""
        pending = assessment.breakdown.pending
        if pending is None:
            raise ValueError("this assessment needs no second opinion")
        started = time.perf_counter()
        logit = self.scorer.second_opinion(pending)
        return logit, (time.perf_counter() - started) * 1e6

    def decide(
        self,
        query: str | Sequence[Message] | Assessment,
        *,
        requested_tier: Tier | None = None,
        max_output_tokens: int | None = None,
        tiers: Mapping[str, TierStatus] | None = None,
        regenerate: bool = False,
        second_opinion: tuple[float, float] | None = None,
    ) -> Decision:
        """Decide for a prompt string, an OpenAI ``messages`` list or an :class:`Assessment`
        of one, with the reasons.

        ``tiers`` is each tier's health and load now (missing tiers count as up and idle).
        ``regenerate``: the service saw the same person send the same messages recently (see
        :func:`~adaptive_router.rules.regenerate_rule`). ``second_opinion``: what
        :meth:`second_opinion` returned for a deferred assessment (asked here when missing).
        Raises :class:`~adaptive_router.rules.RoutingError` when no tier can take the request
        (too long for both context windows, images for a tier that takes none).
        """
        if not isinstance(query, Assessment):
            query = self.assess(query, requested_tier=requested_tier, regenerate=regenerate)
        started = time.perf_counter()
        spent_us = query.elapsed_us
        breakdown = query.breakdown
        if breakdown.pending is not None:
            if second_opinion is None:
                second_opinion = self.second_opinion(query)
            breakdown = self.scorer.settle(breakdown, second_opinion[0])
            spent_us += second_opinion[1]
        conversation = query.conversation
        cfg = self.config
        output_tokens = (
            cfg.default_output_tokens if max_output_tokens is None else max_output_tokens
        )
        state = RouterState(
            config=cfg,
            score=breakdown.score,
            dimensions=breakdown.dimensions,
            gpu=self.gpu,
            ema_ms=self.ema.snapshot(),
            tiers=_ALL_UP if tiers is None else tiers,
            requested_tier=requested_tier,
            images=conversation.images,
            estimated_tokens=math.ceil(conversation.total_chars / cfg.chars_per_token)
            + output_tokens,
            housekeeping=query.housekeeping,
            regenerate=regenerate,
        )
        tier, reason = self._ask_rules(conversation.last_user, state)
        policy_tier = tier
        if reason not in HARD_REASONS:
            for name, redirect in REDIRECTS:
                moved = redirect(tier, state)
                if moved is not None:
                    tier, reason = moved, name
                    break
        check_vision(tier, reason, state)
        retry_on, no_retry = fallback(tier, reason, state)
        return Decision(
            tier=tier,
            reason=reason,
            score=breakdown.score,
            dimensions=breakdown.dimensions,
            gpu=state.gpu,
            ema_ms=state.ema_ms,
            context_score=breakdown.context_score,
            estimated_tokens=state.estimated_tokens,
            policy_tier=policy_tier,
            decision_us=spent_us + (time.perf_counter() - started) * 1e6,
            tiers=state.tiers,
            fallback=retry_on,
            no_fallback=no_retry,
            housekeeping=state.housekeeping,
            linear_score=breakdown.linear_score,
            second_opinion=breakdown.second_opinion,
        )

    def _ask_rules(self, query: str, state: RouterState) -> tuple[Tier, str]:
        for name, rule in self._rules:
            answer = rule(query, state)
            if answer is None:
                continue
            if answer not in TIERS:
                raise RoutingError(
                    f"rule {name!r} returned {answer!r}, not 'tier_low' or 'tier_high'"
                )
            return answer, name
        return "tier_high", DEFAULT_REASON

    @property
    def state(self) -> RouterState:
        """The state rules would see now, without a prompt (for health pages and debugging)."""
        return RouterState(config=self.config, gpu=self.gpu, ema_ms=self.ema.snapshot())

    def shutdown(self) -> None:
        """Stop the GPU thread. Idempotent."""
        if self.gpu_monitor is not None:
            self.gpu_monitor.shutdown()

    def __enter__(self) -> AdaptiveRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _encoder(config: RoutingConfig) -> DifficultyEncoder | None:
    """The second opinion's encoder, or ``None``: turned off, or the shipped one cannot load
    (onnxruntime missing: the linear model decides alone, and the log says why). A file named
    in the settings that cannot load is an error (:class:`~.encoder.EncoderFileError`)."""
    if not config.second_opinion:
        return None
    if config.second_opinion_model_path:
        return DifficultyEncoder(config.second_opinion_model_path)
    try:
        return shipped_encoder()
    except EncoderFileError as exc:
        log.warning("second opinion off: %s", exc)
        return None


def _rule_name(rule: Rule) -> str:
    """The reason a custom rule reports: its ``reason`` attribute, else its function name."""
    name = getattr(rule, "reason", None) or getattr(rule, "__name__", None)
    return str(name) if name and name != "<lambda>" else "custom"


_GPU_OFF = GpuSnapshot(available=False, error="GPU monitor disabled (gpu_monitor: false)")
_ALL_UP: Mapping[str, TierStatus] = MappingProxyType({t: TierStatus() for t in TIERS})
