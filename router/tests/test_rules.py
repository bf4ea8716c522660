"""Each rule alone, then the chain as the router runs it."""

from __future__ import annotations

from typing import Any

import pytest

from adaptive_router import (
    AdaptiveRouter,
    ContextLengthError,
    GpuSnapshot,
    NoVisionTierError,
    RouterState,
    RoutingConfig,
    RoutingError,
    TierStatus,
)
from adaptive_router.gpu import GpuMonitor
from adaptive_router.rules import (
    complexity_rule,
    context_rule,
    gpu_util_rule,
    health_redirect,
    load_redirect,
    override_rule,
    regenerate_rule,
    sla_rule,
    vision_rule,
    vram_rule,
)
from adaptive_router.testing import FakeNvml

CFG = RoutingConfig(gpu_monitor=False)
GPU_OK = GpuSnapshot(
    available=True,
    free_bytes=8_000_000_000,
    used_bytes=8_000_000_000,
    total_bytes=16_000_000_000,
    utilization_pct=30.0,
    name="fake",
)


def state(**kw: Any) -> RouterState:
    kw.setdefault("config", CFG)
    return RouterState(**kw)


def test_override_rule() -> None:
    assert override_rule("x", state()) is None
    assert override_rule("x", state(requested_tier="tier_high")) == "tier_high"


def test_regenerate_rule_sends_a_repeat_to_tier_high_unless_it_is_down() -> None:
    assert regenerate_rule("x", state()) is None
    assert regenerate_rule("x", state(regenerate=True)) == "tier_high"
    down = {"tier_high": TierStatus(up=False)}
    assert regenerate_rule("x", state(regenerate=True, tiers=down)) is None


def test_a_regenerate_yields_to_a_named_tier_to_images_and_to_background_tasks(
    router: AdaptiveRouter,
) -> None:
    easy = [{"role": "user", "content": "What time is it in Tokyo?"}]
    assert router.decide(easy).tier == "tier_low"
    again = router.decide(easy, regenerate=True)
    assert (again.tier, again.reason) == ("tier_high", "regenerate")
    named = router.decide(easy, regenerate=True, requested_tier="tier_low")
    assert (named.tier, named.reason) == ("tier_low", "override")
    image = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "What is this?"}]}]  # fmt: skip
    assert router.decide(image, regenerate=True).reason == "vision"  # vision_tiers: tier_low
    title = [{"role": "user", "content": "### Task:\nGive the conversation a short title.\n"
              'JSON format: { "title": "..." }\n<chat_history>\nUSER: hi\nASSISTANT: hello\n'
              "</chat_history>"}]  # fmt: skip
    assert router.decide(title, regenerate=True).reason == "task"
    down = router.decide(easy, regenerate=True, tiers={"tier_high": TierStatus(up=False)})
    assert (down.tier, down.reason) == ("tier_low", "complexity")


def test_context_rule_sends_long_prompts_to_tier_high_and_refuses_what_fits_nowhere() -> None:
    assert context_rule("x", state(estimated_tokens=CFG.tier_low_context_tokens)) is None
    assert context_rule("x", state(estimated_tokens=CFG.tier_low_context_tokens + 1)) == "tier_high"
    with pytest.raises(ContextLengthError, match="context window"):
        context_rule("x", state(estimated_tokens=CFG.tier_high_context_tokens + 1))


def test_vision_rule() -> None:
    assert vision_rule("x", state()) is None
    assert vision_rule("x", state(images=1)) == "tier_low"
    cfg = RoutingConfig(gpu_monitor=False, vision_tiers=("tier_low", "tier_high"))
    down = {"tier_low": TierStatus(up=False)}
    assert vision_rule("x", state(config=cfg, images=2, tiers=down)) == "tier_high"
    with pytest.raises(NoVisionTierError):
        vision_rule("x", state(config=RoutingConfig(gpu_monitor=False, vision_tiers=()), images=1))


def test_complexity_rule() -> None:
    assert complexity_rule("x", state(score=CFG.complexity_threshold - 0.01)) == "tier_low"
    assert complexity_rule("x", state(score=CFG.complexity_threshold)) is None


def test_gpu_util_rule_needs_consecutive_hot_polls() -> None:
    hot = GpuSnapshot(available=True, utilization_pct=97.0, hot_polls=CFG.gpu_util_polls)
    warm = GpuSnapshot(available=True, utilization_pct=97.0, hot_polls=CFG.gpu_util_polls - 1)
    assert gpu_util_rule("x", state(gpu=hot)) == "tier_low"
    assert gpu_util_rule("x", state(gpu=warm)) is None
    assert gpu_util_rule("x", state(gpu=GpuSnapshot(available=False, hot_polls=99))) is None


def test_vram_rule_abstains_without_gpu() -> None:
    low = GpuSnapshot(available=True, free_bytes=int(0.3e9))
    assert vram_rule("x", state(gpu=low)) == "tier_low"
    assert vram_rule("x", state(gpu=GPU_OK)) is None
    assert vram_rule("x", state(gpu=GpuSnapshot(available=False))) is None


def test_sla_rule() -> None:
    assert sla_rule("x", state(ema_ms={"tier_high": CFG.latency_sla_ms + 1})) == "tier_low"
    assert sla_rule("x", state(ema_ms={"tier_high": CFG.latency_sla_ms})) is None


def test_health_and_load_redirects() -> None:
    down = {"tier_high": TierStatus(up=False)}
    assert health_redirect("tier_high", state(tiers=down)) == "tier_low"
    assert health_redirect("tier_low", state(tiers=down)) is None
    both_down = {"tier_high": TierStatus(up=False), "tier_low": TierStatus(up=False)}
    assert health_redirect("tier_high", state(tiers=both_down)) is None
    busy = {"tier_low": TierStatus(saturated=True)}
    assert load_redirect("tier_low", state(tiers=busy)) == "tier_high"
    assert load_redirect("tier_high", state(tiers=busy)) is None


