"""Fixtures that start the real stack on loopback, once per session, and stop it afterwards.

Every test here is marked ``e2e`` (tests/conftest.py). Missing parts (llama-server build,
LiteLLM, OpenWebUI, Prometheus, Chromium) skip the tests on a developer machine and fail them in
CI.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stack
from e2eutil import HubRecorder, recording_proxy
from vllm_stub import VllmStub

from adaptive_router.testing.processes import free_port, running
from stratum_tools.tiny_gguf import write_tiny_llama


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Logs, screenshots and measurements of the run (kept after the run; CI can upload it)."""
    path = Path(os.environ.get("E2E_ARTIFACTS", stack.ROOT / "artifacts" / "e2e"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def engines(tiny_model: Path, artifacts: Path) -> Iterator[tuple[stack.Endpoint, stack.Endpoint]]:
    """tier_low and tier_high: two real llama-servers serving the tiny model. llama-server's own
    debug switch LLAMA_SERVER_SLOTS_DEBUG (tools/server/server-context.cpp, b11549: /slots then
    includes each slot's last prompt) lets a test read what reached a tier (the document chat's
    retrieved passage)."""
    debug = {"LLAMA_SERVER_SLOTS_DEBUG": "1"}
    # A real model ends its answers; the tiny one never does (its end-of-text token is never
    # sampled), so an answer without max_tokens ends at 128 tokens (llama-server --n-predict),
    # as short as a chat UI's task answers (a title, search queries) are with a real model.
    ends = ["--n-predict", "128"]
    low = stack.llama_server("tier-low", tiny_model, stack.TIER_LOW_ALIAS, artifacts / "logs",
                             env=debug, extra_args=ends)  # fmt: skip
    # tier_high with the compose file's two slots (LLAMA_PARALLEL), which the router reads from
    # its /props and shares fairly (tests/e2e/test_e2e_fairness.py).
    high = stack.llama_server("tier-high", tiny_model, stack.TIER_HIGH_ALIAS, artifacts / "logs",
                              env=debug, extra_args=ends, parallel=2)  # fmt: skip
    with running(low.process, high.process):
        yield low, high


@pytest.fixture(scope="session")
def retrieval_engines(tiny_model: Path, artifacts: Path) -> Iterator[dict[str, stack.Endpoint]]:
    """embed and rerank: real llama-servers with the compose file's commands (embedding mode
    with mean pooling, reranking mode) serving the tiny model."""
    embed = stack.retrieval_server("embed", tiny_model, artifacts / "logs")
    rerank = stack.retrieval_server("rerank", tiny_model, artifacts / "logs")
    with running(embed.process, rerank.process):
        yield {"embed": embed, "rerank": rerank}


@pytest.fixture(scope="session")
def embed_received(
    retrieval_engines: dict[str, stack.Endpoint],
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """What the real embedding engine receives: a recording proxy in front of it (the router's
    embed URL), so a test reads the texts the engine embedded as they arrived."""
    with recording_proxy(retrieval_engines["embed"].url) as tap:
        yield tap


@pytest.fixture(scope="session")
def router(
    engines: tuple[stack.Endpoint, stack.Endpoint],
    retrieval_engines: dict[str, stack.Endpoint],
    embed_received: tuple[str, list[dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[stack.Endpoint]:
    low, high = engines
    endpoint = stack.router(
        tmp_path_factory.mktemp("router"), low.url, high.url, artifacts / "logs",
        retrieval={"embed": embed_received[0], "rerank": retrieval_engines["rerank"].url},
    )  # fmt: skip
    with running(endpoint.process):
        yield endpoint


@pytest.fixture(scope="session")
def litellm(
    router: stack.Endpoint, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[stack.Endpoint]:
    endpoint = stack.litellm(tmp_path_factory.mktemp("litellm"), router.url, artifacts / "logs")
    with running(endpoint.process):
        yield endpoint


@pytest.fixture(scope="session")
def vllm_stub() -> Iterator[VllmStub]:
    with VllmStub.serving() as stub:
        yield stub


@pytest.fixture(scope="session")
def prometheus(
    router: stack.Endpoint,
    engines: tuple[stack.Endpoint, stack.Endpoint],
    litellm: stack.Endpoint,
    vllm_stub: VllmStub,
    retrieval_engines: dict[str, stack.Endpoint],
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[stack.Endpoint]:
    port = free_port()
    targets = {
        "router:9000": _hostport(router.url),
        "embed:8080": _hostport(retrieval_engines["embed"].url),
        "rerank:8080": _hostport(retrieval_engines["rerank"].url),
        "vllm:8000": _hostport(vllm_stub.url),
        "llama-cpp:8080": _hostport(engines[1].url),
        "litellm:4000": _hostport(litellm.url),
        "localhost:9090": f"127.0.0.1:{port}",
    }
    endpoint = stack.prometheus(
        tmp_path_factory.mktemp("prometheus"), targets, artifacts / "logs", port, "1s"
    )
    with running(endpoint.process):
        yield endpoint


@pytest.fixture(scope="session")
def hub() -> Iterator[HubRecorder]:
    """What OpenWebUI would reach as the Hub (HF_ENDPOINT): records every request and answers
    404. OpenWebUI, configured as compose configures it, should send it none."""
    seen: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = _any

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield HubRecorder(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def open_webui(
    litellm: stack.Endpoint,
    hub: HubRecorder,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[stack.Endpoint]:
    endpoint = stack.open_webui(
        tmp_path_factory.mktemp("open-webui"), litellm.url, artifacts / "logs",
        hub_url=hub.url,
    )  # fmt: skip
    with running(endpoint.process):
        yield endpoint


def _hostport(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")
