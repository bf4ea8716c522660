"""The router's own /metrics: real values, its own prefix."""

from __future__ import annotations

from .conftest import EASY, HARD, RouterHandle, chat


def test_metrics_record_real_values(router: RouterHandle) -> None:
    router.client.post("/v1/chat/completions", json=chat(EASY))
    router.client.post("/v1/chat/completions", json=chat(HARD, stream=True))
    router.client.post("/v1/chat/completions", json=chat(model="nope"))
    m = router.metric
    assert (
        m(
            "router_requests_total",
            model="gemma4-fast",
            reason="complexity",
            status="200",
            tier="tier_low",
        )
        == 1.0
    )
    assert (
        m(
            "router_requests_total",
            model="gemma4-fast",
            reason="complexity",
            status="200",
            tier="tier_high",
        )
        == 1.0
    )
    assert (
        m("router_requests_total", model="invalid", reason="rejected", status="404", tier="none")
        == 1.0
    )
    assert m("router_decision_seconds_count") == 2.0
    assert m("router_complexity_score_count") == 2.0
    # The score histogram holds scores, not free VRAM (0.1's bug): one easy, one hard.
    assert m("router_complexity_score_bucket", le="0.5") == 1.0
    assert m("router_ttft_seconds_count", tier="tier_high") == 1.0
    assert m("router_request_duration_seconds_count", tier="tier_low") == 1.0
    assert m("router_in_flight_requests", tier="tier_high") == 0.0
    assert m("router_tier_up", tier="tier_low") == 1.0
    assert m("router_circuit_state", tier="tier_low") == 0.0
    assert m("router_latency_sla_seconds") == 2.0
    assert 0 < (m("router_latency_ema_seconds", tier="tier_high") or 0) < 0.8
    assert m("router_gpu_available") == 0.0
    assert m("router_build_info") == 1.0
    text = router.client.get("/metrics").text
    assert "vllm:" not in text
