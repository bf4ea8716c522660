"""docker-compose.yml, checked without a Docker engine: the Compose schema plus our own rules."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from stackutil import ROOT, env_example
from vram.profiles import GPU_KEYS
from vram_facts import CHECKPOINTS

from stratum_tools.compose import compose_command, load_compose

SERVICES = {"vllm", "llama-cpp", "embed", "rerank", "router", "litellm", "open-webui",
            "prometheus", "grafana", "postgres", "litellm-keys"}  # fmt: skip
ONE_SHOT = {"litellm-keys"}  # runs once and exits: no healthcheck, no restart
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?([^}]*)\}")


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests/data/compose-spec/compose-spec.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_services_are_named_as_documented(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_service_has_a_healthcheck_and_restart_policy(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no"
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert svc.get("restart") in ("unless-stopped", "always"), f"{name} has no restart policy"


def _image_default(image: str) -> str:
    m = VAR.fullmatch(image)
    return m.group(3) if m else image


@pytest.mark.parametrize("name", sorted(SERVICES - {"router"} - ONE_SHOT))
def test_images_are_pinned_to_version_tags(compose: dict[str, Any], name: str) -> None:
    image = compose["services"][name]["image"]
    default = _image_default(image)
    repo, _, tag = default.rpartition(":")
    assert repo and tag, f"{name}: {default} has no tag"
    assert tag not in {
        "latest",
        "main",
        "main-latest",
        "main-stable",
        "lts",
        "server-cuda",
        "stable",
    }
    assert re.search(r"\d", tag), f"{name}: tag {tag} is not a version"
    env_value = env_example()[VAR.fullmatch(image).group(1)] if VAR.fullmatch(image) else default  # type: ignore[union-attr]
    assert env_value == default, f"{name}: .env.example and the compose default disagree"


def test_version_pins_respect_known_bad_releases(compose: dict[str, Any]) -> None:
    vllm = _image_default(compose["services"]["vllm"]["image"])
    major, minor = (int(x) for x in re.search(r":v(\d+)\.(\d+)", vllm).groups())  # type: ignore[union-attr]
    assert (major, minor) >= (0, 29) and (major, minor) != (0, 27)
    litellm = _image_default(compose["services"]["litellm"]["image"])
    version = tuple(int(x) for x in re.search(r":v(\d+)\.(\d+)\.(\d+)", litellm).groups())  # type: ignore[union-attr]
    assert version >= (1, 83, 10) and version not in {(1, 82, 7), (1, 82, 8)}


def test_router_is_built_here_and_does_not_wait_for_the_tiers(compose: dict[str, Any]) -> None:
    router = compose["services"]["router"]
    assert router["build"]["context"] == "./router"
    assert "depends_on" not in router
    assert (ROOT / "router/Dockerfile").exists()
    # Named after the package's version, in no one's Docker Hub namespace: a `compose pull`
    # cannot fetch a stranger's image under this name (library/ is reserved).
    version = re.search(r'^version = "([^"]+)"', (ROOT / "router/pyproject.toml").read_text(), re.M)
    assert version and router["image"] == f"stratum-router:{version.group(1)}"


def test_gpu_reservations(compose: dict[str, Any]) -> None:
    for name in ("vllm", "llama-cpp", "router"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia"
        assert "gpu" in devices[0]["capabilities"]
        assert not ("count" in devices[0] and "device_ids" in devices[0])


def test_start_order_vllm_before_llama_cpp(compose: dict[str, Any]) -> None:
    assert compose["services"]["llama-cpp"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert "depends_on" not in compose["services"]["vllm"]


def test_engine_flags(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["ipc"] == "host"
    cmd = vllm["command"]
    for flag in ("--served-model-name gemma-4-e4b", "--gpu-memory-utilization", "--max-model-len",
                 "--max-num-seqs", "--kv-cache-dtype", "--limit-mm-per-prompt", "${VLLM_EAGER_ARGS"):  # fmt: skip
        assert flag in cmd
    assert "gpu_cache_usage" not in cmd
    llama = compose["services"]["llama-cpp"]["command"]
    for flag in ("--alias gemma-4-26b-a4b", "--host 0.0.0.0", "--port 8080", "--metrics",
                 "--ctx-size", "--parallel", "--n-cpu-moe"):  # fmt: skip
        assert flag in llama
    assert "./docker/llama-cpp/models:/models:ro" in compose["services"]["llama-cpp"]["volumes"]
    assert compose["services"]["llama-cpp"]["healthcheck"]["start_period"].startswith(
        "${LLAMA_START_PERIOD"
    )


TEAM = {"open-webui", "litellm", "grafana"}
"""Published for the team's machines: each has its own login (OpenWebUI, Grafana) or keys
(LiteLLM). The router, the engines and Prometheus have none and stay on loopback."""


def test_no_host_port_twice_and_each_group_on_its_own_address(compose: dict[str, Any]) -> None:
    env = env_example()
    assert (env["TEAM_BIND_ADDRESS"], env["INTERNAL_BIND_ADDRESS"]) == ("0.0.0.0", "127.0.0.1")
    assert "BIND_ADDRESS" not in env and "WEBUI_BIND_ADDRESS" not in env
    seen: dict[str, str] = {}
    for name, svc in compose["services"].items():
        for spec in svc.get("ports", []):
            group = "TEAM_BIND_ADDRESS" if name in TEAM else "INTERNAL_BIND_ADDRESS"
            assert spec.startswith(f"${{{group}:-{env[group]}}}:"), f"{name}: {spec}"
            _, resolved, _ = VAR.sub(lambda m: env.get(m.group(1), m.group(3)), spec).rsplit(":", 2)
            assert resolved not in seen, (
                f"host port {resolved} used by {seen.get(resolved)} and {name}"
            )
            seen[resolved] = name
    assert set(seen.values()) == SERVICES - {"postgres", "litellm-keys"}  # never published
    assert seen["3000"] == "open-webui" and seen["3001"] == "grafana" and seen["9000"] == "router"


def test_what_the_team_reaches_asks_who_they_are(compose: dict[str, Any]) -> None:
    """Grafana cannot run on the test machines (the compose suite's image is a stand-in that
    only publishes its port), so its own login settings are checked here: the admin password
    from .env, no sign-up, no anonymous access, no login bypass."""
    services = compose["services"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert not any(k.startswith(("GF_AUTH_PROXY", "GF_AUTH_DISABLE_LOGIN")) for k in grafana)
    webui = services["open-webui"]["environment"]
    assert webui["WEBUI_AUTH"] == "${WEBUI_AUTH:-true}" and env_example()["WEBUI_AUTH"] == "true"
    litellm = services["litellm"]["environment"]
    assert litellm["LITELLM_MASTER_KEY"].startswith("${LITELLM_MASTER_KEY:?")


def test_every_variable_without_default_is_in_env_example() -> None:
    """The router's settings are documented in docs/API.md (.env.example points there)."""
    text = (ROOT / "docker-compose.yml").read_text()
    env = env_example()
    for m in VAR.finditer(text):
        name, op = m.group(1), m.group(2)
        if name in _router_settings() and name != "ROUTER_API_KEY":
            continue
        if op in (":-", "-"):
            assert name in env, (
                f"${{{name}}} has a default in compose but is not documented in .env.example"
            )
        else:
            assert name in env, f"${{{name}}} has no default and is missing from .env.example"


