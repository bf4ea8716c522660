"""deploy/kubernetes: every overlay renders, validates and says what the compose stack says.

No cluster runs here. What can be checked without one is checked against the real tools and the
real schemas: ``kubectl kustomize`` renders each overlay; every object validates against the
Kubernetes API schema of the oldest and newest versions we state (kubernetes-validate, strict:
an unknown field fails), the monitoring objects against the Prometheus Operator's own CRD
schemas; the engines' shell commands run through /bin/sh and must give the argv compose gives;
the dashboards and alert rules are the compose stack's own.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from envfile import read_env
from stackutil import ROOT, require_tool
from vram import cli as plan_vram_cli
from vram.profiles import PROFILES

from stratum_tools.compose import compose_command, load_compose, substitute

K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("single-gpu", "multi-replica")
# The oldest Kubernetes we claim (kube-prometheus-stack 88 needs >= 1.25; 1.32 is the kubectl
# of these machines) and the newest kubernetes-validate 1.37.0 knows.
KUBERNETES_VERSIONS = ("1.32", "1.37")
CRD_DIR = ROOT / "tests" / "data" / "prometheus-operator-crds"
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
POD_OWNERS = {"Deployment", "StatefulSet", "Job"}
OVERLAY_PROFILE = {"single-gpu": "base/stratum.env", "multi-replica": "overlays/multi-replica/stratum.env"}  # fmt: skip


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = require_tool("kubectl")
    out = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs(docs: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in POD_OWNERS:
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def settings(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("stratum-settings-")]  # fmt: skip
    data: dict[str, str] = cm["data"]
    return data


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# -- rendering and schemas ---------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(overlay: str, version: str) -> None:
    checked = set()
    for doc in render(overlay):
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: "
                        f"{'.'.join(str(p) for p in exc.path)}: {exc.message}")  # fmt: skip
        checked.add(doc["kind"])
    assert {"Deployment", "StatefulSet", "Job", "Service", "HorizontalPodAutoscaler"} <= checked


def test_the_kubernetes_check_catches_a_misspelt_field() -> None:
    router = find(render("single-gpu"), "Deployment", "router")
    broken = json.loads(json.dumps(router))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessprobe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def _strict(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as a JSON Schema that refuses unknown fields: the API server
    would silently prune them, so a misspelt field would just vanish."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    for path in CRD_DIR.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
            schema: dict[str, Any] = _strict(version["schema"]["openAPIV3Schema"])
            return schema
    raise AssertionError(f"no CRD for {kind}")


def test_monitoring_objects_validate_against_the_operators_crds(overlay: str) -> None:
    kinds = set()
    for doc in render(overlay):
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            jsonschema.Draft7Validator(crd_schema(doc["kind"])).validate(doc)
            kinds.add(doc["kind"])
    assert kinds == CRD_KINDS


def test_the_crd_check_catches_a_misspelt_field() -> None:
    monitor = find(render("single-gpu"), "ServiceMonitor", "router")
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        jsonschema.Draft7Validator(crd_schema("ServiceMonitor")).validate(broken)


# -- the same stack as compose -------------------------------------------------------------------


def _compose_image(service: str) -> str:
    image = load_compose()["services"][service]["image"]
    match = re.fullmatch(r"\$\{[A-Z_]+:-(.+)\}", image)
    return match.group(1) if match else image


def test_images_are_the_compose_stacks_pins(overlay: str) -> None:
    docs = render(overlay)
    images = {c["name"]: c["image"] for _, spec in pod_specs(docs) for c in containers(spec)}
    assert images["vllm"] == _compose_image("vllm")
    assert images["download"] == _compose_image("vllm")
    by_pod = {(owner, c["name"]): c["image"] for owner, spec in pod_specs(docs)
              for c in containers(spec)}  # fmt: skip
    assert by_pod["Deployment/llama-cpp", "llama-server"] == _compose_image("llama-cpp")
    assert by_pod["Deployment/llama-cpp", "wait-for-model"] == _compose_image("llama-cpp")
    for name in ("embed", "rerank"):  # llama.cpp's CPU image, as in compose
        assert by_pod[f"Deployment/{name}", "llama-server"] == _compose_image(name)
        assert by_pod[f"Deployment/{name}", "wait-for-model"] == _compose_image(name)
    assert images["postgres"] == _compose_image("postgres")
    assert images["open-webui"] == _compose_image("open-webui")
    # LiteLLM's non-root image of the same release.
    assert images["litellm"] == images["register-key"]
    assert images["litellm"] == _compose_image("litellm").replace("/litellm:", "/litellm-non_root:")
    assert images["router"] == load_compose()["services"]["router"]["image"]


@pytest.mark.parametrize(
    ("service", "program"),
    [("vllm", "vllm"), ("llama-cpp", "/app/llama-server"), ("embed", "/app/llama-server"),
     ("rerank", "/app/llama-server")],
)  # fmt: skip
def test_engines_run_the_compose_command_for_their_profile(
    overlay: str, service: str, program: str, tmp_path: Path
) -> None:
    """The container's shell line, run by /bin/sh with the overlay's settings, starts the engine
    with exactly the argv compose gives for the same .env values."""
    docs = render(overlay)
    [container] = find(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    stub = tmp_path / "engine"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(0o755)
    line = container["args"][0].replace(f"exec {program} ", f"exec {stub} ", 1)
    values = settings(docs)
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", **values})  # fmt: skip
    assert out.returncode == 0, out.stderr
    argv = json.loads(out.stdout)
    if program == "vllm":
        assert argv[0] == "serve"
        argv = argv[1:]
    assert argv == compose_command(service, values)
    assert values == read_env(K8S / OVERLAY_PROFILE[overlay])


def test_the_settings_are_the_planners_profiles_and_fit_their_cards() -> None:
    for overlay, profile in (("single-gpu", "16gb"), ("multi-replica", "dual-16gb")):
        values = settings(render(overlay))
        chosen = PROFILES[profile]
        assert {k: values[k] for k in chosen.keys} == {k: chosen.values[k] for k in chosen.keys}
        gpus = ",".join(f"{g:.3f}" for g in chosen.memory_gib)
        env_file = K8S / OVERLAY_PROFILE[overlay]
        assert plan_vram_cli.main(["check", "--env", str(env_file), "--gpu-gb", gpus]) == 0


def test_model_download_fetches_what_the_engines_load(overlay: str, tmp_path: Path) -> None:
    docs = render(overlay)
    values = settings(docs)
    [job] = find(docs, "Job", "model-download")["spec"]["template"]["spec"]["containers"]
    stub = tmp_path / "python3"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(0o755)
    out = subprocess.run(["/bin/sh", "-c", job["args"][0]], capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin", **values})  # fmt: skip
    assert out.returncode == 0, out.stderr
    argv, embed, rerank = (json.loads(line) for line in out.stdout.splitlines())
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert argv[0] == "/stratum/download_models.py"
    # The retrieval engines' GGUFs, into /models where they look (compose: the same files).
    for run, name in ((embed, "embed"), (rerank, "rerank")):
        assert run[:3] == ["/stratum/download_models.py", "--only", "gguf"]
        fetched = dict(zip(run[3::2], run[4::2], strict=True))
        assert fetched["--gguf-dir"] == "/models"
        assert f"/models/{fetched['--gguf-file']}" in " ".join(compose_command(name, values))
    assert flags["--gguf-file"] == values["LLAMA_MODEL_FILE"]
    assert flags["--gguf-repo"] == values["LLAMA_MODEL_REPO"]
    assert flags["--mmproj-file"] == values["LLAMA_MMPROJ_FILE"]
    assert f"/models/{values['LLAMA_MMPROJ_FILE']}" in values["LLAMA_MMPROJ_ARGS"]
    assert flags["--vllm-model"] == values["VLLM_MODEL"]
    # The engines look where the Job writes: llama-server in /models, vLLM in HF_HOME.
    vllm = find(docs, "Deployment", "vllm")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HF_HOME", "value": flags["--hf-cache"]} in vllm["env"]
    assert flags["--gguf-dir"] == "/models"


@pytest.mark.parametrize("mmproj", [True, False])
def test_llama_server_waits_for_the_files_it_loads(mmproj: bool, tmp_path: Path) -> None:
    docs = render("single-gpu")
    values = dict(settings(docs))
    if not mmproj:
        values["LLAMA_MMPROJ_ARGS"] = ""
    spec = find(docs, "Deployment", "llama-cpp")["spec"]["template"]["spec"]
    [wait] = [c for c in spec["initContainers"] if c["name"] == "wait-for-model"]
    models = tmp_path / "models"
    models.mkdir()
    values["LLAMA_MMPROJ_ARGS"] = values["LLAMA_MMPROJ_ARGS"].replace("/models", str(models))
    # Instead of waiting, say what it would wait for.
    line = wait["args"][0].replace("/models", str(models)).replace("sleep 15", "exit 3")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", **values})  # fmt: skip

    out = run()
    assert out.returncode == 3 and values["LLAMA_MODEL_FILE"] in out.stdout
    (models / values["LLAMA_MODEL_FILE"]).write_bytes(b"GGUF")
    out = run()
    if mmproj:
        assert out.returncode == 3 and values["LLAMA_MMPROJ_FILE"] in out.stdout
        (models / values["LLAMA_MMPROJ_FILE"]).write_bytes(b"GGUF")
        out = run()
    assert out.returncode == 0, out.stdout
    assert out.stdout.count("found ") == (2 if mmproj else 1)


def _normalise(value: str, secrets: set[str]) -> str:
    for name in secrets:
        value = re.sub(r"\$\{" + name + r"(?::?[-?][^}]*)?\}", f"<{name}>", value)
        value = value.replace(f"$({name})", f"<{name}>")
    return value


@pytest.mark.parametrize(
    ("service", "container"), [("open-webui", "open-webui"), ("litellm", "litellm")]
)
def test_gateway_and_chat_have_the_compose_environment(service: str, container: str) -> None:
    secrets = {"LITELLM_MASTER_KEY", "POSTGRES_PASSWORD", "ROUTER_API_KEY", "WEBUI_SECRET_KEY", "OPENWEBUI_LITELLM_KEY"}  # fmt: skip
    compose_env = {
        k: substitute(_normalise(str(v), secrets), {})
        for k, v in load_compose()["services"][service]["environment"].items()
    }
    docs = render("single-gpu")
    spec = find(docs, "Deployment", service)["spec"]["template"]["spec"]
    [c] = [c for c in spec["containers"] if c["name"] == container]
    k8s_env = {}
    for e in c["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "stratum-secrets"
            k8s_env[e["name"]] = f"<{ref['key']}>"
        else:
            k8s_env[e["name"]] = _normalise(e["value"], secrets)
    # The compose-only difference: the database password has its own variable here.
    k8s_env.pop("POSTGRES_PASSWORD", None)
    assert k8s_env == compose_env


def test_router_finds_every_engine_pod_through_headless_services(overlay: str) -> None:
    docs = render(overlay)
    [router] = find(docs, "Deployment", "router")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in router["env"]}
    assert settings(docs)["ROUTER_GPU_MONITOR"] == "false"  # no GPU in the router's pod
    for key, service, port in (("ROUTER_TIER_LOW_URL", "vllm", 8000),
                               ("ROUTER_TIER_HIGH_URL", "llama-cpp", 8080),
                               ("ROUTER_EMBED_URL", "embed", 8080),
                               ("ROUTER_RERANK_URL", "rerank", 8080)):  # fmt: skip
        assert env[key] == f"http://{service}:{port}/v1"
        svc = find(docs, "Service", service)
        assert svc["spec"]["clusterIP"] == "None"
        assert svc["spec"]["ports"][0]["port"] == port
        pods = find(docs, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pods.items()
    # Every ROUTER_<KEY> of stratum.env reaches the router (envFrom, the whole ConfigMap); only
    # the engines' addresses and its key are fixed (env wins over envFrom, so a setting there
    # would silently shadow the user's line in stratum.env).
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("stratum-settings-")]  # fmt: skip
    assert {"configMapRef": {"name": cm["metadata"]["name"]}} in router["envFrom"]
    assert set(env) == {"ROUTER_TIER_LOW_URL", "ROUTER_TIER_HIGH_URL", "ROUTER_EMBED_URL",
                        "ROUTER_RERANK_URL", "ROUTER_API_KEY"}  # fmt: skip


def test_every_router_variable_is_a_setting_the_router_has(overlay: str) -> None:
    from adaptive_router.config import ENV_PREFIX, RoutingConfig
    from adaptive_router.service.config import ServiceConfig

    known = {ENV_PREFIX + name.upper() for name in RoutingConfig.model_fields}
    known |= {ENV_PREFIX + name.upper() for name in ServiceConfig.model_fields}
    docs = render(overlay)
    [router] = find(docs, "Deployment", "router")["spec"]["template"]["spec"]["containers"]
    given = {e["name"] for e in router["env"]} | set(settings(docs))
    assert {k for k in given if k.startswith(ENV_PREFIX)} <= known


def test_router_probes_scaling_and_disruption_budget(overlay: str) -> None:
    docs = render(overlay)
    [router] = find(docs, "Deployment", "router")["spec"]["template"]["spec"]["containers"]
    assert router["readinessProbe"]["httpGet"]["path"] == "/health"
    assert router["livenessProbe"]["httpGet"]["path"] == "/livez"
    hpa = find(docs, "HorizontalPodAutoscaler", "router")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "router",
    }
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] >= 2
    assert find(docs, "PodDisruptionBudget", "router")["spec"]["minAvailable"] == 1


def test_engine_replicas_and_gpus_per_overlay() -> None:
    for overlay, count in (("single-gpu", 1), ("multi-replica", 2)):
        docs = render(overlay)
        for name in ("vllm", "llama-cpp"):
            deployment = find(docs, "Deployment", name)
            assert deployment["spec"]["replicas"] == count
            [engine] = deployment["spec"]["template"]["spec"]["containers"]
            assert engine["resources"]["limits"]["nvidia.com/gpu"] == 1
            strategy = deployment["spec"]["strategy"]
            if count == 1:  # one card: the old pod must be gone before the new one loads
                assert strategy["type"] == "Recreate"
            else:  # a card each: one at a time, no surge pod needing a spare card
                assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    single = render("single-gpu")
    llama = find(single, "Deployment", "llama-cpp")["spec"]["template"]["spec"]
    assert [c["name"] for c in llama["initContainers"]] == ["wait-for-vllm", "wait-for-model"]
    affinity = llama["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity[0]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "vllm"}
    multi = render("multi-replica")
    assert find(multi, "PersistentVolumeClaim", "models")["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]


# -- security -------------------------------------------------------------------------------------


def test_every_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    """https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted, which
    the namespace enforces; plus: requests and limits on every container."""
    docs = render(overlay)
    namespace = find(docs, "Namespace", "stratum")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, spec in pod_specs(docs):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        # Numeric: the kubelet cannot check a user name (router's image says USER router).
        assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, name
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][side]), (name, c["name"], side)


def test_no_secret_in_git_and_every_secret_reference_is_created_by_the_script(
    overlay: str, tmp_path: Path
) -> None:
    docs = render(overlay)
    assert not [d for d in docs if d["kind"] == "Secret"]
    refs = set()
    for _, spec in pod_specs(docs):
        for c in containers(spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "stratum-secrets"
                    refs.add((ref["key"], bool(ref.get("optional"))))
    out = subprocess.run(["bash", str(ROOT / "scripts/kubernetes-secrets.sh"), "--print"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    created = set(yaml.safe_load(out.stdout)["data"])
    assert {key for key, optional in refs if not optional} <= created
    assert {key for key, optional in refs if optional} == {"HF_TOKEN"}


def test_every_reference_resolves(overlay: str) -> None:
    docs = render(overlay)
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for name, spec in pod_specs(docs):
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, name
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
        mounted = {v["name"] for v in spec.get("volumes", [])}
        for c in containers(spec):
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps, name
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in mounted or name.startswith("StatefulSet"), (name, mount)


# -- monitoring -----------------------------------------------------------------------------------


def test_dashboards_are_the_compose_stacks_byte_for_byte(overlay: str) -> None:
    cm = find(render(overlay), "ConfigMap", "stratum-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    assert sorted(cm["data"]) == [f.name for f in files]
    for f in files:
        assert cm["data"][f.name] == f.read_text(encoding="utf-8"), f.name


def test_alert_rules_are_the_compose_stacks_and_promtool_accepts_them(
    overlay: str, tmp_path: Path
) -> None:
    rule = find(render(overlay), "PrometheusRule", "stratum")
    alerts = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    extracted = tmp_path / "rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    promtool = require_tool("promtool")
    out = subprocess.run(
        [promtool, "check", "rules", str(extracted)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_scrape_targets_keep_the_compose_job_names(overlay: str) -> None:
    """The dashboards and alerts select on job="router|vllm|llama-cpp|litellm"."""
    docs = render(overlay)
    prometheus = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    paths = {j["job_name"]: j.get("metrics_path", "/metrics") for j in prometheus["scrape_configs"]}
    jobs = {}
    for monitor in (d for d in docs if d["kind"] == "ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        [service] = [d for d in docs if d["kind"] == "Service"
                     and monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()]  # fmt: skip
        endpoint = monitor["spec"]["endpoints"][0]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        jobs[service["metadata"]["name"]] = endpoint["path"]
    for monitor in (d for d in docs if d["kind"] == "PodMonitor"):
        [owner] = [d for d in docs if d["kind"] == "Deployment"
                   and monitor["spec"]["selector"]["matchLabels"].items()
                   <= d["spec"]["template"]["metadata"]["labels"].items()]  # fmt: skip
        labels = owner["spec"]["template"]["metadata"]["labels"]
        endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        ports = {
            p["name"] for c in owner["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        assert endpoint["port"] in ports
        jobs[labels[monitor["spec"]["jobLabel"]]] = endpoint["path"]
    assert jobs == {job: path for job, path in paths.items() if job != "prometheus"}


def test_litellm_metrics_are_scraped_with_the_key_litellm_itself_reads(overlay: str) -> None:
    """LiteLLM's /metrics asks for a key (its default, kept): the ServiceMonitor sends the very
    Secret key the LiteLLM Deployment takes its master key from, in the same namespace."""
    docs = render(overlay)
    monitor = find(docs, "ServiceMonitor", "litellm")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["authorization"]["type"] == "Bearer"
    credentials = endpoint["authorization"]["credentials"]
    deployment = find(docs, "Deployment", "litellm")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    master = {e["name"]: e for e in container["env"]}["LITELLM_MASTER_KEY"]
    assert master["valueFrom"]["secretKeyRef"] == credentials
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    config = yaml.safe_load((K8S / "base/files/litellm-config.yaml").read_text())
    assert "require_auth_for_metrics_endpoint" not in config["litellm_settings"]


# -- the secrets script ---------------------------------------------------------------------------


def test_secrets_script_takes_values_from_a_compose_env(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("LITELLM_MASTER_KEY=sk-from-compose\nPOSTGRES_PASSWORD=abc123\nHF_TOKEN=hf_x\n")
    out = subprocess.run(["bash", str(ROOT / "scripts/kubernetes-secrets.sh"), "--print",
                          "--from-env", str(env), "--namespace", "team"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    secret = yaml.safe_load(out.stdout)
    assert secret["metadata"] == {"name": "stratum-secrets", "namespace": "team", "creationTimestamp": None}  # fmt: skip
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["LITELLM_MASTER_KEY"] == "sk-from-compose"
    assert data["POSTGRES_PASSWORD"] == "abc123"
    assert data["HF_TOKEN"] == "hf_x"
    assert re.fullmatch(r"sk-[0-9a-f]{48}", data["OPENWEBUI_LITELLM_KEY"])
    assert re.fullmatch(r"[0-9a-f]{48}", data["WEBUI_SECRET_KEY"])


def test_secrets_script_never_replaces_an_existing_secret(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    stub = tmp_path / "kubectl"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(log))}\nexit 0\n')
    stub.chmod(0o755)
    out = subprocess.run(["bash", str(ROOT / "scripts/kubernetes-secrets.sh")],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "NO_COLOR": "1"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "already exists" in out.stdout
    assert log.read_text().splitlines() == ["get secret stratum-secrets --namespace stratum"]
