"""Retrieval through the real stack: the router's /v1/embeddings and /v1/rerank in front of real
llama-servers started with the compose file's ``embed`` and ``rerank`` commands (embedding mode
with mean pooling, reranking mode), serving the tiny model; the same through LiteLLM with its
model names; and engines killed under the router.

The tiny model's weights are noise, so its vectors and scores mean nothing; what is tested is
what a client sees: shapes, dimensions, order, errors and failover.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import httpx
import openai
import pytest
import stack
from e2eutil import metric_sum, router_headers, scrape

from adaptive_router.testing.processes import running

DOCUMENTS = ["a red car", "the giant panda is a bear", "bamboo forests of China", "a bear"]


def model_dimension(path: Path) -> int:
    """The embedding length the GGUF declares (llama.embedding_length)."""
    reader = gguf.GGUFReader(str(path))
    field = reader.fields["llama.embedding_length"]
    return int(field.parts[field.data[0]][0])


@pytest.fixture(scope="module")
def sdk(router: stack.Endpoint) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=router.url + "/v1", api_key=stack.ROUTER_API_KEY,
                           max_retries=0)  # fmt: skip
    yield client
    client.close()


def test_embeddings_create_returns_vectors_of_the_models_dimension(
    sdk: openai.OpenAI, tiny_model: Path, router: stack.Endpoint
) -> None:
    dim = model_dimension(tiny_model)
    before = scrape(router.url)
    one = sdk.embeddings.create(model="gemma-embed", input="What is a panda?")
    assert one.model == "gemma-embed"
    assert [len(d.embedding) for d in one.data] == [dim]
    batch = sdk.embeddings.create(model="gemma-embed", input=DOCUMENTS)
    assert [d.index for d in batch.data] == list(range(len(DOCUMENTS)))
    assert all(len(d.embedding) == dim for d in batch.data)
    assert batch.usage.prompt_tokens > 0
    # llama-server normalises (Euclidean) by default: unit vectors, different per text.
    for d in batch.data:
        assert abs(sum(x * x for x in d.embedding) - 1.0) < 1e-3
    assert batch.data[0].embedding != batch.data[1].embedding
    after = scrape(router.url)
    grown = metric_sum(after, "router_retrieval_inputs_total", tier="embed") - metric_sum(
        before, "router_retrieval_inputs_total", tier="embed"
    )
    assert grown == 1 + len(DOCUMENTS)


def test_float_and_base64_encodings_carry_the_same_vector(router: stack.Endpoint) -> None:
    answers = {}
    for encoding in ("float", "base64"):
        r = httpx.post(router.url + "/v1/embeddings", headers=router_headers(), timeout=30,
                       json={"input": "same text", "encoding_format": encoding})  # fmt: skip
        assert r.status_code == 200, r.text
        answers[encoding] = r.json()["data"][0]["embedding"]
    raw = base64.b64decode(answers["base64"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(answers["float"], abs=1e-6)


def test_rerank_scores_every_document_best_first(
    router: stack.Endpoint, retrieval_engines: dict[str, stack.Endpoint]
) -> None:
    body: dict[str, Any] = {"model": "gemma-rerank", "query": "panda", "documents": DOCUMENTS}
    r = httpx.post(router.url + "/v1/rerank", json=body, headers=router_headers(), timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-router-tier"] == "rerank"
    results = r.json()["results"]
    assert sorted(x["index"] for x in results) == list(range(len(DOCUMENTS)))
    scores = [x["relevance_score"] for x in results]
    assert scores == sorted(scores, reverse=True)
    # The engine's own answer, in the same order: the router changes nothing but the name.
    direct = httpx.post(retrieval_engines["rerank"].url + "/v1/rerank", json=body, timeout=30)
    assert [x["index"] for x in direct.json()["results"]] == [x["index"] for x in results]
    top = httpx.post(router.url + "/rerank", json={**body, "top_n": 2},
                     headers=router_headers(), timeout=30).json()  # fmt: skip
    assert [x["index"] for x in top["results"]] == [x["index"] for x in results[:2]]
    assert top["model"] == "gemma-rerank"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings", {"input": ""}, "input"),
        ("/v1/embeddings", {"input": []}, "input"),
        ("/v1/embeddings", {"input": ["text"] * 513}, "input"),
        ("/v1/embeddings", {"input": {"text": "x"}}, "input"),
        ("/v1/rerank", {"query": "q", "documents": []}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": [1, 2]}, "documents"),
        ("/v1/rerank", {"query": 3, "documents": ["d"]}, "query"),
    ],
)
def test_bad_input_is_a_4xx_in_openais_format(
    router: stack.Endpoint, path: str, body: dict[str, Any], param: str
) -> None:
    r = httpx.post(router.url + path, json=body, headers=router_headers(), timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_the_sdk_raises_a_bad_request_for_an_empty_input(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model="gemma-embed", input=[])
    assert caught.value.status_code == 400


def test_an_input_longer_than_the_engines_batch_is_the_clients_400(router: stack.Endpoint) -> None:
    """The compose command's --ubatch-size 2048: a longer input is llama-server's HTTP 500
    "too large to process", which the router answers as the client's 400."""
    long_text = "panda " * 2000  # one byte token per character with the tiny vocabulary
    r = httpx.post(router.url + "/v1/embeddings", json={"input": long_text},
                   headers=router_headers(), timeout=60)  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert "too large" in r.json()["error"]["message"]


