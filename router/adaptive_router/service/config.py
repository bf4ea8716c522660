"""Configuration of the HTTP service (the ``service:`` section of ``router_config.yaml``).

Same rules as the decision settings: typed, documented, unknown keys are errors that name the
key and the file, ``ROUTER_<FIELD>`` environment variables override the file. With only the
two tier URLs everything else has a working default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import (
    SERVICE_SECTION,
    CommaList,
    ConfigError,
    RoutingConfig,
    describe_error,
    dump_fields,
    env_overrides,
    load_config,
    read_yaml,
)

MOVED_TO_ROUTING = frozenset({"allow_degraded"})
"""Keys that once lived in the ``service:`` section and are now decision settings: still read
there, so older files keep working."""


class ServiceConfig(BaseModel):
    """How the router listens, where the tiers are, and how it protects them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier_low_url: CommaList[str] = Field(
        ("http://127.0.0.1:8000/v1",),
        description="OpenAI-compatible base URL of tier_low (vLLM), ending in /v1; several "
        "(a list, or comma-separated) for several replicas. A host name that resolves to "
        "several addresses (a Kubernetes headless Service) is one replica per address.",
    )
    tier_high_url: CommaList[str] = Field(
        ("http://127.0.0.1:8080/v1",),
        description="The same for tier_high (llama-server).",
    )
    tier_low_model: str = Field(
        "gemma-4-e4b", description="Model name tier_low serves (vLLM --served-model-name)."
    )
    tier_high_model: str = Field(
        "gemma-4-26b-a4b", description="Model name tier_high serves (llama-server --alias)."
    )
    tier_low_api_key: str | None = Field(
        None, description="Bearer token the router sends to tier_low (vLLM --api-key), if any."
    )
    tier_high_api_key: str | None = Field(
        None, description="Bearer token the router sends to tier_high (llama-server --api-key)."
    )
    routed_models: CommaList[str] = Field(
        ("gemma4-fast",), description="Model names the router decides for."
    )
    tier_high_models: CommaList[str] = Field(
        ("gemma4-smart", "tier_high"),
        description="Model names that always go to tier_high.",
    )
    tier_low_models: CommaList[str] = Field(
        ("tier_low",), description="Model names that always go to tier_low."
    )
    default_model: str | None = Field(
        "gemma4-fast",
        description="Model used when a request names none (curl convenience); empty = the "
        "model field is required.",
    )
    embed_url: CommaList[str] = Field(
        (),
        description="OpenAI-compatible base URL of the embedding engine (llama-server "
        "--embedding), ending in /v1; several for several replicas. Empty: /v1/embeddings "
        "answers 404.",
    )
    rerank_url: CommaList[str] = Field(
        (),
        description="Base URL of the reranking engine (llama-server --reranking), ending in "
        "/v1; several for several replicas. Empty: /v1/rerank answers 404.",
    )
    embed_model: str = Field(
        "embeddinggemma-300m",
        description="Model name the embedding engine serves (llama-server --alias).",
    )
    rerank_model: str = Field(
        "bge-reranker-v2-m3",
        description="Model name the reranking engine serves (llama-server --alias).",
    )
    embed_models: CommaList[str] = Field(
        ("gemma-embed",), description="Model names clients use for embeddings."
    )
    rerank_models: CommaList[str] = Field(
        ("gemma-rerank",), description="Model names clients use for reranking."
    )
    embed_api_key: str | None = Field(
        None, description="Bearer token the router sends to the embedding engine, if any."
    )
    rerank_api_key: str | None = Field(
        None, description="Bearer token the router sends to the reranking engine, if any."
    )
    max_embedding_inputs: int = Field(
        512, ge=1, description="Most texts one /v1/embeddings request may carry (400 above)."
    )
    max_rerank_documents: int = Field(
        512, ge=1, description="Most documents one /v1/rerank request may carry (400 above)."
    )
    host: str = Field(
        "127.0.0.1",
        description="Address to listen on: this machine only unless set (the router image sets "
        "0.0.0.0, behind its API key); 0.0.0.0 for every interface.",
    )
    port: int = Field(9000, ge=1, le=65535, description="Port to listen on.")
    api_key: str | None = Field(
        None,
        description="When set, /v1/* needs 'Authorization: Bearer <api_key>'; /health and "
        "/metrics stay open. Usually set through ROUTER_API_KEY.",
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    connect_timeout_s: float = Field(
        2.0, gt=0, description="Time to open a connection to a tier before failing over."
    )
    first_byte_timeout_s: float = Field(
        180.0,
        gt=0,
        description="Time a tier may take to answer (first byte; long prompts on the 26B need "
        "long prefills). Past it the request fails over.",
    )
    read_timeout_s: float = Field(
        120.0, gt=0, description="Longest silence between two chunks of a stream."
    )
    max_connections_per_tier: int = Field(
        512, ge=1, description="Connection pool size towards each tier."
    )
    circuit_failure_threshold: int = Field(
        3, ge=1, description="Consecutive failures that open a tier's circuit."
    )
    circuit_cooldown_s: float = Field(
        5.0,
        gt=0,
        description="How long an open circuit keeps traffic away before one probe request.",
    )
    health_interval_s: float = Field(
        2.0, gt=0, description="How often each tier's /health is probed."
    )
    health_timeout_s: float = Field(1.0, gt=0, description="Timeout of one health probe.")
    sla_probe_interval_s: float = Field(
        5.0,
        ge=0,
        description="While tier_high's time-to-first-token average is over the SLA (so routed "
        "work avoids it), a one-token streamed request measures it this often and feeds the "
        "average, which lets it back in once it is fast again. 0 disables.",
    )
    load_poll_interval_s: float = Field(
        2.0, gt=0, description="How often each tier's /metrics is read for queue depth."
    )
    tier_low_max_waiting: int = Field(
        16,
        ge=0,
        description="tier_low is saturated when vLLM reports this many waiting requests "
        "(vllm:num_requests_waiting). 0 disables.",
    )
    tier_high_max_deferred: int = Field(
        4,
        ge=0,
        description="tier_high is saturated when llama-server reports this many deferred "
        "requests (llamacpp:requests_deferred). 0 disables.",
    )
    tier_low_max_in_flight: int = Field(
        256,
        ge=0,
        description="Most requests the router sends one tier_low replica at once; more wait in "
        "the router's fair line. vLLM does not report its slots: set this to its "
        "--max-num-seqs (compose passes VLLM_MAX_NUM_SEQS). 0: no limit.",
    )
    tier_high_max_in_flight: int = Field(
        32,
        ge=0,
        description="The same for tier_high. llama-server reports its slots (--parallel, in "
        "GET /props total_slots) and the router sends no more than those; this caps them "
        "further. 0: the engine's slots alone.",
    )
    max_requests_per_person: int = Field(
        8,
        ge=0,
        description="Requests one person (a LiteLLM key, an OpenWebUI user, a 'user' field, a "
        "client address) may have waiting and running on one tier at once; beyond it their "
        "new requests get a 429 with Retry-After, nobody else's do. 0: no cap.",
    )
    routed_wait_s: float | None = Field(
        None,
        ge=0,
        description="How long a routed request (gemma4-fast) waits for a slot on the tier the "
        "rules chose; past it (or when the line says it would wait longer) the other tier "
        "answers, with x-router-degraded: true and x-router-reason: busy. Empty: the latency "
        "SLA (latency_sla_ms), the wait a routed answer's time to first token can afford.",
    )
    queue_timeout_s: float = Field(
        60.0,
        gt=0,
        description="How long a request that named a tier (gemma4-smart), that only one tier "
        "can take, or that is a chat UI's background task waits for a slot before a 429 with "
        "Retry-After. Keep it under the gateways' timeouts (LiteLLM's 600 s in "
        "docker/litellm/config.yaml; OpenWebUI sets none by default).",
    )
    usage_half_life_s: float = Field(
        60.0,
        gt=0,
        description="Half-life of a person's recent use of a tier (slot-seconds) in the fair "
        "order: a free slot goes to the waiting request of the person using the tier least.",
    )
    priority_tiers: CommaList[Literal["tier_low", "tier_high"]] = Field(
        (),
        description="Tiers whose engines schedule by the request's 'priority' field (vLLM "
        "started with --scheduling-policy priority): the router sets it from the request's "
        "class (0 interactive, 1 batch, 2 background), so the engine serves people first too.",
    )
    regenerate_window_s: float = Field(
        600.0,
        ge=0,
        description="The same person sending the same messages again within this many seconds "
        "of their answer (a chat UI's regenerate, the same question again) goes to tier_high, "
        "reason 'regenerate', unless it named a tier, has images for another tier, or tier_high "
        "is down. 0 disables.",
    )
    metrics_people: int = Field(
        50,
        ge=0,
        description="People with their own label in the per-person metrics (the first seen "
        "since the router started); the rest are counted as 'other'.",
    )
    affinity: bool = Field(
        True,
        description="Send the turns of one conversation to the same replica of a tier (its "
        "prefix cache), unless that replica is down or carries more than affinity_load_factor "
        "times the average load; off: the least-loaded replica.",
    )
    affinity_load_factor: float = Field(
        1.5,
        ge=1.0,
        description="Bounded-load factor of cache affinity: a replica above this multiple of "
        "the tier's average outstanding requests passes the conversation to the next one. "
        "Lower spreads load more evenly, higher keeps more conversations on their cache.",
    )
    affinity_spare: int = Field(
        4,
        ge=0,
        description="A replica with fewer outstanding requests than this keeps its "
        "conversations whatever the tier's average (an engine serves several requests at "
        "once, and moving a conversation costs its prefix cache).",
    )
    resolve_interval_s: float = Field(
        30.0,
        ge=0,
        description="How often tier URLs with a host name are resolved again, to follow "
        "replicas that come and go (one per address). 0: resolved once, at start.",
    )
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On shutdown, how long streams in flight may finish."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")

    @field_validator("tier_low_url", "tier_high_url")
    @classmethod
    def _http_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one URL")
        return _check_urls(value)

    @field_validator("embed_url", "rerank_url")
    @classmethod
    def _optional_http_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_urls(value)

    def models(self) -> list[str]:
        """Every client-facing model name, routed first."""
        seen: dict[str, None] = {}
        for name in (*self.routed_models, *self.tier_high_models, *self.tier_low_models):
            seen.setdefault(name, None)
        return list(seen)


