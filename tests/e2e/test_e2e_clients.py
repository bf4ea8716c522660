"""A user's client, end to end: OpenAI SDK -> LiteLLM -> router -> llama-server, and raw HTTP
straight to the router. Replies arrive; the router's headers and metrics agree on the tier."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest
import stack
from e2eutil import EASY_PROMPT, HARD_PROMPT, metric_sum, router_headers, scrape, sse_events
from openai.types.chat import ChatCompletionMessageParam


@pytest.fixture(scope="module")
def sdk(litellm: stack.Endpoint) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=litellm.url + "/v1", api_key=stack.LITELLM_MASTER_KEY, max_retries=0, timeout=60
    ) as client:  # closed at the end: an open pool socket is a ResourceWarning at exit
        yield client


def test_router_classifies_the_test_prompts(router: stack.Endpoint) -> None:
    """The prompts below are chosen so the decision is not a coin flip (guards the other tests)."""
    for prompt, tier in ((EASY_PROMPT, "tier_low"), (HARD_PROMPT, "tier_high")):
        r = httpx.post(
            router.url + "/v1/route",
            json={"messages": [{"role": "user", "content": prompt}]},
            headers=router_headers(),
        )
        assert r.status_code == 200, r.text
        decision = r.json()
        assert decision["tier"] == tier, decision
        assert abs(decision["decision"]["score"] - 0.5) > 0.1, decision


@pytest.mark.parametrize(
    ("model", "prompt", "tier"),
    [
        ("gemma4-fast", EASY_PROMPT, "tier_low"),
        ("gemma4-fast", HARD_PROMPT, "tier_high"),
        ("gemma4-smart", EASY_PROMPT, "tier_high"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_sdk_through_litellm(
    sdk: openai.OpenAI, router: stack.Endpoint, model: str, prompt: str, tier: str, stream: bool
) -> None:
    before = scrape(router.url)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
    if stream:
        with sdk.chat.completions.with_streaming_response.create(
            model=model,
            messages=messages,
            max_tokens=12,
            stream=True,
        ) as raw:
            headers = raw.headers
            chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert len(chunks) >= 3, "a stream of several chunks, not one blob"
        assert {c.model for c in chunks} == {model}, "the client sees its own model name"
    else:
        raw_reply = sdk.chat.completions.with_raw_response.create(
            model=model,
            messages=messages,
            max_tokens=12,
        )
        headers = raw_reply.headers
        reply = raw_reply.parse()
        text = reply.choices[0].message.content or ""
        assert reply.model == model
        assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert text, "a reply with some text"
    # LiteLLM passes the router's decision headers on, prefixed with llm_provider-.
    assert headers.get("llm_provider-x-router-tier") == tier
    after = scrape(router.url)
    routed = metric_sum(after, "router_requests_total", model=model, tier=tier) - metric_sum(
        before, "router_requests_total", model=model, tier=tier
    )
    assert routed == 1, f"router_requests_total{{model={model},tier={tier}}} grew by {routed}"


def test_raw_http_to_the_router(router: stack.Endpoint) -> None:
    """What a curl user sees on :9000: the decision in headers, SSE chunks, a [DONE]."""
    body = {
        "model": "gemma4-fast",
        "messages": [{"role": "user", "content": HARD_PROMPT}],
        "max_tokens": 8,
        "stream": True,
    }
    with httpx.stream(
        "POST", router.url + "/v1/chat/completions", json=body, headers=router_headers()
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-router-tier"] == "tier_high"
        assert float(r.headers["x-router-score"]) > 0.5
        events = list(sse_events(r.iter_lines()))
    assert events[-1] == "[DONE]"
    assert all(e["model"] == "gemma4-fast" for e in events[:-1] if isinstance(e, dict))


def test_curl_to_the_router(router: stack.Endpoint) -> None:
    curl = str(stack.system_tool("curl"))
    out = subprocess.run(
        [
            curl, "-sS", "-i", router.url + "/v1/chat/completions",
            "-H", f"Authorization: Bearer {stack.ROUTER_API_KEY}",
            "-H", "Content-Type: application/json",
            "-d", json.dumps({"messages": [{"role": "user", "content": EASY_PROMPT}],
                              "max_tokens": 4}),
        ],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    head, _, body = out.partition("\n\n")  # text mode turned \r\n into \n
    assert head.startswith("HTTP/1.1 200")
    assert "x-router-tier: tier_low" in head.lower()
    reply = json.loads(body)
    assert reply["model"] == "gemma4-fast"  # the default model when a curl user names none
    assert reply["choices"][0]["message"]["content"]


def test_missing_key_is_refused_in_openai_format(router: stack.Endpoint) -> None:
    r = httpx.post(router.url + "/v1/chat/completions", json={"messages": []})
    assert r.status_code == 401
    assert set(r.json()["error"]) >= {"message", "type", "code"}


def test_team_keys_without_litellm_s_database_say_what_is_missing(
    litellm: stack.Endpoint,
) -> None:
    """The real LiteLLM without DATABASE_URL refuses virtual keys (its default); the helper must
    say so, not print a traceback. (Keys themselves need PostgreSQL through Prisma, whose engine
    binaries cannot be downloaded on this machine: tests/test_team_keys.py covers the API.)"""
    import os
    import sys

    done = subprocess.run(
        [sys.executable, str(stack.ROOT / "scripts/team_keys.py"), "--url", litellm.url,
         "create", "--name", "alice", "--rpm", "2"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "LITELLM_MASTER_KEY": stack.LITELLM_MASTER_KEY},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "LiteLLM has no database" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
