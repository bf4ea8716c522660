"""Bad input, generated: schemathesis builds requests from the router's own OpenAPI document
(bodies that match the schema and bodies that break it: wrong types, missing and extra fields,
bytes that are not UTF-8) and sends them to the live router in front of the real llama-servers,
the retrieval engines included.

No answer may be a 5xx; every 4xx is an OpenAI-style error; the router stays healthy. Most
generated bodies are rejected by the router's validation; some reach llama-server and come back
as real completions or as the engine's own 4xx.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import stack
from e2eutil import router_headers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Err, Ok

from adaptive_router.testing.processes import running

EXAMPLES_PER_POST = 200  # per operation and mode (valid, invalid)
EXAMPLES_PER_GET = 25  # /health, /metrics, /v1/models: no input to vary but the key
MIN_CASES = 1000


def check(response: requests.Response) -> str | None:
    """What is wrong with the answer, if anything."""
    if response.status_code >= 500:
        return "5xx"
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return "4xx that is not an OpenAI error"
        if not {"message", "type", "code"} <= set(error):
            return "error without message/type/code"
    return None


@pytest.fixture(scope="module")
def router(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[stack.Endpoint]:
    """Its own stack: generated requests may ask for any number of tokens (or none, which means
    "until the context is full"), so these engines stop every answer at 32 tokens."""
    logs = artifacts / "logs"
    cap = ["--n-predict", "32"]
    low = stack.llama_server(
        "fuzz-tier-low", tiny_model, stack.TIER_LOW_ALIAS, logs, extra_args=cap
    )
    high = stack.llama_server(
        "fuzz-tier-high", tiny_model, stack.TIER_HIGH_ALIAS, logs, extra_args=cap
    )
    embed = stack.retrieval_server("embed", tiny_model, logs, name="fuzz-embed")
    rerank = stack.retrieval_server("rerank", tiny_model, logs, name="fuzz-rerank")
    router = stack.router(
        tmp_path_factory.mktemp("fuzz"), low.url, high.url, logs, name="fuzz-router",
        retrieval={"embed": embed.url, "rerank": rerank.url},
    )  # fmt: skip
    with running(low.process, high.process, embed.process, rerank.process, router.process):
        yield router


def test_generated_requests_never_get_a_5xx(router: stack.Endpoint, artifacts: Path) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(router.url + "/openapi.json").json())
    results = list(schema.get_all_operations())
    assert not [r.err() for r in results if isinstance(r, Err)], "the schema has a broken operation"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    paths = {op.path for op in operations}
    assert {"/v1/chat/completions", "/v1/completions", "/v1/route", "/v1/embeddings",
            "/v1/rerank", "/rerank"} <= paths  # fmt: skip
    statuses: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    session = requests.Session()
    session.headers.update(router_headers())

    def fuzz(operation: Any, mode: GenerationMode, examples: int) -> None:
        label = f"{operation.method.upper()} {operation.path} {mode.value}"

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), drop_key=st.booleans())
        def run(case: Any, drop_key: bool) -> None:
            headers = {"Authorization": ""} if drop_key else None  # sometimes without the key
            response = case.call(base_url=router.url, session=session, headers=headers, timeout=60)
            statuses[f"{label} {response.status_code}"] += 1
            problem = check(response)
            if problem:
                failures.append(
                    {
                        "problem": problem,
                        "status": response.status_code,
                        "request": case.as_curl_command(),
                        "response": response.text[:500],
                    }
                )

        run()

    for operation in operations:
        if operation.method.upper() == "POST":
            for mode in GenerationMode:
                fuzz(operation, mode, EXAMPLES_PER_POST)
        else:
            fuzz(operation, GenerationMode.POSITIVE, EXAMPLES_PER_GET)

    total = sum(statuses.values())
    report = {"cases": total, "by_status": dict(sorted(statuses.items())), "failures": failures}
    (artifacts / "fuzz.json").write_text(json.dumps(report, indent=2))
    assert total >= MIN_CASES
    assert failures == [], json.dumps(failures[:5], indent=2)
    health = httpx.get(router.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ok = httpx.post(
        router.url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "still there?"}], "max_tokens": 4},
        headers=router_headers(),
    )
    assert ok.status_code == 200
