"""A request may not set an engine's chat template or grammar internals: a 400 naming the field on
every path (routed, a named tier, failover; chat and completions), and no engine sees it. The
public ways to shape output (response_format, tools, chat_template_kwargs) still reach the
engine untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adaptive_router.service.validation import ENGINE_OWNED

from ..servers import closed_port_url
from .conftest import EASY, HARD, RouterHandle, chat

VALUES: dict[str, Any] = {
    "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
    "grammar_triggers": [{"type": 0, "value": "<tool_call>"}],
    "grammar_lazy": True,
    "grammar_type": "tool_calls",
    "preserved_tokens": ["<tool_call>"],
    "reasoning_budget_start_tag": "<|channel>",
    "reasoning_budget_end_tag": "<channel|>",
    "reasoning_budget_end_tags": ["<channel|>"],
    "chat_format": 1,
    "chat_parser": "{}",
    "parse_tool_calls": True,
    "generation_prompt": "<start_of_turn>model\n",
}
REFUSED = [(name, {name: value}) for name, value in VALUES.items()] + [
    ("chat_template_kwargs.chat_template", {"chat_template_kwargs": {"chat_template": "{{ 1 }}"}}),
]
MODELS = ("gemma4-fast", "gemma4-smart", "tier_low", "tier_high")


def test_every_engine_owned_field_has_a_case() -> None:
    assert set(VALUES) == set(ENGINE_OWNED)


def _assert_refused(r: Any, param: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "unsupported_parameter",
        param,
    )
    assert f"'{param}'" in error["message"] and "response_format" in error["message"]


@pytest.mark.parametrize(("param", "extra"), REFUSED, ids=[p for p, _ in REFUSED])
def test_refused_on_chat_and_completions_for_every_model(
    router: RouterHandle, fresh: dict[str, Any], param: str, extra: dict[str, Any]
) -> None:
    for model in MODELS:
        for content in (EASY, HARD):
            _assert_refused(
                router.client.post("/v1/chat/completions", json=chat(content, model, **extra)),
                param,
            )
            r = router.client.post(
                "/v1/completions", json={"model": model, "prompt": content, **extra}
            )
            _assert_refused(r, param)
    assert fresh["low"].stats.requests == fresh["high"].stats.requests == []


def test_refused_when_the_request_would_fail_over(
    make_router: Callable[..., RouterHandle], fresh: dict[str, Any]
) -> None:
    router = make_router(tier_high_url=closed_port_url())
    plain = router.client.post("/v1/chat/completions", json=chat(HARD))
    assert (plain.status_code, plain.headers["x-router-reason"]) == (200, "failover")
    served = len(fresh["low"].stats.requests)
    r = router.client.post("/v1/chat/completions", json=chat(HARD, grammar_triggers=["x"]))
    _assert_refused(r, "grammar_triggers")
    stream = router.client.post(
        "/v1/chat/completions", json=chat(HARD, stream=True, chat_template="{{ 1 }}")
    )
    _assert_refused(stream, "chat_template")
    assert len(fresh["low"].stats.requests) == served


def test_public_ways_to_shape_output_pass_untouched(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    extra = {
        "chat_template_kwargs": {"enable_thinking": True},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}},
        },
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "chat_template": None,  # null sets nothing: passed on as sent, like any other field
    }
    for model, engine in (("tier_low", "low"), ("gemma4-smart", "high")):
        r = router.client.post("/v1/chat/completions", json=chat(EASY, model, **extra))
        assert r.status_code == 200, r.text
        sent = fresh[engine].stats.requests[-1]
        assert {key: sent[key] for key in extra} == extra
    grammar = {"grammar": 'root ::= "yes" | "no"', "json_schema": None}
    r = router.client.post("/v1/completions", json={"model": "tier_high", "prompt": "x", **grammar})
    assert r.status_code == 200, r.text
    assert {key: fresh["high"].stats.requests[-1][key] for key in grammar} == grammar