def test_env_example_has_no_secret_values() -> None:
    env = env_example()
    for key in (
        "LITELLM_MASTER_KEY",
        "WEBUI_SECRET_KEY",
        "GRAFANA_ADMIN_PASSWORD",
        "POSTGRES_PASSWORD",
        "OPENWEBUI_LITELLM_KEY",
        "ROUTER_API_KEY",
        "HF_TOKEN",
    ):
        assert env[key] == "", f"{key} must be empty in .env.example"


def _router_settings() -> list[str]:
    from adaptive_router.config import ENV_PREFIX, RoutingConfig
    from adaptive_router.service.config import ServiceConfig

    names = [*RoutingConfig.model_fields, *ServiceConfig.model_fields]
    return [ENV_PREFIX + name.upper() for name in names]


ROUTER_NOT_FROM_ENV = {"ROUTER_HOST", "ROUTER_PORT"}
"""Where the router listens inside its container (router_config.yaml): ROUTER_PORT in .env is
the port published on the host, which must not move the router inside."""


ROUTER_FROM_AN_ENGINE_SETTING = {"ROUTER_TIER_LOW_MAX_IN_FLIGHT": "VLLM_MAX_NUM_SEQS"}
"""Router settings whose stack default is an engine's own setting, not a router default: vLLM
does not report its slots, so the router sends it at most its --max-num-seqs (docs/API.md)."""