# -- the chain -----------------------------------------------------------------------------

HARD = "Prove that there are infinitely many primes, step by step."
EASY = "What time is it in Tokyo?"


def test_hard_goes_high_and_easy_goes_low_with_reasons(router: AdaptiveRouter) -> None:
    hard, easy = router.decide(HARD), router.decide(EASY)
    assert (hard.tier, hard.reason) == ("tier_high", "complexity")
    assert (easy.tier, easy.reason) == ("tier_low", "complexity")
    assert hard.score > easy.score
    assert hard.dimensions["reasoning"] > 0
    assert hard.ema_ms == {"tier_low": 800.0, "tier_high": 800.0}
    assert hard.decision_us > 0


def test_override_wins_over_everything_but_is_still_scored(router: AdaptiveRouter) -> None:
    decision = router.decide(EASY, requested_tier="tier_high")
    assert (decision.tier, decision.reason) == ("tier_high", "override")
    assert decision.score < 0.5
    down = {"tier_high": TierStatus(up=False)}
    assert router.decide(EASY, requested_tier="tier_high", tiers=down).tier == "tier_high"


def test_sla_moves_hard_prompts_after_slow_observations(router: AdaptiveRouter) -> None:
    for _ in range(20):
        router.observe("tier_high", latency_ms=5000.0)
    decision = router.decide(HARD)
    assert (decision.tier, decision.reason) == ("tier_low", "sla")
    for _ in range(40):
        router.observe("tier_high", latency_ms=300.0)
    assert router.decide(HARD).tier == "tier_high"


def test_tier_down_redirects_and_reports_policy_tier(router: AdaptiveRouter) -> None:
    decision = router.decide(HARD, tiers={"tier_high": TierStatus(up=False)})
    assert (decision.tier, decision.reason, decision.policy_tier) == (
        "tier_low",
        "health",
        "tier_high",
    )
    assert router.decide(HARD, tiers={"tier_high": TierStatus(up=True)}).tier == "tier_high"


def test_saturated_tier_redirects(router: AdaptiveRouter) -> None:
    decision = router.decide(EASY, tiers={"tier_low": TierStatus(saturated=True)})
    assert (decision.tier, decision.reason) == ("tier_high", "load")


def test_context_too_long_for_tier_low_goes_high_even_if_easy(router: AdaptiveRouter) -> None:
    text = "Summarise this: " + "word " * 8000  # ~40 k characters, ~11 k tokens
    decision = router.decide([{"role": "user", "content": text}])
    assert (decision.tier, decision.reason) == ("tier_high", "context")


def test_context_too_long_for_both_is_a_routing_error(router: AdaptiveRouter) -> None:
    with pytest.raises(RoutingError) as info:
        router.decide([{"role": "user", "content": "x" * 200_000}])
    assert info.value.code == "context_length_exceeded"


def test_max_tokens_counts_towards_the_context(router: AdaptiveRouter) -> None:
    assert router.decide(EASY, max_output_tokens=9000).reason == "context"


def test_images_go_to_a_vision_tier(router: AdaptiveRouter) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": HARD},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]
    decision = router.decide(messages)
    assert (decision.tier, decision.reason) == ("tier_low", "vision")


def test_custom_rules_come_after_override_and_first_non_none_wins() -> None:
    seen: list[tuple[str, float]] = []

    def always_low(query: str, st: RouterState) -> str | None:
        seen.append((query, st.score))
        return "tier_low" if "cheap" in query else None

    def never(query: str, st: RouterState) -> None:
        return None

    with AdaptiveRouter(CFG, rules=[never, always_low]) as router:
        assert router.decide("cheap: " + HARD).reason == "always_low"
        assert router.route(HARD) == "tier_high"
        assert router.decide("cheap", requested_tier="tier_high").reason == "override"
    assert seen[0][0] == "cheap: " + HARD


def test_a_rule_returning_garbage_is_a_clear_error() -> None:
    with (
        AdaptiveRouter(CFG, rules=[lambda q, s: "gpu-7"]) as router,
        pytest.raises(RoutingError, match="gpu-7"),
    ):
        router.route(EASY)


def test_gpu_rules_fire_from_a_real_monitor_with_fake_nvml(fake_nvml: FakeNvml) -> None:
    monitor = GpuMonitor(fake_nvml, util_max_pct=90.0)
    with AdaptiveRouter(RoutingConfig(gpu_util_polls=2), gpu_monitor=monitor) as router:
        fake_nvml.reading = fake_nvml.reading.__class__(
            free_bytes=int(0.3e9),
            used_bytes=int(15.7e9),
            total_bytes=int(16e9),
            utilization_pct=50.0,
            name="fake",
        )
        monitor.poll_once()
        assert router.decide(HARD).reason == "vram"
        fake_nvml.reading = fake_nvml.reading.__class__(
            free_bytes=int(8e9),
            used_bytes=int(8e9),
            total_bytes=int(16e9),
            utilization_pct=99.0,
            name="fake",
        )
        monitor.poll_once()
        assert router.decide(HARD).tier == "tier_high"  # one hot poll is not enough
        monitor.poll_once()
        assert router.decide(HARD).reason == "gpu_util"
        decision = router.decide(HARD)
        assert decision.gpu.utilization_pct == 99.0
        assert decision.as_dict()["gpu"]["free_bytes"] == int(8e9)
