"""A fake OpenAI-compatible engine for tests, benchmarks and GPU-less smoke runs.

It speaks just enough of vLLM's and llama-server's HTTP surface: ``/v1/chat/completions`` and
``/v1/completions`` (JSON and SSE), ``/health`` (200, or 503 "Loading model"), ``/metrics``
(vLLM or llama.cpp names), ``/v1/models`` and, for the llama.cpp flavour, ``/props`` (its
``total_slots``). Its behaviour is set per instance (or, for one in another process, with
``POST /fake/behavior``): delay before the first token, delay between tokens, number of tokens,
slots (as an engine has: that many requests are served at once, the rest wait in arrival order,
counted as llama-server's deferred or vLLM's waiting requests), and faults (HTTP 500, 503
loading, a connection cut mid-stream, a hang, llama-server's 500 for an image without
--mmproj). It counts what happened, including streams whose client went away, so tests can check
that the router closed them.

    python -m adaptive_router.testing.fake_engine --port 8000 --model gemma-4-e4b --flavor vllm
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

Fault = Literal["none", "500", "loading", "cut", "hang", "empty", "too_large"]
"""``too_large``: llama-server's HTTP 500 for an embedding input longer than its batch."""


@dataclass
class Behavior:
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    tokens: int = 8
    fault: Fault = "none"
    cut_after_tokens: int = 2
    health_status: int = 200
    deferred: int = 0
    waiting: int = 0
    embedding_dim: int = 8
    """Length of the vectors /v1/embeddings answers."""
    accepts_images: bool = True
    """False: answer an image as llama-server without --mmproj does (HTTP 500)."""
    slots: int = 0
    """Chat requests served at once; the rest wait in arrival order (llama-server's
    ``--parallel``, vLLM's ``--max-num-seqs``). 0: no limit (and no /props)."""


@dataclass
class Stats:
    requests: list[dict[str, Any]] = field(default_factory=list)
    active_streams: int = 0
    completed_streams: int = 0
    cancelled_streams: int = 0
    busy: int = 0
    """Chat requests holding a slot now."""
    max_busy: int = 0
    """The most chat requests served at once so far."""
    deferred: int = 0
    """Chat requests waiting for a slot now."""
    stream_cancelled: threading.Event = field(default_factory=threading.Event)
    stream_started: threading.Event = field(default_factory=threading.Event)