def test_every_router_setting_in_env_reaches_the_router(compose: dict[str, Any]) -> None:
    """Derived from the router's own settings, so a setting added later fails here until compose
    passes it. Each default lives in the router's settings: compose passes an empty value for an
    unset variable, which the router reads as unset."""
    environment = compose["services"]["router"]["environment"]
    missing = [
        v for v in _router_settings() if v not in environment and v not in ROUTER_NOT_FROM_ENV
    ]
    assert not missing, (
        "docker-compose.yml passes the router no value for "
        + ", ".join(missing)
        + "; add under services.router.environment:\n"
        + "\n".join(f"      {v}: ${{{v}:-}}" for v in missing)
    )
    for name, value in environment.items():
        if name == "ROUTER_API_KEY":
            assert value.startswith("${ROUTER_API_KEY:?"), "the router always needs its key"
        elif name.startswith("ROUTER_"):
            assert name in _router_settings(), f"{name} is no router setting"
            assert name not in ROUTER_NOT_FROM_ENV, f"{name} must not be passed"
            engine = ROUTER_FROM_AN_ENGINE_SETTING.get(name)
            expected = f"${{{name}:-${{{engine}:-" if engine else f"${{{name}:-}}"
            assert value.startswith(expected), f"{name}: {value} (the default lives in the router)"
            if not engine:
                assert value == expected, f"{name}: {value} (the default lives in the router)"
        else:
            assert name == "NVIDIA_DRIVER_CAPABILITIES", f"the router gets {name}"
    # No other service's secret: only ROUTER_* variables are interpolated here.
    interpolated = {m.group(1) for m in VAR.finditer(json.dumps(environment))}
    assert interpolated <= set(_router_settings()) | set(ROUTER_FROM_AN_ENGINE_SETTING.values())


def test_the_router_always_requires_its_key_in_the_stack(compose: dict[str, Any]) -> None:
    for service in ("router", "litellm"):
        value = compose["services"][service]["environment"]["ROUTER_API_KEY"]
        assert value.startswith("${ROUTER_API_KEY:?"), f"{service}: {value} falls back"
    assert "ROUTER_API_KEY" in re.findall(r"for key in ([A-Z_ ]+); do", (
        ROOT / "scripts/start.sh").read_text())[0].split()  # start.sh generates it  # fmt: skip


def test_env_example_sets_only_the_router_settings_a_profile_decides() -> None:
    """Every other router default lives in the router; .env.example only explains them."""
    profile_keys = set(GPU_KEYS)
    set_here = {k for k in env_example() if k.startswith("ROUTER_")}
    set_here -= {"ROUTER_API_KEY", "ROUTER_PORT"}  # a secret, and the port published here
    assert set_here <= profile_keys, set_here - profile_keys
    for name in set_here:
        assert name in _router_settings()


def test_router_config_file_restates_no_default_of_the_router() -> None:
    import yaml

    from adaptive_router.config import RoutingConfig
    from adaptive_router.service.config import ServiceConfig

    data = yaml.safe_load((ROOT / "docker/router/router_config.yaml").read_text())
    service = data.pop("service")
    for model, values in ((RoutingConfig, data), (ServiceConfig, service)):
        for key, value in values.items():
            default = model.model_fields[key].get_default(call_default_factory=True)
            default = list(default) if isinstance(default, tuple) else default
            assert value != default and [value] != default, (
                f"router_config.yaml restates {key}: {value!r}, the router's own default"
            )


