"""OpenAI-format error responses: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class APIError(Exception):
    """An error to send to the client, with its HTTP status and OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, code=self.code, param=self.param)

    def json_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()

    def response(self, extra_headers: dict[str, str] | None = None) -> Response:
        headers = {**self.headers, **(extra_headers or {})}
        return Response(
            self.json_bytes(),
            status_code=self.status,
            media_type="application/json",
            headers=headers,
        )


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def sse_error_event(message: str, code: str = "upstream_error") -> bytes:
    """An OpenAI-style error event for a stream that broke after its first byte."""
    payload = error_body(message, type="server_error", code=code)
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def internal_error() -> Response:
    """The one answer to a bug in the router: an OpenAI error, never a stack trace."""
    return APIError(
        500, "Internal router error; see the router's log.", type="server_error",
        code="internal_error",
    ).response()  # fmt: skip
