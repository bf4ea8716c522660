"""Check /v1/embeddings and /v1/rerank bodies: a clear 400 naming the field, never a 500.

The router checks what would otherwise reach the engine as a confusing error or a crash: the
shape of ``input`` (OpenAI's embeddings API) and of ``query``/``documents``/``top_n`` (the
Jina/Cohere rerank API llama-server implements), empty inputs, and how many inputs one request
may carry. Every other field passes through to the engine untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import APIError
from .validation import _TOKEN_COUNT

ENCODING_FORMATS = ("float", "base64")
"""What llama-server's /v1/embeddings returns (tools/server/server-context.cpp,
handle_embeddings_impl: anything else is an error there too)."""


@dataclass(frozen=True, slots=True)
class RetrievalInfo:
    """What the router needs from a valid embeddings or rerank body."""

    model: str | None
    inputs: int
    """Texts to embed, or documents to score."""
    top_n: int | None = None
    """Rerank: how many results the client wants (None: all)."""


def _invalid(param: str, message: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, code=code, param=param)


def _model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise _invalid("model", "'model' must be a non-empty string.")
    return model


def _is_token_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


def _too_many(param: str, count: int, limit: int, setting: str) -> APIError:
    return _invalid(
        param,
        f"'{param}' has {count} items; this router takes at most {limit} per request "
        f"(service.{setting}). Split it into several requests.",
        code="too_many_inputs",
    )


def embeddings_request(body: dict[str, Any], max_inputs: int) -> RetrievalInfo:
    """An OpenAI embeddings body: ``input`` is a string, an array of strings, an array of
    token ids, or an array of such arrays; none of them empty."""
    model = _model(body)
    if "input" not in body or body["input"] is None:
        raise _invalid("input", "'input' is required.", code="missing_required_parameter")
    value = body["input"]
    single = isinstance(value, str) or _is_token_ids(value)
    if single:
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise _invalid(
            "input",
            "'input' must be a string, an array of strings, or an array of token ids.",
            code="invalid_type",
        )
    if not items:
        raise _invalid("input", "'input' is an empty array; send at least one text.")
    if len(items) > max_inputs:
        raise _too_many("input", len(items), max_inputs, "max_embedding_inputs")
    for index, item in enumerate(items):
        where = "input" if single else f"input[{index}]"
        if isinstance(item, str):
            if not item:  # OpenAI refuses "" too; whitespace is text it embeds
                raise _invalid(where, f"'{where}' is empty; every input needs some text.")
        elif not _is_token_ids(item):
            raise _invalid(
                where,
                f"'{where}' must be a non-empty string or a non-empty array of token ids.",
                code="invalid_type",
            )
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODING_FORMATS:
        raise _invalid(
            "encoding_format", "'encoding_format' must be 'float' or 'base64'."
        )  # fmt: skip
    if body.get("dimensions") is not None:
        raise _invalid(
            "dimensions",
            "'dimensions' is not supported: the embedding engine returns its model's full "
            "vectors (see /v1/models); truncate and re-normalise them on your side.",
            code="unsupported_parameter",
        )
    return RetrievalInfo(model=model, inputs=len(items))


def rerank_request(body: dict[str, Any], max_documents: int) -> RetrievalInfo:
    """A Jina/Cohere rerank body: a ``query`` and the ``documents`` (strings) to score."""
    model = _model(body)
    query = body.get("query")
    if query is None:
        raise _invalid("query", "'query' is required.", code="missing_required_parameter")
    if not isinstance(query, str):
        raise _invalid("query", "'query' must be a string.", code="invalid_type")
    if not query:
        raise _invalid("query", "'query' is empty.")
    documents = body.get("documents")
    if documents is None:
        raise _invalid(
            "documents", "'documents' is required.", code="missing_required_parameter"
        )  # fmt: skip
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise _invalid(
            "documents", "'documents' must be an array of strings.", code="invalid_type"
        )  # fmt: skip
    if not documents:
        raise _invalid("documents", "'documents' is an empty array; send at least one.")
    if len(documents) > max_documents:
        raise _too_many("documents", len(documents), max_documents, "max_rerank_documents")
    top_n = body.get("top_n")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise _invalid("top_n", "'top_n' must be a positive integer.")
    returned = body.get("return_documents")
    if returned is not None and not isinstance(returned, bool):
        raise _invalid("return_documents", "'return_documents' must be true or false.")
    return RetrievalInfo(model=model, inputs=len(documents), top_n=top_n)


# -- the same rules as an OpenAPI document -------------------------------------------------------

_TEXT = {"type": "string", "minLength": 1}
_TOKENS = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}


def embeddings_schema(max_inputs: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["input"],
        "properties": {
            "model": {"type": ["string", "null"], "minLength": 1},
            "input": {
                "oneOf": [
                    _TEXT,
                    {"type": "array", "minItems": 1, "maxItems": max_inputs, "items": _TEXT},
                    _TOKENS,
                    {"type": "array", "minItems": 1, "maxItems": max_inputs, "items": _TOKENS},
                ]
            },
            "encoding_format": {"type": ["string", "null"], "enum": [*ENCODING_FORMATS, None]},
        },
    }


def rerank_schema(max_documents: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["query", "documents"],
        "properties": {
            "model": {"type": ["string", "null"], "minLength": 1},
            "query": _TEXT,
            "documents": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_documents,
                "items": {"type": "string"},
            },
            "top_n": {**_TOKEN_COUNT, "minimum": 1},
            "return_documents": {"type": ["boolean", "null"]},
        },
    }


def openapi_retrieval_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
