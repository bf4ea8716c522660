"""The router keeps a request from setting the real llama-server's chat template or grammar
internals (router/adaptive_router/service/validation.py, ENGINE_OWNED), on every model and both
completion endpoints, while the public ways to shape output still reach it.

llama-server itself takes these fields from any request on its completion endpoints: the build
the suite runs (b11549) predates the grammar_triggers validation fix of b12405
(CVE-2026-134540), so the refusal in front of it is what protects a user on an older image.
"""

from __future__ import annotations

import httpx
import pytest
import stack
from e2eutil import metric_sum, router_headers, scrape

PATTERN_TRIGGER = 2  # common/common.h: COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN
TRIGGERS = [{"type": PATTERN_TRIGGER, "value": "zz"}]
REFUSED = [
    ("grammar_triggers", {"grammar_triggers": TRIGGERS}),
    ("grammar_lazy", {"grammar_lazy": True}),
    ("preserved_tokens", {"preserved_tokens": ["<start_of_turn>"]}),
    ("chat_template", {"chat_template": "{{ messages[0].content }}"}),
    ("chat_template_kwargs.chat_template", {"chat_template_kwargs": {"chat_template": "{{ 1 }}"}}),
]


def test_llama_server_itself_takes_grammar_internals_from_a_request(
    engines: tuple[stack.Endpoint, stack.Endpoint],
) -> None:
    """Without the router in front: the engine accepts the trigger list and uses it."""
    body = {"prompt": "Hello", "n_predict": 2, "grammar": 'root ::= "a"+',
            "grammar_lazy": True, "grammar_triggers": TRIGGERS}  # fmt: skip
    r = httpx.post(engines[1].url + "/completion", json=body, timeout=60)
    assert r.status_code == 200, r.text
    settings = r.json()["generation_settings"]
    assert settings["grammar_triggers"] == TRIGGERS and settings["grammar_lazy"] is True


@pytest.mark.parametrize(("param", "extra"), REFUSED, ids=[p for p, _ in REFUSED])
def test_the_router_refuses_them_before_any_engine(
    router: stack.Endpoint,
    engines: tuple[stack.Endpoint, stack.Endpoint],
    param: str,
    extra: dict[str, object],
) -> None:
    before = [metric_sum(scrape(e.url), "llamacpp:prompt_tokens_total") for e in engines]
    for model in ("gemma4-fast", "gemma4-smart", "tier_low"):
        for path, body in (
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
            ("/v1/completions", {"prompt": "Hi"}),
        ):
            r = httpx.post(router.url + path, json={"model": model, "max_tokens": 2, **body,
                           **extra}, headers=router_headers(), timeout=30)  # fmt: skip
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert (error["code"], error["param"]) == ("unsupported_parameter", param)
            assert error["type"] == "invalid_request_error" and f"'{param}'" in error["message"]
    after = [metric_sum(scrape(e.url), "llamacpp:prompt_tokens_total") for e in engines]
    assert after == before  # neither engine processed anything


def test_thinking_switch_and_public_constraints_still_reach_the_engine(
    router: stack.Endpoint,
    engines: tuple[stack.Endpoint, stack.Endpoint],
) -> None:
    """chat_template_kwargs (thinking), response_format, and llama-server's documented grammar
    field are not refused: the router's answer is the engine's own, the same as when the body
    goes to llama-server directly. (The tiny test model's byte vocabulary is what the engine
    judges; with it llama-server may refuse a JSON grammar itself, and then says so the same way
    through the router.)"""
    thinking = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                "chat_template_kwargs": {"enable_thinking": False}}  # fmt: skip
    r = httpx.post(router.url + "/v1/chat/completions", json={"model": "gemma4-smart", **thinking},
                   headers=router_headers(), timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-router-tier"] == "tier_high" and r.json()["choices"]
    for path, body in (
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "JSON please"}],
                                  "max_tokens": 8, "response_format": {"type": "json_object"}}),
        ("/v1/completions", {"prompt": "Yes or no?", "max_tokens": 4,
                             "grammar": 'root ::= "yes" | "no"'}),
    ):  # fmt: skip
        direct = httpx.post(engines[1].url + path, json={"model": stack.TIER_HIGH_ALIAS, **body},
                            timeout=60)  # fmt: skip
        routed = httpx.post(router.url + path, json={"model": "gemma4-smart", **body},
                            headers=router_headers(), timeout=60)  # fmt: skip
        assert routed.status_code == direct.status_code, (routed.text, direct.text)
        assert routed.headers["x-router-tier"] == "tier_high"
        if direct.status_code != 200:  # the engine's own refusal, passed on as it said it
            assert routed.json()["error"]["message"] == direct.json()["error"]["message"]
        else:
            assert routed.json()["choices"]
