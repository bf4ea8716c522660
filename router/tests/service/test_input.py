"""Bad input and auth: OpenAI-format 4xx errors that name the field, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import RouterHandle, chat

BAD = [
    (b"{not json", 400, "invalid_json", None),
    (b"", 400, "invalid_json", None),
    (b"[1, 2]", 400, "invalid_json", None),
    (json.dumps({"model": "gemma4-fast"}).encode(), 400, "missing_required_parameter", "messages"),
    (json.dumps({"messages": "hi"}).encode(), 400, "invalid_value", "messages"),
    (json.dumps({"messages": []}).encode(), 400, "invalid_value", "messages"),
    (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(), 400, "invalid_value", "messages[0].role"),
    (json.dumps({"messages": [{"role": "user"}]}).encode(), 400, "invalid_value", "messages[0].content"),
    (json.dumps({"messages": [{"role": "user", "content": 5}]}).encode(), 400, "invalid_value", "messages[0].content"),
    (json.dumps({"messages": [{"role": "user", "content": [{"text": "x"}]}]}).encode(), 400, "invalid_value", "messages[0].content[0].type"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}).encode(), 400, "invalid_value", "messages[0].content[0].text"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}).encode(), 400, "invalid_value", "messages[0].content[0].image_url"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}).encode(), 400, "invalid_value", "stream"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}).encode(), 400, "invalid_value", "max_tokens"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "model": 7}).encode(), 400, "invalid_value", "model"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}], "model": "gpt-5"}).encode(), 404, "model_not_found", "model"),
    (json.dumps({"messages": [{"role": "user", "content": "x" * 300_000}]}).encode(), 400, "context_length_exceeded", "messages"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code", "param"), BAD)
def test_bad_input_gets_an_openai_error(
    router: RouterHandle,
    fresh: dict[str, Any],
    body: bytes,
    status: int,
    code: str,
    param: str | None,
) -> None:
    r = router.client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (code, param)
    assert error["message"]
    assert fresh["low"].stats.requests == fresh["high"].stats.requests == []


@pytest.mark.parametrize("body", [b"\x18\xff}\xd9\x97", b"{not json", b"[1, 2]"])
def test_route_endpoint_rejects_bodies_that_are_not_json(router: RouterHandle, body: bytes) -> None:
    """Found by the e2e fuzz test: bytes that are not UTF-8 made /v1/route answer 500."""
    r = router.client.post("/v1/route", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


def test_bad_completion_prompt(router: RouterHandle) -> None:
    r = router.client.post("/v1/completions", json={"prompt": {"a": 1}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    assert (
        router.client.post("/v1/completions", json={"model": "tier_low"}).json()["error"]["param"]
        == "prompt"
    )


def test_body_over_the_limit_is_413(make_router: Callable[..., RouterHandle]) -> None:
    router = make_router(max_body_bytes=2048)
    r = router.client.post("/v1/chat/completions", json=chat("x" * 5000))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_unknown_path_and_method_are_openai_errors(router: RouterHandle) -> None:
    r = router.client.get("/v1/nothing")
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = router.client.get("/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


# -- auth -----------------------------------------------------------------------------------------


def test_api_key_protects_v1_only(make_router: Callable[..., RouterHandle]) -> None:
    router = make_router(api_key="s3cret")
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "s3cret"}):
        r = router.client.post("/v1/chat/completions", json=chat(), headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert router.client.get("/v1/models").status_code == 401
    assert router.client.post("/v1/route", json=chat()).status_code == 401
    ok = router.client.post(
        "/v1/chat/completions", json=chat(), headers={"authorization": "Bearer s3cret"}
    )
    assert ok.status_code == 200
    assert router.client.get("/health").status_code == 200
    assert router.client.get("/metrics").status_code == 200


def test_the_openapi_schema_is_the_validation_rules(router: RouterHandle) -> None:
    """The documented body and the checked body agree (they once drifted: role "function")."""
    import jsonschema

    from adaptive_router.service.validation import ROLES, chat_request, completion_request

    paths = router.client.get("/openapi.json").json()["paths"]
    schemas = {
        path: paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/route")
    }
    chat_schema = schemas["/v1/chat/completions"]
    assert (
        set(chat_schema["properties"]["messages"]["items"]["properties"]["role"]["enum"]) == ROLES
    )
    accepted = [
        {"messages": [{"role": role, "content": "x"}]} for role in sorted(ROLES)
    ] + [
        {"messages": [{"role": "assistant", "content": None, "tool_calls": []}], "stream": None},
        {"model": "gemma4-fast", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "data:,"}}]}],
         "max_tokens": 3, "top_k": 5},
    ]  # fmt: skip
    for body in accepted:
        chat_request(body)  # the validation accepts it...
        jsonschema.validate(body, chat_schema)  # ...and so does the documented schema
        jsonschema.validate(body, schemas["/v1/route"])
    for prompt in ("x", ["a", "b"], [1, 2], [[1], [2]]):
        completion_request({"prompt": prompt})
        jsonschema.validate({"prompt": prompt}, schemas["/v1/completions"])
