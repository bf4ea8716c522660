"""The stack's parts agree on how the tiers are shared (docs/API.md, "Sharing the tiers"): who is
asking reaches the router, the class reaches vLLM, waits end before any gateway gives up, and a
budget has something to count. Checked on the files, without an engine; tests/e2e/
test_e2e_fairness.py runs them."""

from __future__ import annotations

from typing import Any

import yaml
from stackutil import ROOT

from adaptive_router.service.config import ServiceConfig, load_service_config
from stratum_tools.compose import compose_command, load_compose

LITELLM = yaml.safe_load((ROOT / "docker/litellm/config.yaml").read_text())
K8S = ROOT / "deploy/kubernetes/base"
CHAT_ALIASES = ("gemma4-fast", "gemma4-smart", "gemma4-tasks")


def k8s_container(path: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all((K8S / path).read_text()):
        if doc and doc.get("kind") == "Deployment":
            return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    raise AssertionError(f"no Deployment in {path}")


def test_litellm_tells_the_router_whose_key_and_passes_openwebui_s_users_on() -> None:
    assert LITELLM["litellm_settings"]["add_user_information_to_llm_headers"] is True
    assert LITELLM["general_settings"]["forward_client_headers_to_llm_api"] is True
    compose = load_compose()["services"]
    assert compose["open-webui"]["environment"]["ENABLE_FORWARD_USER_INFO_HEADERS"] == "true"
    assert "--forwards-users" in compose["litellm-keys"]["command"]
    init = k8s_container("open-webui.yaml")["initContainers"]
    assert any("--forwards-users" in c.get("args", []) for c in init)


def test_vllm_schedules_by_priority_exactly_when_the_router_sends_one() -> None:
    service, _ = load_service_config(ROOT / "docker/router/router_config.yaml", environ={})
    assert "tier_low" in service.priority_tiers
    assert "--scheduling-policy priority" in " ".join(compose_command("vllm", {}))
    assert "--scheduling-policy priority" in (K8S / "vllm.yaml").read_text()


def test_a_request_stops_waiting_before_a_gateway_gives_up_on_it() -> None:
    service, _ = load_service_config(ROOT / "docker/router/router_config.yaml", environ={})
    assert service.queue_timeout_s == ServiceConfig().queue_timeout_s
    for model in LITELLM["model_list"]:
        if model["model_name"] in CHAT_ALIASES:
            params = model["litellm_params"]
            # The wait, then the answer: the longest wait must leave most of the timeout.
            assert service.queue_timeout_s <= params["timeout"] / 2, model["model_name"]
            assert service.queue_timeout_s <= params["stream_timeout"] / 2, model["model_name"]


def test_every_chat_alias_has_a_price_so_budgets_count() -> None:
    prices = {m["model_name"]: m["litellm_params"] for m in LITELLM["model_list"]}
    for alias in CHAT_ALIASES:
        assert prices[alias]["input_cost_per_token"] > 0
        assert prices[alias]["output_cost_per_token"] > 0
    assert (
        prices["gemma4-smart"]["output_cost_per_token"]
        > prices["gemma4-fast"]["output_cost_per_token"]
    )


def test_the_router_sends_vllm_no_more_than_its_sequences() -> None:
    router = load_compose()["services"]["router"]["environment"]
    assert router["ROUTER_TIER_LOW_MAX_IN_FLIGHT"].endswith("${VLLM_MAX_NUM_SEQS:-16}}")
    assert "--max-num-seqs 16" in " ".join(compose_command("vllm", {}))
    # Kubernetes: in the settings file the router reads (envFrom), at the profile's sequences.
    for settings in ("base/stratum.env", "overlays/multi-replica/stratum.env"):
        values = dict(
            line.split("=", 1)
            for line in (ROOT / "deploy/kubernetes" / settings).read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert values["ROUTER_TIER_LOW_MAX_IN_FLIGHT"] == values["VLLM_MAX_NUM_SEQS"], settings
