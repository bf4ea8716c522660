"""Prometheus, with the repository's config and alert rules, scraping the live stack: every target
is up, and after a burst of traffic every query of every Grafana dashboard returns data.

vLLM cannot run on a CPU machine: its panels are fed by a stub target replaying a vLLM /metrics
sample (tests/e2e/data), and listed as such. Panels marked "Needs: GPU" read the router's NVML
gauges, which a machine without an NVIDIA GPU does not export; they are listed, not evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stack
import vllm_stub
from e2eutil import litellm_traffic

from adaptive_router.testing.processes import wait_until

DASHBOARDS = sorted((stack.ROOT / "grafana" / "dashboards").glob("*.json"))
# Grafana's own variables, as Grafana would expand them for a 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__interval": "1s", "$__range": "5m"}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    needs: str | None  # "vLLM", "GPU" or None
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.expr}"


def dashboard_queries() -> list[PanelQuery]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            m = re.search(r"Needs: (\w+)", panel.get("description") or "")
            for target in panel.get("targets", []):
                expr = target["expr"]
                for var, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(var, value)
                out.append(PanelQuery(path.stem, panel["title"], m and m.group(1), expr))
    return out


def query(prometheus: stack.Endpoint, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(prometheus.url + "/api/v1/query", params={"query": expr}, timeout=5)
    body = r.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.fixture(scope="module")
def traffic(
    litellm: stack.Endpoint, router: stack.Endpoint, prometheus: stack.Endpoint
) -> Iterator[None]:
    """Traffic through LiteLLM while the module's queries run (e2eutil.litellm_traffic)."""
    with litellm_traffic(litellm.url + "/v1", stack.LITELLM_MASTER_KEY):
        yield


def test_every_target_is_up(prometheus: stack.Endpoint) -> None:
    def targets() -> list[dict[str, Any]]:
        data = httpx.get(prometheus.url + "/api/v1/targets").json()["data"]
        return list(data["activeTargets"])

    def all_up() -> bool:
        active = targets()
        return len(active) == 7 and all(t["health"] == "up" for t in active)

    try:
        wait_until(all_up, 30, "every scrape target to be up")
    except TimeoutError:
        states = [(t["labels"]["job"], t["health"], t["lastError"]) for t in targets()]
        pytest.fail(f"not every target is up: {states}")
    up = {r["metric"]["job"]: r["value"][1] for r in query(prometheus, "up")}
    jobs = ("router", "vllm", "llama-cpp", "embed", "rerank", "litellm", "prometheus")
    assert up == {j: "1" for j in jobs}


def test_litellm_metrics_ask_for_a_key(litellm: stack.Endpoint) -> None:
    """Port 4000 faces the team and LiteLLM's counts name every key: LiteLLM's default (kept)
    refuses /metrics without a valid key; Prometheus sends the master key."""
    url = litellm.url + "/metrics/"
    assert httpx.get(url, timeout=10).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer sk-not-a-key"}, timeout=10)
    assert wrong.status_code == 401
    master = {"Authorization": f"Bearer {stack.LITELLM_MASTER_KEY}"}
    assert httpx.get(url, headers=master, timeout=10).status_code == 200


# What Prometheus 3 sends (docs: "Scrape protocol content negotiation"), and the content types it
# can parse: 3.x fails a scrape whose Content-Type is blank or not one of these, where 2.x (the
# Debian version these tests run) falls back to the text format. The compose file ships 3.13.
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;"
    "q=0.5,text/plain;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PARSEABLE = {
    ("text/plain", None),
    ("text/plain", "0.0.4"),
    ("text/plain", "1.0.0"),
    ("application/openmetrics-text", "0.0.1"),
    ("application/openmetrics-text", "1.0.0"),
}


def media_type(header: str) -> tuple[str, str | None]:
    """RFC 2045 parsing, as Go's mime.ParseMediaType does it: one type, then ';' parameters."""
    from email.message import Message

    message = Message()
    message["content-type"] = header
    assert not message.defects, f"{header!r}: {message.defects}"
    assert "," not in header, f"{header!r} is a list, not one media type"
    return message.get_content_type(), message.get_param("version")  # type: ignore[return-value]