def test_litellm_embeds_and_reranks_with_a_key(
    litellm: stack.Endpoint, router: stack.Endpoint
) -> None:
    client = openai.OpenAI(base_url=litellm.url + "/v1", api_key=stack.LITELLM_MASTER_KEY,
                           max_retries=0)  # fmt: skip
    answer = client.embeddings.create(model="gemma-embed", input=["one", "two"])
    assert len(answer.data) == 2 and len(answer.data[0].embedding) > 0
    r = httpx.post(
        litellm.url + "/v1/rerank",
        json={"model": "gemma-rerank", "query": "panda", "documents": DOCUMENTS, "top_n": 3},
        headers={"Authorization": f"Bearer {stack.LITELLM_MASTER_KEY}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    assert [x["relevance_score"] for x in results] == sorted(
        (x["relevance_score"] for x in results), reverse=True
    )
    before = metric_sum(scrape(router.url), "router_requests_total", tier="rerank")
    no_key = httpx.post(litellm.url + "/v1/rerank", json={"model": "gemma-rerank",
                        "query": "q", "documents": ["d"]}, timeout=30)  # fmt: skip
    # Refused without a key, before the router. LiteLLM 1.108.7 answers it with a bare HTTP 500
    # (its log: "No api key passed in."), not chat's 401: its behaviour, noted in docs/API.md.
    assert no_key.status_code in (401, 403, 500)
    assert metric_sum(scrape(router.url), "router_requests_total", tier="rerank") == before


def test_a_killed_engine_fails_over_then_a_clean_503(
    tiny_model: Path, engines: tuple[stack.Endpoint, stack.Endpoint],
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path,
) -> None:  # fmt: skip
    logs = artifacts / "logs"
    first = stack.retrieval_server("embed", tiny_model, logs, name="embed-replica-1")
    second = stack.retrieval_server("embed", tiny_model, logs, name="embed-replica-2")
    low, high = engines
    with running(first.process, second.process):
        # The health probe runs once, at start: the requests alone must find the dead replica
        # (with the default 2 s probe, whether one of them meets it first is a race).
        router = stack.router(
            tmp_path_factory.mktemp("retrieval-failover"), low.url, high.url, logs,
            name="retrieval-router", retrieval={"embed": [first.url, second.url]},
            env={"ROUTER_HEALTH_INTERVAL_S": "3600"},
        )  # fmt: skip
        with running(router.process):
            url = router.url + "/v1/embeddings"

            def embed() -> httpx.Response:
                return httpx.post(url, json={"input": "x"}, headers=router_headers(), timeout=30)

            def failovers() -> float:
                return metric_sum(scrape(router.url), "router_failovers_total",
                                  from_tier="embed", to_tier="embed")  # fmt: skip

            assert embed().status_code == 200
            first.process.kill()
            # Ties between idle replicas break at random: within 30 requests one meets the dead
            # replica (all miss it with probability 2**-30), and every request is answered.
            statuses: list[int] = []
            while failovers() == 0 and len(statuses) < 30:
                statuses.append(embed().status_code)
            assert statuses == [200] * len(statuses)
            assert failovers() >= 1
            assert metric_sum(scrape(router.url), "router_upstream_errors_total", tier="embed") >= 1
            second.process.kill()
            down = embed()
            assert down.status_code == 503
            error = down.json()["error"]
            assert error["code"] == "upstream_unavailable" and error["type"] == "server_error"
