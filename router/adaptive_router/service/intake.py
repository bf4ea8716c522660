"""Intake: everything between the client's bytes and a request the router can route.

Auth, the body-size limit, JSON, the shape of the body, the model alias: each failure is an
OpenAI-format 4xx naming what is wrong. What comes out is one frozen :class:`ProxyRequest`.
Works on the raw ASGI scope (no framework request object on the hot path).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import Receive, Scope

from ..config import Tier
from .config import ServiceConfig
from .errors import APIError
from .validation import RequestInfo, chat_request, completion_request, parse_json

Endpoint = Literal["chat", "completion"]


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """A checked request, ready to be routed."""

    request_id: str
    started: float
    """``time.perf_counter()`` when the request arrived."""
    endpoint: Endpoint
    body: dict[str, Any]
    info: RequestInfo
    client_model: str
    """The model name the client used (written back into the answer)."""
    requested_tier: Tier | None
    """The tier the model name pins, or None for a routed model."""


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """One request header from an ASGI scope (names are lower case there)."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class Intake:
    """Reads and checks requests for one service configuration."""

    def __init__(self, service: ServiceConfig) -> None:
        self.service = service
        self._api_key = service.api_key.encode() if service.api_key else None
        self._model_to_tier: dict[str, Tier | None] = {}
        for name in service.routed_models:
            self._model_to_tier.setdefault(name, None)
        for name in service.tier_high_models:
            self._model_to_tier.setdefault(name, "tier_high")
        for name in service.tier_low_models:
            self._model_to_tier.setdefault(name, "tier_low")

    def check_auth(self, authorization: str | None) -> None:
        if self._api_key is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._api_key
        ):
            raise APIError(
                401,
                "Missing or invalid API key: send 'Authorization: Bearer <ROUTER_API_KEY>'.",
                code="invalid_api_key",
            )

    async def read_body(self, receive: Receive, content_length: str | None) -> bytes:
        limit = self.service.max_body_bytes
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            raise self._too_large(int(content_length))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise APIError(400, "The client closed the connection before sending the body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(size)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self, size: int) -> APIError:
        return APIError(
            413,
            f"The request body ({size} bytes) is larger than the limit of "
            f"{self.service.max_body_bytes} bytes (service.max_body_bytes).",
            code="request_too_large",
        )

    def resolve_model(self, model: str | None) -> tuple[str, Tier | None]:
        name = model or self.service.default_model
        if not name:
            raise APIError(
                400, "'model' is required.", code="missing_required_parameter", param="model"
            )
        if name not in self._model_to_tier:
            raise APIError(
                404,
                f"The model '{name}' does not exist. Available: "
                + ", ".join(self.service.models())
                + ".",
                code="model_not_found",
                param="model",
            )
        return name, self._model_to_tier[name]

    @staticmethod
    def parse(raw: bytes, endpoint: Endpoint) -> tuple[dict[str, Any], RequestInfo]:
        body = parse_json(raw)
        info = chat_request(body) if endpoint == "chat" else completion_request(body)
        return body, info

    async def read(
        self, scope: Scope, receive: Receive, endpoint: Endpoint, request_id: str
    ) -> ProxyRequest:
        """The whole intake of one proxy request; raises :class:`APIError`."""
        started = time.perf_counter()
        headers = scope["headers"]
        self.check_auth(header(headers, b"authorization"))
        raw = await self.read_body(receive, header(headers, b"content-length"))
        body, info = self.parse(raw, endpoint)
        client_model, requested = self.resolve_model(info.model)
        return ProxyRequest(
            request_id=request_id,
            started=started,
            endpoint=endpoint,
            body=body,
            info=info,
            client_model=client_model,
            requested_tier=requested,
        )


def request_id_of(scope: Scope) -> str:
    """The client's ``x-request-id``, or a new one (128 random bits, as a uuid4's hex)."""
    return header(scope["headers"], b"x-request-id") or os.urandom(16).hex()
