"""Check request bodies before anything is routed: clear 400s naming the field, never a 500.

Only what the router itself relies on is checked (the shape of ``messages`` / ``prompt``,
``model``, ``stream``, ``max_tokens``), plus the few fields that would let a request replace an
engine's chat template or its grammar internals (:data:`ENGINE_OWNED`); every other field passes
through untouched for the engine to judge, so a field the router does not know is never lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import APIError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
CONTENT_OPTIONAL_ROLES = frozenset({"assistant", "tool", "function"})
"""Roles whose ``content`` may be missing or null (an assistant turn that only has tool_calls)."""


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise APIError(400, "The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(
            400, f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


ENGINE_OWNED: dict[str, str] = {
    # vLLM: ChatCompletionRequest.chat_template, a Jinja template rendered for this one request
    # (vllm/entrypoints/openai/chat_completion/protocol.py, 0.31.0; a request-supplied template
    # is the denial of service fixed in 0.32.0, PYSEC-2026-4344).
    "chat_template": "replaces the engine's chat template",
    # llama-server: what its OpenAI layer derives from the model's chat template and hands to the
    # sampler; /v1/completions copies them from the body unchecked (tools/server/server-schema.cpp
    # and server-common.cpp, b11549; chat_format .. generation_prompt as in b11434, which older
    # images still read). grammar_triggers: CVE-2026-134540, fixed in b12405.
    "grammar_triggers": "is the engine's lazy-grammar trigger list",
    "grammar_lazy": "is the engine's lazy-grammar switch",
    "grammar_type": "tells the engine a grammar came from its chat template",
    "preserved_tokens": "is the engine's list of template tokens",
    "reasoning_budget_start_tag": "is the engine's thinking tag from its chat template",
    "reasoning_budget_end_tag": "is the engine's thinking tag from its chat template",
    "reasoning_budget_end_tags": "is the engine's thinking tag from its chat template",
    "chat_format": "is the engine's chat format from its chat template",
    "chat_parser": "is the engine's output parser from its chat template",
    "parse_tool_calls": "is the engine's tool-call parser switch",
    "generation_prompt": "is the engine's generation prompt from its chat template",
}
"""Request fields refused with a 400 on every path (the tiers, named or routed, and fallback).
They reach an engine's template or grammar machinery, which only the engine may set; output is
constrained the public way (``response_format``, ``tools``) and thinking switched with
``chat_template_kwargs``, which pass. Refused here too for a user who pins an older engine."""


def _refuse_engine_owned(body: dict[str, Any]) -> None:
    if not ENGINE_OWNED.keys().isdisjoint(body):  # one set operation on the common path
        for name, what in ENGINE_OWNED.items():
            if body.get(name) is not None:
                raise _unsupported(name, what)
    kwargs = body.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and kwargs.get("chat_template") is not None:
        # vLLM reads a template here too (pooling/base/io_processor.py, 0.31.0).
        raise _unsupported("chat_template_kwargs.chat_template", ENGINE_OWNED["chat_template"])


def _unsupported(param: str, what: str) -> APIError:
    return APIError(
        400,
        f"'{param}' {what}; a request may not set it. Constrain the output with "
        "'response_format' or 'tools'; switch thinking with "
        "'chat_template_kwargs': {\"enable_thinking\": true}.",
        code="unsupported_parameter",
        param=param,
    )


def _missing(param: str) -> APIError:
    return APIError(400, f"'{param}' is required.", code="missing_required_parameter", param=param)


def _invalid(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the router needs from a valid body."""

    model: str | None
    stream: bool
    max_tokens: int | None
    messages: list[dict[str, Any]] | None = None
    prompt_text: str | None = None


