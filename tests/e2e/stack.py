"""The end-to-end stack on loopback: where each real part is, and its configuration rendered from
the repository's own files (compose environment, router, LiteLLM and Prometheus configs)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from stackutil import require, require_tool

from adaptive_router.testing.processes import Process, free_port
from stratum_tools.compose import compose_argv, substitute

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

ROUTER_API_KEY = "sk-e2e-router"
LITELLM_MASTER_KEY = "sk-e2e-litellm-master"
OPENWEBUI_LITELLM_KEY = "sk-e2e-open-webui"  # team keys: tests/e2e/litellm_keys.py
WEBUI_SECRET_KEY = "e2e-webui-secret"
TIER_LOW_ALIAS = "gemma-4-e4b"  # the served model names the router config expects
TIER_HIGH_ALIAS = "gemma-4-26b-a4b"


def versions() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        m = re.match(r"^([A-Z_]+)=(\S+)", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stratum"
    return Path(os.environ.get("STRATUM_CACHE_DIR", default))


DEPS_HINT = "run: bash scripts/e2e-deps.sh"


def llama_server_bin() -> Path:
    build = versions()["LLAMA_CPP_BUILD"]
    path = cache_dir() / f"llama.cpp-b{build}" / "bin" / "llama-server"
    return require(path, f"llama-server (llama.cpp b{build})", DEPS_HINT)


def litellm_bin() -> Path:
    v = versions()["LITELLM_VERSION"]
    return require(cache_dir() / f"venv-litellm-{v}" / "bin" / "litellm", f"LiteLLM {v}", DEPS_HINT)


def open_webui_bin() -> Path:
    v = versions()["OPEN_WEBUI_VERSION"]
    path = cache_dir() / f"venv-open-webui-{v}" / "bin" / "open-webui"
    return require(path, f"OpenWebUI {v}", DEPS_HINT)


def system_tool(name: str) -> Path:
    return Path(require_tool(name))


def router_bin() -> Path:
    path = Path(sys.executable).parent / "adaptive-router"
    return require(path, "adaptive-router", "run: bash scripts/test.sh (installs the package)")


# -- compose ---------------------------------------------------------------------------------------


def compose_environment(service: str, values: Mapping[str, str]) -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"][service].get("environment", {})
    return {k: substitute(str(v), values) for k, v in env.items()}


# -- each part -------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    process: Process
    url: str  # root URL, no /v1


def llama_server(
    name: str,
    model: Path,
    alias: str,
    log_dir: Path,
    *,
    parallel: int = 4,
    ctx: int = 16384,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """A CPU llama-server with the compose file's flags that make sense without a GPU."""
    port = free_port()
    argv = [
        str(llama_server_bin()),
        "--model", str(model),
        "--alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--metrics",
        "--ctx-size", str(ctx),
        "--parallel", str(parallel),
        "--jinja",
        "--threads", "1",
        "--threads-http", "64",
        *extra_args,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Endpoint(Process(name, argv, log_dir, ready_url=url + "/health", env=env or {}), url)


def retrieval_server(
    service: str, model: Path, log_dir: Path, *, name: str | None = None
) -> Endpoint:
    """The compose file's ``embed`` or ``rerank`` service, its command word for word, with the
    model, address and thread count swapped for loopback ones."""
    port = free_port()
    swap = {"--model": str(model), "--host": "127.0.0.1", "--port": str(port), "--threads": "1"}
    argv = [str(llama_server_bin()), *compose_argv(service, {}, swap)]
    url = f"http://127.0.0.1:{port}"
    return Endpoint(Process(name or service, argv, log_dir, ready_url=url + "/health"), url)


def router_config(
    path: Path,
    tier_low: str,
    tier_high: str,
    port: int,
    retrieval: Mapping[str, str | Sequence[str]] | None = None,
) -> Path:
    """docker/router/router_config.yaml with the tiers (and the retrieval engines, as
    ``{"embed": url, "rerank": url}``, root URLs) and the listen address on loopback."""
    config: dict[str, Any] = yaml.safe_load(
        (ROOT / "docker" / "router" / "router_config.yaml").read_text()
    )
    service = config.setdefault("service", {})
    service.update(
        tier_low_url=tier_low + "/v1", tier_high_url=tier_high + "/v1", host="127.0.0.1", port=port
    )
    for kind in ("embed", "rerank"):  # the compose names: here only the engines given below
        service.pop(f"{kind}_url", None)
    for kind, urls in (retrieval or {}).items():
        listed = [urls] if isinstance(urls, str) else list(urls)
        service[f"{kind}_url"] = [u + "/v1" for u in listed]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def router(
    config_dir: Path,
    tier_low: str,
    tier_high: str,
    log_dir: Path,
    *,
    name: str = "router",
    env: Mapping[str, str] | None = None,
    retrieval: Mapping[str, str | Sequence[str]] | None = None,
) -> Endpoint:
    port = free_port()
    config = router_config(config_dir / f"{name}_config.yaml", tier_low, tier_high, port, retrieval)
    argv = [str(router_bin()), "serve", "--config", str(config)]
    url = f"http://127.0.0.1:{port}"
    environ = {"ROUTER_API_KEY": ROUTER_API_KEY, **(env or {})}
    return Endpoint(Process(name, argv, log_dir, ready_url=url + "/livez", env=environ), url)


def litellm(config_dir: Path, router_url: str, log_dir: Path) -> Endpoint:
    """LiteLLM with docker/litellm/config.yaml, the router's address swapped for loopback, and
    the team keys its database would hold answered by its custom_auth hook (litellm_keys.py)."""
    text = (ROOT / "docker" / "litellm" / "config.yaml").read_text()
    assert "http://router:9000/v1" in text
    rendered: dict[str, Any] = yaml.safe_load(text.replace("http://router:9000/v1",
                                                            router_url + "/v1"))  # fmt: skip
    rendered["general_settings"]["custom_auth"] = "litellm_keys.user_api_key_auth"
    (config_dir / "litellm_keys.py").write_text((HERE / "litellm_keys.py").read_text())
    config = config_dir / "litellm_config.yaml"
    config.write_text(yaml.safe_dump(rendered, sort_keys=False))
    port = free_port()
    env = compose_environment(
        "litellm",
        {
            "LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
            "ROUTER_API_KEY": ROUTER_API_KEY,
            "POSTGRES_PASSWORD": "unused",
        },
    )
    # No database here: LiteLLM reaches PostgreSQL through Prisma, whose engine binaries it
    # downloads from binaries.prisma.sh at first start, out of reach on these machines. Without
    # DATABASE_URL it has no virtual keys of its own: litellm_keys.py answers for them.
    env.pop("DATABASE_URL")
    # The model price map is bundled; without this LiteLLM tries GitHub at start-up.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    argv = [
        str(litellm_bin()),
        "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port),
        "--num_workers", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    process = Process(
        "litellm", argv, log_dir, ready_url=url + "/health/liveliness", env=env, start_timeout=120
    )
    return Endpoint(process, url)


def open_webui(
    data_dir: Path, litellm_url: str, log_dir: Path, hub_url: str | None = None
) -> Endpoint:
    """OpenWebUI with the compose file's environment (its document chat on the stack's
    retrieval engines through LiteLLM, OFFLINE_MODE), without login, towards LiteLLM.
    ``hub_url``: where the Hugging Face Hub would be (HF_ENDPOINT), to see that nothing asks."""
    port = free_port()
    env = compose_environment(
        "open-webui",
        {
            # OpenWebUI's own key, marked to forward its users (tests/e2e/litellm_keys.py).
            "OPENWEBUI_LITELLM_KEY": OPENWEBUI_LITELLM_KEY,
            "WEBUI_SECRET_KEY": WEBUI_SECRET_KEY,
            "WEBUI_AUTH": "False",
        },
    )
    for key in ("OPENAI_API_BASE_URLS", "RAG_OPENAI_API_BASE_URL", "RAG_EXTERNAL_RERANKER_URL"):
        env[key] = env[key].replace("http://litellm:4000", litellm_url)
    env.update(
        DATA_DIR=str(data_dir),
        ENABLE_VERSION_UPDATE_CHECK="false",
        PORT=str(port),
        # OpenWebUI's background tasks (title, tags, follow-ups...) stay at their defaults: on.
        # Its RAG settings (embeddings, hybrid search, the external reranker) are compose's.
    )
    if hub_url is not None:
        env["HF_ENDPOINT"] = hub_url
    argv = [str(open_webui_bin()), "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    process = Process(
        "open-webui", argv, log_dir, ready_url=url + "/health", env=env, start_timeout=300
    )
    return Endpoint(process, url)


def prometheus_config(path: Path, targets: Mapping[str, str], scrape_interval: str) -> Path:
    """docker/prometheus/prometheus.yml with each compose target swapped for a loopback one."""
    config: dict[str, Any] = yaml.safe_load(
        (ROOT / "docker" / "prometheus" / "prometheus.yml").read_text()
    )
    config["global"]["scrape_interval"] = scrape_interval
    config["global"]["evaluation_interval"] = scrape_interval
    config["rule_files"] = [str(ROOT / "docker" / "prometheus" / r) for r in config["rule_files"]]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [targets[t] for t in static["targets"]]
        if "authorization" in job:  # the compose secret, as Compose writes it in the container
            key = path.parent / f"{job['job_name']}-credentials"
            key.write_text(LITELLM_MASTER_KEY)
            job["authorization"]["credentials_file"] = str(key)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus(
    config_dir: Path, targets: Mapping[str, str], log_dir: Path, port: int, scrape_interval: str
) -> Endpoint:
    config = prometheus_config(config_dir / "prometheus.yml", targets, scrape_interval)
    argv = [
        str(system_tool("prometheus")),
        f"--config.file={config}",
        f"--storage.tsdb.path={config_dir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    return Endpoint(Process("prometheus", argv, log_dir, ready_url=url + "/-/ready"), url)
