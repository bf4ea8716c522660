"""The encoder's second opinion through the service: said in a header and a metric, and run in a
worker thread, never on the event loop that relays everyone's streams."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.service import proxy

from .conftest import EASY, RouterHandle, chat

# The linear model's score of this prompt is within the band (router/tests/test_encoder.py
# checks the band's prompts are found by computing, so this one is checked here too).
UNSURE = "How do noise-cancelling headphones work?"


def test_an_unsure_prompt_is_scored_by_the_encoder_off_the_event_loop(
    router: RouterHandle,
) -> None:
    engine = router.app.state.router
    threads: dict[str, Any] = {}
    assess, second_opinion = engine.assess, engine.second_opinion

    def recording(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            threads[name] = threading.current_thread()
            return call(*args, **kwargs)

        return wrapped

    engine.assess = recording("assess", assess)
    engine.second_opinion = recording("second_opinion", second_opinion)
    r = router.client.post("/v1/chat/completions", json=chat(UNSURE))
    assert r.status_code == 200
    assert 0.0 < float(r.headers["x-router-second-opinion"]) < 1.0
    assert threads["second_opinion"] is not threads["assess"]  # a worker, not the loop
    assert router.metric("router_second_opinions_total") == 1.0
    assert router.metric("router_second_opinions_total", outcome="skipped") is None
    # The explanation says both opinions and the combined score.
    route = router.client.post("/v1/route", json=chat(UNSURE)).json()["decision"]
    assert route["second_opinion"] is not None and route["linear_score"] is not None
    assert route["score"] == float(r.headers["x-router-score"])


def test_a_sure_prompt_and_a_named_tier_skip_the_encoder(router: RouterHandle) -> None:
    r = router.client.post("/v1/chat/completions", json=chat(EASY))
    assert r.status_code == 200 and "x-router-second-opinion" not in r.headers
    r = router.client.post("/v1/chat/completions", json=chat(UNSURE, model="gemma4-smart"))
    assert r.status_code == 200 and "x-router-second-opinion" not in r.headers
    assert router.metric("router_second_opinions_total") is None


def test_turned_off_no_header(make_router: Callable[..., RouterHandle]) -> None:
    router = make_router(RoutingConfig(gpu_monitor=False, second_opinion=False))
    r = router.client.post("/v1/chat/completions", json=chat(UNSURE))
    assert r.status_code == 200 and "x-router-second-opinion" not in r.headers


def test_a_full_encoder_queue_decides_without_it(
    router: RouterHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While ENCODER_QUEUE_MAX prompts wait (here: 0), the complexity model decides alone."""
    monkeypatch.setattr(proxy, "ENCODER_QUEUE_MAX", 0)
    r = router.client.post("/v1/chat/completions", json=chat(UNSURE))
    assert r.status_code == 200 and "x-router-second-opinion" not in r.headers
    alone = AdaptiveRouter(RoutingConfig(gpu_monitor=False, second_opinion=False))
    assert float(r.headers["x-router-score"]) == round(alone.decide(UNSURE).score, 4)
    assert router.metric("router_second_opinions_total", outcome="skipped") == 1.0
