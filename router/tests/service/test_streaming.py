"""Streams: passed through as they come, closed upstream when the client goes, broken ones
end with an OpenAI error event."""

from __future__ import annotations

import json
from typing import Any

from adaptive_router.testing.fake_engine import Behavior

from .conftest import HARD, RouterHandle, chat


def test_stream_is_passed_through_before_the_upstream_finishes(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    fresh["low"].behavior = Behavior(tokens=6, token_delay_s=0.2)
    with router.client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-router-tier"] == "tier_low"
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        # The first chunk is here while the engine is still generating the rest.
        assert fresh["low"].stats.active_streams == 1
        assert fresh["low"].stats.completed_streams == 0
        assert json.loads(first[6:])["model"] == "gemma4-fast"
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]"
    assert len(rest) == 6  # 5 more tokens + [DONE]
    assert all(json.loads(x[6:])["model"] == "gemma4-fast" for x in rest[:-1])
    assert fresh["low"].stats.completed_streams == 1


def test_client_disconnect_closes_the_upstream_stream(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    fresh["high"].behavior = Behavior(tokens=1000, token_delay_s=0.05)
    with router.client.stream("POST", "/v1/chat/completions", json=chat(HARD, stream=True)) as r:
        next(r.iter_lines())
    # The engine sees its client (the router) go away and stops generating.
    assert fresh["high"].stats.stream_cancelled.wait(5.0)
    assert fresh["high"].stats.cancelled_streams == 1
    assert fresh["high"].stats.completed_streams == 0


def test_failure_after_first_byte_becomes_an_error_event(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    fresh["low"].behavior = Behavior(tokens=10, fault="cut", cut_after_tokens=3)
    r = router.client.post("/v1/chat/completions", json=chat(stream=True))
    assert r.status_code == 200
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert len(events) == 4
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_stream_error"
    assert "tier_low failed mid-stream" in error["message"]
    assert router.metric("router_upstream_errors_total", kind="midstream", tier="tier_low") == 1.0
