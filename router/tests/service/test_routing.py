"""Routing through the service: tiers and reasons in headers, model names, pass-through,
/v1/models and /v1/route."""

from __future__ import annotations

from typing import Any

from .conftest import EASY, HARD, RouterHandle, chat


def test_easy_and_hard_prompts_reach_their_tiers_with_headers(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    easy = router.client.post("/v1/chat/completions", json=chat(EASY))
    hard = router.client.post("/v1/chat/completions", json=chat(HARD))
    assert easy.status_code == hard.status_code == 200
    assert easy.headers["x-router-tier"] == "tier_low"
    assert hard.headers["x-router-tier"] == "tier_high"
    assert easy.headers["x-router-reason"] == hard.headers["x-router-reason"] == "complexity"
    assert float(easy.headers["x-router-score"]) < 0.5 <= float(hard.headers["x-router-score"])
    assert "x-router-degraded" not in hard.headers
    assert len(easy.headers["x-request-id"]) == 32
    assert [r["model"] for r in fresh["low"].stats.requests] == ["gemma-4-e4b"]
    assert [r["model"] for r in fresh["high"].stats.requests] == ["gemma-4-26b-a4b"]
    assert easy.json()["model"] == hard.json()["model"] == "gemma4-fast"


def test_explicit_models_and_aliases(router: RouterHandle, fresh: dict[str, Any]) -> None:
    smart = router.client.post("/v1/chat/completions", json=chat(EASY, model="gemma4-smart"))
    assert (smart.headers["x-router-tier"], smart.headers["x-router-reason"]) == (
        "tier_high",
        "override",
    )
    assert smart.json()["model"] == "gemma4-smart"
    low = router.client.post("/v1/chat/completions", json=chat(HARD, model="tier_low"))
    assert low.headers["x-router-tier"] == "tier_low"
    assert low.json()["model"] == "tier_low"


def test_unknown_fields_pass_through_untouched(router: RouterHandle, fresh: dict[str, Any]) -> None:
    extra = {
        "top_k": 64,
        "ignore_eos": True,
        "chat_template_kwargs": {"enable_thinking": True},
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "x_custom": ["ü", 1, None],
    }
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": EASY},
    ]}]  # fmt: skip
    r = router.client.post(
        "/v1/chat/completions", json={"model": "gemma4-fast", "messages": messages, **extra}
    )
    assert r.status_code == 200
    sent = fresh["low"].stats.requests[-1]
    for key, value in extra.items():
        assert sent[key] == value
    assert sent["messages"] == messages


def test_request_id_is_echoed_and_forwarded(router: RouterHandle) -> None:
    r = router.client.post("/v1/chat/completions", json=chat(), headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_completions_endpoint(router: RouterHandle, fresh: dict[str, Any]) -> None:
    r = router.client.post(
        "/v1/completions", json={"model": "gemma4-fast", "prompt": EASY, "max_tokens": 8}
    )
    assert r.status_code == 200
    assert r.json()["object"] == "text_completion"
    assert r.json()["model"] == "gemma4-fast"
    stream = router.client.post(
        "/v1/completions", json={"model": "gemma4-smart", "prompt": HARD, "stream": True}
    )
    assert stream.status_code == 200 and b"[DONE]" in stream.content
    assert (
        b'"model": "gemma4-smart"' in stream.content or b'"model":"gemma4-smart"' in stream.content
    )


def test_upstream_4xx_passes_through_unchanged(router: RouterHandle) -> None:
    r = router.client.post("/v1/chat/completions", json=chat(trigger_400=True))
    assert r.status_code == 400
    assert r.json() == {
        "error": {"message": "upstream says no", "type": "invalid_request_error", "code": 400}
    }
    assert r.headers["x-router-tier"] == "tier_low"


def test_models_list(router: RouterHandle) -> None:
    data = router.client.get("/v1/models").json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == [
        "gemma4-fast",
        "gemma4-smart",
        "tier_high",
        "tier_low",
    ]
    assert all(m["object"] == "model" for m in data["data"])


def test_route_endpoint_explains_without_calling_a_tier(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    r = router.client.post("/v1/route", json=chat(HARD))
    assert r.status_code == 200
    body = r.json()
    assert (body["tier"], body["reason"], body["served_model"]) == (
        "tier_high",
        "complexity",
        "gemma-4-26b-a4b",
    )
    assert body["decision"]["dimensions"]["reasoning"] > 0
    assert "gpu" in body["decision"] and "ema_ms" in body["decision"]
    assert fresh["low"].stats.requests == fresh["high"].stats.requests == []