def test_no_literal_secrets_in_config_files() -> None:
    pattern = re.compile(
        r"(sk-[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{20,}|(password|secret|master_key|api_key)\s*[:=]\s*[\"']?[A-Za-z0-9+/]{12,})",
        re.I,
    )
    for path in ["docker-compose.yml", ".env.example", "docker/litellm/config.yaml", "docker/router/router_config.yaml",
                 "docker/prometheus/prometheus.yml", "grafana/provisioning/datasources/prometheus.yaml"]:  # fmt: skip
        for line in (ROOT / path).read_text().splitlines():
            assert not pattern.search(line), f"{path}: {line.strip()}"


def test_openwebui_wiring(compose: dict[str, Any]) -> None:
    env = compose["services"]["open-webui"]["environment"]
    assert env["OPENAI_API_BASE_URLS"] == "http://litellm:4000/v1"
    assert env["ENABLE_OLLAMA_API"] == "false"
    assert env["DEFAULT_MODELS"] == "gemma4-fast"
    assert env["TASK_MODEL_EXTERNAL"] == "gemma4-tasks"  # its background tasks stay off the 26B
    assert "ENABLE_PERSISTENT_CONFIG" in env
    assert "open-webui-data:/app/backend/data" in compose["services"]["open-webui"]["volumes"]