class FakeEngine:
    """An ASGI app. ``behavior`` and ``stats`` may be read and changed from other threads."""

    def __init__(
        self,
        model: str = "fake-model",
        flavor: Literal["vllm", "llamacpp"] = "llamacpp",
        behavior: Behavior | None = None,
    ) -> None:
        self.model = model
        self.flavor = flavor
        self.behavior = behavior or Behavior()
        self.stats = Stats()
        self._line: list[asyncio.Future[None]] = []

    def reset(self, behavior: Behavior | None = None) -> None:
        self.behavior = behavior or Behavior()
        self.stats = Stats()
        self._line = []

    async def _take_slot(self, disconnected: asyncio.Event) -> bool:
        """A slot, waiting in arrival order when all are busy; False if the client left first."""
        stats, slots = self.stats, self.behavior.slots
        if not slots or stats.busy < slots:
            stats.busy += 1
            stats.max_busy = max(stats.max_busy, stats.busy)
            return True
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        stats.deferred += 1
        gone: asyncio.Future[Any] = asyncio.ensure_future(disconnected.wait())
        either: set[asyncio.Future[Any]] = {turn, gone}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            stats.deferred -= 1
        if turn.done() and not turn.cancelled():
            if not disconnected.is_set():
                return True
            self._give_slot()  # handed over as the client left: pass it on
            return False
        turn.cancel()
        self._line.remove(turn)
        return False

    def _give_slot(self) -> None:
        """Hand the slot to the first waiter, or free it."""
        while self._line:
            turn = self._line.pop(0)
            if not turn.done():
                turn.set_result(None)  # the slot passes on: busy stays as it is
                return
        self.stats.busy -= 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in ("/health", "/v1/health"):
            status = self.behavior.health_status
            if status == 200:
                await _json(send, 200, {"status": "ok"})
            else:
                await _json(send, status, _loading_error())
        elif method == "GET" and path == "/metrics":
            await _text(send, 200, self._metrics())
        elif (
            method == "GET"
            and path == "/props"
            and self.flavor == "llamacpp"
            and self.behavior.slots
        ):
            # llama-server's GET /props (tools/server/server-context.cpp get_res_props): a few
            # of its fields.
            await _json(send, 200, {"total_slots": self.behavior.slots, "model_alias": self.model,
                                    "is_sleeping": False})  # fmt: skip
        elif method == "GET" and path == "/v1/models":
            await _json(
                send, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}
            )
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            await self._completion(path.endswith("chat/completions"), receive, send)
        elif method == "POST" and path in ("/v1/embeddings", "/v1/rerank"):
            await self._retrieval(path == "/v1/embeddings", receive, send)
        elif method == "POST" and path == "/fake/behavior":
            await self._set_behavior(receive, send)
        else:
            await _json(
                send, 404, {"error": {"message": "not found", "type": "not_found", "code": 404}}
            )

    async def _set_behavior(self, receive: Receive, send: Send) -> None:
        """``POST /fake/behavior {"first_token_delay_s": 5}``: change the behaviour of a fake
        engine running in another process (tests that slow an engine down, then heal it)."""
        raw = await _read_body(receive)
        try:
            self.behavior = Behavior(**{**self.behavior.__dict__, **json.loads(raw)})
        except (TypeError, ValueError) as exc:
            await _json(send, 400, {"error": {"message": str(exc), "type": "invalid_request"}})
            return
        await _json(send, 200, self.behavior.__dict__)

    def _metrics(self) -> str:
        b = self.behavior
        if self.flavor == "vllm":
            label = f'{{model_name="{self.model}"}}'
            return (
                f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{label} "
                f"{self.stats.active_streams}\n"
                "# TYPE vllm:num_requests_waiting gauge\n"
                f"vllm:num_requests_waiting{label} {b.waiting + self.stats.deferred}\n"
                f"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{label} 0.25\n"
            )
        return (
            "# TYPE llamacpp:requests_processing gauge\n"
            f"llamacpp:requests_processing {self.stats.active_streams}\n"
            "# TYPE llamacpp:requests_deferred gauge\n"
            f"llamacpp:requests_deferred {b.deferred + self.stats.deferred}\n"
        )

    async def _retrieval(self, embed: bool, receive: Receive, send: Send) -> None:
        """llama-server's /v1/embeddings (``embedding_dim`` floats per input, from a hash of
        the text) and /v1/rerank (score: share of the query's words in the document, results
        best first, cut to top_n), in its answer shapes, with the same faults as chat."""
        body = json.loads(await _read_body(receive))
        self.stats.requests.append(body)
        b = self.behavior
        if await _answer_fault(b.fault, send):
            return
        if b.fault == "too_large":
            text = ("input (3004 tokens) is too large to process. increase the physical batch "
                    "size (current batch size: 2048)")  # fmt: skip
            await _json(send, 500, {"error": {"code": 500, "message": text,
                                              "type": "server_error"}})  # fmt: skip
            return
        if b.first_token_delay_s:
            await asyncio.sleep(b.first_token_delay_s)
        if embed:
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": _vector(str(text), b.embedding_dim),
                }
                for i, text in enumerate(inputs)
            ]
            tokens = sum(len(str(text)) for text in inputs)
            await _json(send, 200, {"model": body.get("model"), "object": "list", "data": data,
                                    "usage": {"prompt_tokens": tokens,
                                              "total_tokens": tokens}})  # fmt: skip
            return
        words = set(body["query"].lower().split())
        scores = [
            len(words & set(doc.lower().split())) / max(len(words), 1) for doc in body["documents"]
        ]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        results = [{"index": i, "relevance_score": scores[i]} for i in order]
        results = results[: body.get("top_n") or len(results)]
        tokens = sum(len(body["query"]) + len(doc) for doc in body["documents"])
        await _json(send, 200, {"model": body.get("model"), "object": "list", "results": results,
                                "usage": {"prompt_tokens": tokens,
                                          "total_tokens": tokens}})  # fmt: skip

    async def _completion(self, chat: bool, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            await _json(
                send, 400, {"error": {"message": "bad json", "type": "invalid_request_error"}}
            )
            return
        self.stats.requests.append(body)
        b = self.behavior
        if body.get("model") != self.model:
            await _json(
                send,
                404,
                {
                    "error": {
                        "message": f"model {body.get('model')!r} not served",
                        "type": "NotFoundError",
                        "code": 404,
                    }
                },
            )
            return
        if body.get("trigger_400"):
            await _json(
                send,
                400,
                {
                    "error": {
                        "message": "upstream says no",
                        "type": "invalid_request_error",
                        "code": 400,
                    }
                },
            )
            return
        if not b.accepts_images and _has_image(body):
            # llama-server's words (tools/server/server-common.cpp), its status and error shape.
            text = ("image input is not supported - hint: if this is unexpected, you may "
                    "need to provide the mmproj")  # fmt: skip
            await _json(send, 500, {"error": {"code": 500, "message": text,
                                              "type": "server_error"}})  # fmt: skip
            return
        if await _answer_fault(b.fault, send):
            return
        disconnected = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        watcher = asyncio.create_task(watch())
        if not await self._take_slot(disconnected):
            watcher.cancel()
            self._cancelled()
            return
        try:
            if await _wait(disconnected, b.first_token_delay_s):
                self._cancelled()
                return
            created = int(time.time())
            kind = "chat.completion" if chat else "text_completion"
            if not body.get("stream"):
                # The whole generation before the answer, as an engine takes it.
                if await _wait(disconnected, b.token_delay_s * max(b.tokens - 1, 0)):
                    self._cancelled()
                    return
                text = " ".join(f"tok{i}" for i in range(b.tokens))
                choice: dict[str, Any] = (
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                    if chat
                    else {"index": 0, "text": text, "finish_reason": "stop"}
                )
                await _json(send, 200, {
                    "id": "fake-1", "object": kind, "created": created, "model": body["model"],
                    "choices": [choice],
                    "usage": {"prompt_tokens": 5, "completion_tokens": b.tokens,
                              "total_tokens": 5 + b.tokens},
                })  # fmt: skip
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
            self.stats.active_streams += 1
            self.stats.stream_started.set()
            try:
                if b.fault == "empty":
                    raise ConnectionAbortedError("fault: stream ends before its first byte")
                for i in range(b.tokens):
                    if i and await _wait(disconnected, b.token_delay_s):
                        self._cancelled()
                        return
                    if b.fault == "cut" and i == b.cut_after_tokens:
                        raise ConnectionAbortedError("fault: connection cut mid-stream")
                    delta = {"content": f"tok{i} "} if chat else None
                    chunk_choice = (
                        {"index": 0, "delta": delta, "finish_reason": None}
                        if chat
                        else {"index": 0, "text": f"tok{i} ", "finish_reason": None}
                    )
                    chunk = {"id": "fake-1", "object": f"{kind}.chunk", "created": created,
                             "model": body["model"], "choices": [chunk_choice]}  # fmt: skip
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                            "more_body": True,
                        }
                    )
                await send(
                    {"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False}
                )
                self.stats.completed_streams += 1
            finally:
                self.stats.active_streams -= 1
        finally:
            watcher.cancel()
            self._give_slot()

    def _cancelled(self) -> None:
        self.stats.cancelled_streams += 1
        self.stats.stream_cancelled.set()


async def _wait(event: asyncio.Event, delay: float) -> bool:
    """Sleep ``delay`` seconds unless ``event`` fires first; True if it fired."""
    if event.is_set():
        return True
    if delay <= 0:
        await asyncio.sleep(0)
        return event.is_set()
    try:
        await asyncio.wait_for(event.wait(), delay)
    except TimeoutError:
        return False
    return True


def _vector(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return [((seed >> (i % 64)) & 0xFF) / 255.0 for i in range(dim)]


def _has_image(body: dict[str, Any]) -> bool:
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") == "image_url" for part in content
        ):
            return True
    return False


async def _read_body(receive: Receive) -> bytes:
    raw = b""
    while True:
        message = await receive()
        raw += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return raw


async def _answer_fault(fault: Fault, send: Send) -> bool:
    """Answer as the faults every endpoint shares (HTTP 500, 503 loading, a hang) do; False
    when ``fault`` is none of them."""
    if fault == "500":
        await _json(
            send, 500, {"error": {"message": "internal engine error", "type": "server_error"}}
        )
    elif fault == "loading":
        await _json(send, 503, _loading_error())
    elif fault == "hang":
        await asyncio.sleep(3600)
    else:
        return False
    return True


def _loading_error() -> dict[str, Any]:
    return {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}


async def _json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _text(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; version=0.0.4")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--flavor", choices=["vllm", "llamacpp"], default="llamacpp")
    parser.add_argument("--first-token-delay-ms", type=float, default=0.0)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument(
        "--slots",
        type=int,
        default=0,
        help="chat requests served at once, the rest wait (0: no limit)",
    )
    parser.add_argument(
        "--fault",
        choices=get_args(Fault),
        default="none",
        help="answer every request with this fault (loading = 503 'Loading model', also on "
        "/health; cut = close the stream mid-way)",
    )
    args = parser.parse_args()
    import uvicorn

    engine = FakeEngine(args.model, args.flavor, Behavior(
        first_token_delay_s=args.first_token_delay_ms / 1000,
        token_delay_s=args.token_delay_ms / 1000,
        tokens=args.tokens,
        slots=args.slots,
        fault=args.fault,
        health_status=503 if args.fault == "loading" else 200,
    ))  # fmt: skip
    uvicorn.run(engine, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