def _common(body: dict[str, Any]) -> tuple[str | None, bool, int | None]:
    _refuse_engine_owned(body)
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise _invalid("model", "'model' must be a non-empty string.")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid("stream", "'stream' must be true or false.")
    max_tokens = None
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _invalid(name, f"'{name}' must be a non-negative integer.")
        max_tokens = value
    return model, stream, max_tokens


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict):
        raise _invalid(where, f"'{where}' must be an object with a 'type'.")
    kind = part.get("type")
    if not isinstance(kind, str) or not kind:
        raise _invalid(f"{where}.type", f"'{where}.type' must be a non-empty string.")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise _invalid(f"{where}.text", f"'{where}.text' must be a string.")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise _invalid(f"{where}.image_url", f"'{where}.image_url.url' must be a string.")


def chat_request(body: dict[str, Any]) -> RequestInfo:
    model, stream, max_tokens = _common(body)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "'messages' must be a non-empty array of message objects.")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid(where, f"'{where}' must be an object with 'role' and 'content'.")
        role = message.get("role")
        if role not in ROLES:
            raise _invalid(
                f"{where}.role",
                f"'{where}.role' must be one of {', '.join(sorted(ROLES))}; got {role!r}.",
            )
        content = message.get("content")
        if content is None:
            if role in CONTENT_OPTIONAL_ROLES:
                continue  # e.g. an assistant turn that only carries tool_calls
            raise _invalid(f"{where}.content", f"'{where}.content' is required for role {role!r}.")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _invalid(
                f"{where}.content", f"'{where}.content' must be a string or an array of parts."
            )
        for j, part in enumerate(content):
            _check_part(part, f"{where}.content[{j}]")
    return RequestInfo(model=model, stream=stream, max_tokens=max_tokens, messages=messages)


def _token_ids(values: list[Any]) -> bool:
    return all(isinstance(t, int) and not isinstance(t, bool) for t in values)


def completion_request(body: dict[str, Any]) -> RequestInfo:
    model, stream, max_tokens = _common(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        text = "\n".join(prompt)
    elif (
        isinstance(prompt, list)
        and prompt
        and (_token_ids(prompt) or all(isinstance(p, list) and _token_ids(p) for p in prompt))
    ):
        text = ""  # token ids: nothing to read, the rules judge by length alone
    else:
        raise _invalid(
            "prompt",
            "'prompt' must be a string, an array of strings, or an array of token ids.",
        )
    return RequestInfo(model=model, stream=stream, max_tokens=max_tokens, prompt_text=text)


# -- the same rules as an OpenAPI document (documentation, client generators, the fuzz test) ------

_PART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "text": {"type": "string"},
        "image_url": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "required": ["url"],
                    "properties": {"url": {"type": "string", "minLength": 1}},
                },
            ]
        },
    },
}
_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": sorted(ROLES)},
        "content": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": _PART_SCHEMA},
                {"type": "null"},
            ],
            "description": "Required, except null for roles "
            + ", ".join(sorted(CONTENT_OPTIONAL_ROLES))
            + ".",
        },
    },
}
_TOKEN_COUNT: dict[str, Any] = {"type": ["integer", "null"], "minimum": 0}
_PROMPT_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "items": {"type": "string"}},
        {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        {
            "type": "array",
            "minItems": 1,
            "items": {"type": "array", "items": {"type": "integer"}},
        },
    ]
}


def request_schema(endpoint: str) -> dict[str, Any]:
    """JSON schema of a ``chat`` or ``completion`` body, from the rules above. Other fields are
    allowed, they pass through to the engine untouched, except the engine-owned ones."""
    required, field = (
        ("messages", {"type": "array", "minItems": 1, "items": _MESSAGE_SCHEMA})
        if endpoint == "chat"
        else ("prompt", _PROMPT_SCHEMA)
    )
    return {
        "type": "object",
        "required": [required],
        "properties": {
            "model": {"type": ["string", "null"], "minLength": 1},
            required: field,
            "stream": {"type": ["boolean", "null"]},
            "max_tokens": _TOKEN_COUNT,
            "max_completion_tokens": _TOKEN_COUNT,
            **{
                name: {"type": "null", "description": f"Refused: {what}."}
                for name, what in ENGINE_OWNED.items()
            },
        },
    }


def openapi_body(endpoint: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a ``chat`` or ``completion`` body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request_schema(endpoint)}},
        }
    }