def test_every_target_answers_with_a_content_type_prometheus_3_parses(
    router: stack.Endpoint, engines: tuple[stack.Endpoint, stack.Endpoint], litellm: stack.Endpoint
) -> None:
    paths = {"router": router.url + "/metrics", "llama-server": engines[1].url + "/metrics",
             "litellm": litellm.url + "/metrics/"}  # fmt: skip
    key = {"litellm": {"Authorization": f"Bearer {stack.LITELLM_MASTER_KEY}"}}  # as Prometheus
    for name, url in paths.items():
        r = httpx.get(url, headers={"Accept": PROMETHEUS_3_ACCEPT, **key.get(name, {})}, timeout=10)
        assert r.status_code == 200, (name, r.status_code)
        assert media_type(r.headers.get("content-type", "")) in PARSEABLE, (
            name, r.headers.get("content-type"),
        )  # fmt: skip


def test_every_dashboard_query_returns_data(
    prometheus: stack.Endpoint, traffic: None, artifacts: Path
) -> None:
    queries = dashboard_queries()
    assert len(queries) > 30, "the dashboards were found"
    gpu_only = [q for q in queries if q.needs == "GPU"]
    evaluated = [q for q in queries if q.needs != "GPU"]
    pending = {str(q): q for q in evaluated}

    def all_have_data() -> bool:
        for key, q in list(pending.items()):
            if query(prometheus, q.expr):
                del pending[key]
        return not pending

    try:
        wait_until(all_have_data, 45, "every dashboard query to return data", interval=1.0)
    except TimeoutError:
        pytest.fail("queries without data after traffic:\n" + "\n".join(pending))
    report = {
        "evaluated": [str(q) for q in evaluated if q.needs is None],
        "evaluated_against_vllm_sample": [str(q) for q in evaluated if q.needs == "vLLM"],
        "gpu_only_not_evaluated": [str(q) for q in gpu_only],
    }
    (artifacts / "dashboard-queries.json").write_text(json.dumps(report, indent=2))
    # Nothing hides behind "Needs: GPU": those panels read only the router's NVML gauges.
    for q in gpu_only:
        assert set(re.findall(r"[a-z_:]+(?=[{)\s]|$)", q.expr)) <= {
            "router_gpu_memory_used_bytes", "router_gpu_memory_total_bytes",
            "router_gpu_memory_free_bytes", "router_gpu_utilization_percent", "max",
        }, q  # fmt: skip
    # Every vLLM panel really reads a metric the vLLM sample defines.
    sample_names = vllm_stub.metric_names()
    for q in evaluated:
        if q.needs == "vLLM":
            used = set(re.findall(r"vllm:[a-z0-9_]+", q.expr))
            assert used, q
            assert {re.sub(r"_bucket$", "", n) for n in used} <= sample_names, q


def test_router_says_the_gpu_is_not_readable(prometheus: stack.Endpoint) -> None:
    """On a machine without NVIDIA's driver the GPU panel shows 0 (abstaining), not a gap."""
    values = {r["value"][1] for r in query(prometheus, "router_gpu_available")}
    assert values == {"0"}


def test_alert_rules_load_and_evaluate(prometheus: stack.Endpoint) -> None:
    source = (stack.ROOT / "docker" / "prometheus" / "alerts.yml").read_text()
    expected = set(re.findall(r"- alert: (\w+)", source))

    def evaluated() -> bool:
        groups = httpx.get(prometheus.url + "/api/v1/rules").json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return {r["name"] for r in rules} == expected and all(
            r["health"] == "ok" and not r["lastEvaluation"].startswith("0001") for r in rules
        )

    wait_until(evaluated, 20, "every alert rule to be evaluated without error")
    firing = httpx.get(prometheus.url + "/api/v1/alerts").json()["data"]["alerts"]
    assert [a for a in firing if a["state"] == "firing"] == [], "a healthy stack fires nothing"


def test_engine_counters_reach_prometheus(prometheus: stack.Endpoint, traffic: None) -> None:
    """llama-server's own counters moved: the burst's tokens were really generated."""

    def generated() -> bool:
        result = query(prometheus, "sum(llamacpp:tokens_predicted_total)")
        return bool(result) and float(result[0]["value"][1]) > 0

    wait_until(generated, 10, "llamacpp:tokens_predicted_total to rise above 0")
