"""/v1/embeddings and /v1/rerank through the router under real uvicorn, in front of fake
retrieval engines (the real llama-servers: tests/e2e/test_e2e_retrieval.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from adaptive_router.testing.fake_engine import Behavior, FakeEngine

from ..servers import serve
from .conftest import RouterHandle


@pytest.fixture(scope="module")
def retrieval_engines() -> Iterator[dict[str, Any]]:
    embed_a = FakeEngine("embeddinggemma-300m", "llamacpp")
    embed_b = FakeEngine("embeddinggemma-300m", "llamacpp")
    rerank = FakeEngine("bge-reranker-v2-m3", "llamacpp")
    with serve(embed_a) as a, serve(embed_b) as b, serve(rerank) as r:
        yield {"embed_a": embed_a, "embed_b": embed_b, "rerank": rerank,
               "embed_urls": (a + "/v1", b + "/v1"), "rerank_url": r + "/v1"}  # fmt: skip


@pytest.fixture
def retrieval(
    make_router: Callable[..., RouterHandle], retrieval_engines: dict[str, Any]
) -> RouterHandle:
    for name in ("embed_a", "embed_b", "rerank"):
        retrieval_engines[name].reset()
    return make_router(
        embed_url=retrieval_engines["embed_urls"],
        rerank_url=(retrieval_engines["rerank_url"],),
        max_embedding_inputs=4,
        max_rerank_documents=3,
    )


def engine_requests(engines: dict[str, Any], *names: str) -> int:
    return sum(len(engines[n].stats.requests) for n in names)


def test_embeddings_for_one_input_and_a_batch(
    retrieval: RouterHandle, retrieval_engines: dict[str, Any]
) -> None:
    one = retrieval.client.post("/v1/embeddings", json={"model": "gemma-embed", "input": "hi"})
    assert one.status_code == 200, one.text
    assert one.headers["x-router-tier"] == "embed"
    assert one.json()["model"] == "gemma-embed"  # the client's name, not the engine's
    assert [len(d["embedding"]) for d in one.json()["data"]] == [8]
    batch = retrieval.client.post("/v1/embeddings", json={"input": ["a b", "c", "d e f"]})
    assert batch.status_code == 200, batch.text
    assert [d["index"] for d in batch.json()["data"]] == [0, 1, 2]
    assert batch.json()["model"] == "gemma-embed"  # no model: the first embedding name
    sent = [
        *retrieval_engines["embed_a"].stats.requests,
        *retrieval_engines["embed_b"].stats.requests,
    ]
    assert {r["model"] for r in sent} == {"embeddinggemma-300m"}
    assert retrieval.metric("router_requests_total", tier="embed", status="200") == 2
    assert retrieval.metric("router_retrieval_inputs_total", tier="embed") == 4
    assert retrieval.metric("router_retrieval_tokens_total", tier="embed") == 2 + 3 + 1 + 5


def test_rerank_returns_the_best_documents_first_on_both_paths(retrieval: RouterHandle) -> None:
    body = {
        "model": "gemma-rerank",
        "query": "giant panda bear",
        "documents": ["a red car", "the giant panda is a bear", "a bear"],
        "top_n": 2,
    }
    for path in ("/v1/rerank", "/rerank"):
        answer = retrieval.client.post(path, json=body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-router-tier"] == "rerank"
        results = answer.json()["results"]
        assert [r["index"] for r in results] == [1, 2]
        assert results[0]["relevance_score"] > results[1]["relevance_score"]
        assert answer.json()["model"] == "gemma-rerank"
    assert retrieval.metric("router_retrieval_inputs_total", tier="rerank") == 6


def test_a_top_n_beyond_the_documents_means_all_of_them(
    retrieval: RouterHandle, retrieval_engines: dict[str, Any]
) -> None:
    body = {"query": "bear", "documents": ["a bear", "a car"], "top_n": 10**30}
    answer = retrieval.client.post("/v1/rerank", json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["results"]) == 2
    assert retrieval_engines["rerank"].stats.requests[-1]["top_n"] == 2


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings", {"input": ""}, "input"),
        ("/v1/embeddings", {"input": []}, "input"),
        ("/v1/embeddings", {"input": ["ok", ""]}, "input[1]"),
        ("/v1/embeddings", {"input": ["a", "b", "c", "d", "e"]}, "input"),
        ("/v1/embeddings", {"input": {"text": "hi"}}, "input"),
        ("/v1/embeddings", {"input": [1, "a"]}, "input[0]"),
        ("/v1/embeddings", {}, "input"),
        ("/v1/embeddings", {"input": "hi", "encoding_format": "int8"}, "encoding_format"),
        ("/v1/embeddings", {"input": "hi", "dimensions": 256}, "dimensions"),
        ("/v1/embeddings", {"input": "hi", "model": 3}, "model"),
        ("/v1/rerank", {"query": "q"}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": []}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": [{"text": "d"}]}, "documents"),
        ("/v1/rerank", {"query": "q", "documents": ["a", "b", "c", "d"]}, "documents"),
        ("/v1/rerank", {"query": "", "documents": ["d"]}, "query"),
        ("/v1/rerank", {"query": ["q"], "documents": ["d"]}, "query"),
        ("/v1/rerank", {"query": "q", "documents": ["d"], "top_n": 0}, "top_n"),
        ("/rerank", {"documents": ["d"]}, "query"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_reaches_no_engine(
    retrieval: RouterHandle, retrieval_engines: dict[str, Any], path: str,
    body: dict[str, Any], param: str,
) -> None:  # fmt: skip
    answer = retrieval.client.post(path, json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error" and error["message"]
    assert engine_requests(retrieval_engines, "embed_a", "embed_b", "rerank") == 0
    kind = "embed" if "embeddings" in path else "rerank"
    assert retrieval.metric("router_requests_total", tier=kind, status="400") == 1


def test_not_json_unknown_model_and_no_engine(
    retrieval: RouterHandle, make_router: Callable[..., RouterHandle]
) -> None:
    garbled = retrieval.client.post("/v1/embeddings", content=b"{nope")
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "invalid_json"
    unknown = retrieval.client.post("/v1/embeddings", json={"model": "gemma4-fast", "input": "x"})
    assert unknown.status_code == 404
    assert "gemma-embed" in unknown.json()["error"]["message"]
    plain = make_router()  # no retrieval engines configured
    missing = plain.client.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
    assert missing.status_code == 404
    assert "rerank_url" in missing.json()["error"]["message"]
    names = {m["id"] for m in plain.client.get("/v1/models").json()["data"]}
    assert "gemma-embed" not in names


def test_a_failing_replica_fails_over_and_no_replica_is_a_clean_503(
    retrieval: RouterHandle, retrieval_engines: dict[str, Any]
) -> None:
    retrieval_engines["embed_a"].behavior = Behavior(fault="500")
    # Whichever replica comes first (ties go either way at random), every request is answered;
    # send until one met the failing replica first (four in a row could all miss it).
    for _ in range(30):
        answer = retrieval.client.post("/v1/embeddings", json={"input": "x"})
        assert answer.status_code == 200, answer.text
        if retrieval.metric("router_failovers_total", from_tier="embed", to_tier="embed"):
            break
    assert retrieval.metric("router_failovers_total", from_tier="embed", to_tier="embed")
    retrieval_engines["embed_b"].behavior = Behavior(fault="loading")
    down = retrieval.client.post("/v1/embeddings", json={"input": "x"})
    assert down.status_code == 503
    error = down.json()["error"]
    assert error["code"] == "upstream_unavailable" and error["type"] == "server_error"
    assert "Loading" in error["message"] or "loading" in error["message"]
    assert retrieval.metric("router_requests_total", tier="embed", status="503") == 1


def test_an_input_too_long_for_the_engine_is_the_clients_400(
    retrieval: RouterHandle, retrieval_engines: dict[str, Any]
) -> None:
    for name in ("embed_a", "embed_b"):
        retrieval_engines[name].behavior = Behavior(fault="too_large")
    answer = retrieval.client.post("/v1/embeddings", json={"input": "x" * 3000})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "context_length_exceeded"
    assert "too large" in answer.json()["error"]["message"]
    pool = retrieval.app.state.retrieval_pools["embed"]
    assert all(r.circuit.failures == 0 for r in pool.replicas)  # not the engine's fault


def test_models_health_openapi_and_auth(make_router: Callable[..., RouterHandle],
                                        retrieval_engines: dict[str, Any]) -> None:  # fmt: skip
    for name in ("embed_a", "embed_b", "rerank"):
        retrieval_engines[name].reset()
    handle = make_router(
        embed_url=retrieval_engines["embed_urls"][:1],
        rerank_url=(retrieval_engines["rerank_url"],),
        api_key="secret",
    )
    client = handle.client
    assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 401
    auth = {"authorization": "Bearer secret"}
    models = {m["id"]: m for m in client.get("/v1/models", headers=auth).json()["data"]}
    assert models["gemma-embed"]["task"] == "embedding"
    assert models["gemma-rerank"]["served_model"] == "bge-reranker-v2-m3"
    assert client.post("/v1/embeddings", json={"input": "x"}, headers=auth).status_code == 200
    health = client.get("/health").json()
    assert set(health["retrieval"]) == {"embed", "rerank"}
    assert health["retrieval"]["rerank"]["model"] == "bge-reranker-v2-m3"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/embeddings", "/v1/rerank", "/rerank"} <= set(paths)
    schema = paths["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["schema"]["required"] == ["input"]