def test_litellm_exposes_both_models_through_the_router() -> None:
    import yaml

    cfg = yaml.safe_load((ROOT / "docker/litellm/config.yaml").read_text())
    models = {m["model_name"]: m["litellm_params"] for m in cfg["model_list"]}
    assert set(models) == {"gemma4-fast", "gemma4-smart", "gemma4-tasks", "gemma-embed",
                           "gemma-rerank"}  # fmt: skip
    # Retrieval: openai/ posts <api_base>/embeddings, hosted_vllm/ posts <api_base>/rerank
    # (LiteLLM 1.108.7); the names after the prefix are the router's model names.
    assert models["gemma-embed"]["model"] == "openai/gemma-embed"
    assert models["gemma-rerank"]["model"] == "hosted_vllm/gemma-rerank"
    assert all(params["api_base"] == "http://router:9000/v1" for params in models.values())
    assert models["gemma4-fast"]["model"] == "openai/gemma4-fast"
    assert models["gemma4-smart"]["model"] == "openai/gemma4-smart"
    # Background tasks pin tier_low (a model name the router serves without routing).
    assert models["gemma4-tasks"]["model"] == "openai/tier_low"
    from adaptive_router.service import load_service_config

    service, _ = load_service_config(ROOT / "docker/router/router_config.yaml", environ={})
    assert "tier_low" in service.tier_low_models
    assert "gemma-embed" in service.embed_models and "gemma-rerank" in service.rerank_models
    assert "prometheus" in cfg["litellm_settings"]["callbacks"]
    assert cfg["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"


def test_router_config_file_loads_with_the_router_itself() -> None:
    from adaptive_router.service import load_service_config

    service, routing = load_service_config(ROOT / "docker/router/router_config.yaml", environ={})
    assert service.tier_low_url == ("http://vllm:8000/v1",)
    assert service.tier_high_url == ("http://llama-cpp:8080/v1",)
    assert service.routed_models == ("gemma4-fast",)
    assert "gemma4-smart" in service.tier_high_models
    assert routing.tier_low_context_tokens == 8192


def test_env_example_models_are_the_real_ones() -> None:
    env = env_example()
    assert env["LLAMA_MODEL_REPO"] == "google/gemma-4-26B-A4B-it-qat-q4_0-gguf"
    assert env["LLAMA_MODEL_FILE"] == "gemma-4-26B_q4_0-it.gguf"
    assert env["LLAMA_MMPROJ_FILE"] == "gemma-4-26B-it-mmproj.gguf"  # the same repository's
    # An E4B build the planner knows (its parts and sizes, with sources).
    assert "gemma-4-E4B" in env["VLLM_MODEL"]
    assert env["VLLM_MODEL"] in CHECKPOINTS
    assert not re.search(r"\b27b\b", (ROOT / ".env.example").read_text().lower())


def test_litellm_keeps_its_keys_in_postgres_and_openwebui_has_its_own_key(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    postgres = services["postgres"]
    assert "ports" not in postgres  # only LiteLLM, on the compose network, reaches it
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # By tag, and digest where one could be read (docs/VERSIONS.md); start.sh checks the pull.
    assert re.fullmatch(
        r"postgres:\d+\.\d+-alpine(@sha256:[0-9a-f]{64})?", _image_default(postgres["image"])
    )
    litellm = services["litellm"]
    assert litellm["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = litellm["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql://litellm:${POSTGRES_PASSWORD:?") and url.endswith(
        "@postgres:5432/litellm"
    )
    keys = services["litellm-keys"]
    assert keys["depends_on"]["litellm"]["condition"] == "service_healthy"
    assert keys["entrypoint"][:2] == ["python3", "/stratum/team_keys.py"]
    assert keys["command"][:3] == ["ensure", "--name", "open-webui"]
    assert "./scripts/team_keys.py:/stratum/team_keys.py:ro" in keys["volumes"]
    webui = services["open-webui"]
    assert webui["depends_on"]["litellm-keys"]["condition"] == "service_completed_successfully"
    assert webui["environment"]["OPENAI_API_KEYS"].startswith("${OPENWEBUI_LITELLM_KEY:?")
    assert "LITELLM_MASTER_KEY" not in str(webui["environment"])


def test_cpu_profile_override_runs_every_service_without_a_gpu() -> None:
    """docker-compose.cpu.yml merged onto docker-compose.yml (Compose's merge rules: `!reset`
    removes the GPU reservations, `command` is replaced): a valid file, no GPU anywhere, both
    tiers on llama.cpp's pinned CPU image, the router's GPU rules off."""
    merged = load_compose("docker-compose.cpu.yml")
    schema = json.loads((ROOT / "tests/data/compose-spec/compose-spec.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(merged)
    assert set(merged["services"]) == SERVICES
    text = json.dumps(merged)
    assert "nvidia" not in text and "Reset" not in text
    for name in ("vllm", "llama-cpp"):
        svc = merged["services"][name]
        image = _image_default(svc["image"])
        assert re.fullmatch(
            r"ghcr\.io/ggml-org/llama\.cpp:server-b\d+(@sha256:[0-9a-f]{64})?", image
        )
        assert "--metrics" in svc["command"] and "--n-gpu-layers" not in svc["command"]
        assert "./docker/llama-cpp/models:/models:ro" in svc["volumes"]
    assert "--port 8000" in merged["services"]["vllm"]["command"]  # where the router looks
    for name, flag in (("embed", "--embedding --pooling mean"), ("rerank", "--reranking")):
        svc = merged["services"][name]  # the same CPU image as on a GPU machine
        assert _image_default(svc["image"]) == _image_default(merged["services"]["vllm"]["image"])
        assert flag in svc["command"] and "--port 8080" in svc["command"]
    router = merged["services"]["router"]["environment"]
    assert router["ROUTER_GPU_MONITOR"] == "false"
    assert router["ROUTER_TIER_LOW_MODEL"] == "gemma-4-e2b"
    assert "gemma-4-e2b" in merged["services"]["vllm"]["command"]
    override = (ROOT / "docker-compose.cpu.yml").read_text()
    assert "deploy: !reset {}" in override


def test_cpu_image_is_the_same_llama_cpp_build_as_the_cuda_image(compose: dict[str, Any]) -> None:
    cuda = _image_default(compose["services"]["llama-cpp"]["image"])
    cpu = _image_default(load_compose("docker-compose.cpu.yml")["services"]["llama-cpp"]["image"])
    build = re.search(r"-b(\d+)@", cuda)
    assert build and re.fullmatch(rf".*:server-b{build.group(1)}(@sha256:[0-9a-f]{{64}})?", cpu)


def test_openwebui_embeds_with_embeddinggemmas_prompts(compose: dict[str, Any]) -> None:
    """EmbeddingGemma's model card prompts for retrieval, prepended by OpenWebUI itself: it does
    so only while RAG_EMBEDDING_PREFIX_FIELD_NAME is unset (retrieval/utils.py, 0.12.4)."""
    env = compose["services"]["open-webui"]["environment"]
    assert env["RAG_EMBEDDING_QUERY_PREFIX"] == "task: search result | query: "
    assert env["RAG_EMBEDDING_CONTENT_PREFIX"] == "title: none | text: "
    assert "RAG_EMBEDDING_PREFIX_FIELD_NAME" not in env
    assert "embeddinggemma" in compose["services"]["embed"]["command"]


def test_retrieval_engines_are_wired_to_the_router_litellm_and_openwebui(
    compose: dict[str, Any],
) -> None:
    """The router reaches embed and rerank by service name; their served names are the router's
    defaults; OpenWebUI embeds and reranks through LiteLLM with its own key, and loads no model
    of its own (OpenWebUI 0.12.4: open_webui/config.py, routers/retrieval.py)."""
    from adaptive_router.service import ServiceConfig

    services = compose["services"]
    from adaptive_router.service import load_service_config

    service, _ = load_service_config(ROOT / "docker/router/router_config.yaml", environ={})
    assert service.embed_url == ("http://embed:8080/v1",)
    assert service.rerank_url == ("http://rerank:8080/v1",)
    defaults = ServiceConfig()
    assert f"--alias {defaults.embed_model}" in services["embed"]["command"]
    assert f"--alias {defaults.rerank_model}" in services["rerank"]["command"]
    for name in ("embed", "rerank"):
        assert "deploy" not in services[name], f"{name} takes no GPU"
        assert "--ubatch-size 2048" in services[name]["command"]
    webui = services["open-webui"]["environment"]
    assert webui["RAG_EMBEDDING_ENGINE"] == "openai"
    assert webui["RAG_OPENAI_API_BASE_URL"] == "http://litellm:4000/v1"
    assert webui["RAG_EMBEDDING_MODEL"] in defaults.embed_models
    assert webui["RAG_RERANKING_ENGINE"] == "external"
    assert webui["RAG_RERANKING_MODEL"] in defaults.rerank_models
    assert webui["RAG_EXTERNAL_RERANKER_URL"] == "http://litellm:4000/v1/rerank"
    assert webui["ENABLE_RAG_HYBRID_SEARCH"] == "true"  # reranking runs only in hybrid search
    assert webui["OFFLINE_MODE"] == "true"
    for key in ("RAG_OPENAI_API_KEY", "RAG_EXTERNAL_RERANKER_API_KEY"):
        assert "OPENWEBUI_LITELLM_KEY" in webui[key]


def test_retrieval_gpu_override_is_the_cpu_command_on_tier_highs_card(
    compose: dict[str, Any],
) -> None:
    """docker-compose.retrieval-gpu.yml (RETRIEVAL_DEVICE=gpu): a valid merge; each retrieval
    engine gets tier_high's CUDA image and card, and compose's command plus --n-gpu-layers 99,
    nothing else."""

    merged = load_compose("docker-compose.retrieval-gpu.yml")
    schema = json.loads((ROOT / "tests/data/compose-spec/compose-spec.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(merged)
    tier_high = merged["services"]["llama-cpp"]
    for name in ("embed", "rerank"):
        svc = merged["services"][name]
        assert svc["image"] == tier_high["image"]
        [device] = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["device_ids"] == tier_high["deploy"]["resources"]["reservations"][
            "devices"][0]["device_ids"]  # fmt: skip
        base = compose_command(name, {})
        gpu = compose_command(name, {}, ("docker-compose.retrieval-gpu.yml",))
        at = gpu.index("--n-gpu-layers")
        assert gpu[at + 1] == "99" and gpu[:at] + gpu[at + 2 :] == base
    # The other services are untouched.
    plain = load_compose()
    assert {k: v for k, v in merged["services"].items() if k not in ("embed", "rerank")} == {
        k: v for k, v in plain["services"].items() if k not in ("embed", "rerank")
    }
