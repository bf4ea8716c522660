"""Prometheus config, alert rules and Grafana dashboards: valid, and every metric name real."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from stackutil import ROOT, require_tool

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.gpu import GpuMonitor
from adaptive_router.service import create_app
from adaptive_router.testing import FakeNvml

DASHBOARDS = sorted((ROOT / "grafana/dashboards").glob("*.json"))
METRIC = re.compile(r"\b(router_[a-z_]+|vllm:[a-z_:]+|llamacpp:[a-z_]+|litellm_[a-z_]+|up)\b")

# Engine metric names as the engines document them (vLLM docs/design/metrics.md; llama.cpp
# tools/server/README.md; LiteLLM docs/proxy/prometheus.md). Histograms list their series.
VLLM = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket", "vllm:request_queue_time_seconds_bucket",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
}  # fmt: skip
LLAMACPP = {
    "llamacpp:prompt_tokens_total", "llamacpp:prompt_seconds_total", "llamacpp:prompt_tokens_seconds",
    "llamacpp:tokens_predicted_total", "llamacpp:tokens_predicted_seconds_total",
    "llamacpp:predicted_tokens_seconds", "llamacpp:requests_processing", "llamacpp:requests_deferred",
    "llamacpp:n_tokens_max", "llamacpp:n_decode_total", "llamacpp:n_busy_slots_per_decode",
}  # fmt: skip
# LiteLLM 1.108.7 integrations/prometheus.py (as in 1.103.3): counter "litellm_total_tokens_metric" (exported
# with _total), labels include api_key_alias (types/integrations/prometheus.py).
LITELLM = {"litellm_total_tokens_metric_total"}
PROMETHEUS = {"up"}


@pytest.fixture(scope="module")
def router_metric_names() -> set[str]:
    """Names in the router's real /metrics (with a GPU reading, so the GPU gauges are there)."""
    monitor = GpuMonitor(FakeNvml())
    monitor.poll_once()
    app = create_app(router=AdaptiveRouter(RoutingConfig(), gpu_monitor=monitor), probes=False)

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return (await client.get("/metrics")).text

    text = asyncio.run(scrape())
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
            if kind == "counter":
                names.update({f"{name}_total", name.removesuffix("_total") + "_total"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, panel description, expr) for every target of every panel."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], panel.get("description", ""), target["expr"]))
    return out


def test_dashboards_are_valid_and_use_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert uid == "prometheus"
    assert ds["datasources"][0]["jsonData"]["timeInterval"] == "5s"
    scrape = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    assert scrape["global"]["scrape_interval"] == "5s"
    uids = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.append(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid
            assert panel["description"], f"{path.name}: {panel['title']} has no description"
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
    assert len(uids) == len(set(uids)) == 3
    assert {json.loads(p.read_text())["title"] for p in DASHBOARDS} == {
        "Stratum / Router", "Stratum / Engines", "Stratum / Overview"}  # fmt: skip


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_metric_exists(path: Any, router_metric_names: set[str]) -> None:
    known = router_metric_names | VLLM | LLAMACPP | LITELLM | PROMETHEUS
    for title, description, expr in queries(json.loads(path.read_text())):
        for name in METRIC.findall(expr):
            assert name in known, f"{path.name} / {title}: unknown metric {name}"
            if name.startswith("vllm:"):
                assert "Needs: vLLM" in description, f"{title}: vLLM-only panel not marked"
        assert "gpu_cache_usage_perc" not in expr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_divisions_are_guarded_against_no_traffic(path: Any) -> None:
    for title, _, expr in queries(json.loads(path.read_text())):
        if " / " in expr:
            assert ") > 0)" in expr, (
                f"{title}: a division without a '> 0' guard shows NaN when idle"
            )


SECRET = "/run/secrets/litellm_master_key"  # where Compose puts the secret (docker-compose.yml)


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    """promtool checks every file the config names, the key file too: a copy of the folder
    whose key file exists here (promtool would fail on /run/secrets, which only the container
    has); everything else as shipped."""
    promtool = require_tool("promtool")
    folder = tmp_path / "prometheus"
    shutil.copytree(ROOT / "docker/prometheus", folder)
    (tmp_path / "key").write_text("sk-test\n")
    config = folder / "prometheus.yml"
    text = config.read_text()
    assert text.count(SECRET) == 1
    config.write_text(text.replace(SECRET, str(tmp_path / "key")))
    for args in (["check", "config", "prometheus.yml"],
                 ["check", "rules", "alerts.yml"],
                 ["test", "rules", "tests/alerts_test.yml"]):  # fmt: skip
        out = subprocess.run([promtool, *args], cwd=folder, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_scrapes_every_service() -> None:
    cfg = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    targets = {j["job_name"]: j["static_configs"][0]["targets"][0] for j in cfg["scrape_configs"]}
    assert targets["router"] == "router:9000"
    assert targets["vllm"] == "vllm:8000"
    assert targets["llama-cpp"] == "llama-cpp:8080"
    assert targets["litellm"] == "litellm:4000"
    assert targets["embed"] == "embed:8080" and targets["rerank"] == "rerank:8080"


def test_litellm_metrics_keep_their_key_and_prometheus_sends_the_compose_secret() -> None:
    """Port 4000 faces the team and LiteLLM's counts name every key: /metrics keeps LiteLLM's
    default (a key required), and Prometheus reads the master key from the Compose secret."""
    litellm = yaml.safe_load((ROOT / "docker/litellm/config.yaml").read_text())
    assert "require_auth_for_metrics_endpoint" not in litellm["litellm_settings"]
    cfg = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    [job] = [j for j in cfg["scrape_configs"] if j["job_name"] == "litellm"]
    assert job["authorization"] == {"credentials_file": SECRET}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["secrets"]["litellm_master_key"] == {"environment": "LITELLM_MASTER_KEY"}
    assert compose["services"]["prometheus"]["secrets"] == ["litellm_master_key"]
    assert SECRET.rsplit("/", 1)[1] == "litellm_master_key"  # Compose's default target


def test_alert_rules_cover_the_documented_cases_and_use_real_metrics(
    router_metric_names: set[str],
) -> None:
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())["groups"][0][
        "rules"
    ]
    names = {r["alert"] for r in rules}
    assert names == {"StratumTierDown", "StratumRetrievalDown", "StratumTargetDown", "StratumTTFTOverSLA",
                     "StratumTierHighShareOutOfBand", "StratumQueueDepthHigh",
                     "StratumGPUMemoryLow", "StratumRouterErrors"}  # fmt: skip
    known = router_metric_names | VLLM | LLAMACPP | LITELLM | PROMETHEUS
    for rule in rules:
        for name in METRIC.findall(rule["expr"]):
            assert name in known, f"{rule['alert']}: unknown metric {name}"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    handover = ROOT / "docs/HANDOVER.md"
    if handover.exists():
        text = handover.read_text()
        for name in names:
            assert name in text, f"docs/HANDOVER.md does not explain {name}"