def _check_urls(value: tuple[str, ...]) -> tuple[str, ...]:
    for url in value:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} must start with http:// or https://")
    urls = tuple(url.rstrip("/") for url in value)
    if len(set(urls)) != len(urls):
        raise ValueError("lists the same URL twice")
    return urls


def load_service_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    service_overrides: Mapping[str, Any] | None = None,
    routing_overrides: Mapping[str, Any] | None = None,
) -> tuple[ServiceConfig, RoutingConfig]:
    """Both configurations, each as defaults < file < ``ROUTER_*`` environment < overrides."""
    values: dict[str, Any] = {}
    sources: list[str] = []
    moved: dict[str, Any] = {}
    if path is not None:
        section = read_yaml(path).get(SERVICE_SECTION) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: '{SERVICE_SECTION}' must be a mapping")
        moved = {k: section.pop(k) for k in MOVED_TO_ROUTING & section.keys()}
        values.update(section)
        sources.append(f"{path} ({SERVICE_SECTION}:)")
    env = env_overrides(environ, ServiceConfig.model_fields)
    if env:
        values.update(env)
        sources.append("environment")
    values.update({k: v for k, v in (service_overrides or {}).items() if v is not None})
    try:
        service = ServiceConfig(**values)
    except ValidationError as exc:
        source = " + ".join(sources) or "<arguments>"
        raise ConfigError(describe_error(exc, source, ServiceConfig.model_fields)) from None
    env_routing = env_overrides(environ)  # the environment wins over a moved key's file value
    moved = {k: v for k, v in moved.items() if k not in env_routing}
    routing = load_config(path, environ=environ, **{**moved, **dict(routing_overrides or {})})
    return service, routing


def dump_service_config() -> str:
    """The ``service:`` section: every field at its default, each after its description."""
    lines = ["# HTTP service settings (router_config.yaml section 'service:').", "service:"]
    return "\n".join(lines + dump_fields(ServiceConfig, indent="  "))
