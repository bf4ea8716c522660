"""The shell scripts: shellcheck, --help, and behaviour with stub docker / nvidia-smi / curl.

Each behaviour test copies the repository's scripts and config into a temporary directory (so the
real .env is never touched) and puts stub commands first on PATH. The stubs record their calls and
answer from environment variables the test sets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import download_models
import envfile
import pytest
from stackutil import ROOT, require_tool
from vram.profiles import PROFILES

from adaptive_router.testing.processes import free_ports

SCRIPTS = [
    *sorted((ROOT / "scripts").glob("*.sh")),
    ROOT / "scripts/lib/common.sh",
    ROOT / ".ci/run",
]
GPU_16GB = "NVIDIA GeForce RTX 5060 Ti, 16311, 12.0, 580.95.05"
GPU_24GB = "NVIDIA GeForce RTX 4090, 24564, 8.9, 580.95.05"

DOCKER_STUB = r"""#!PYTHON
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as f:
    files = ""
    if args[:1] == ["compose"] and "COMPOSE_FILE" in os.environ:
        files = f"  # COMPOSE_FILE={os.environ['COMPOSE_FILE']}"
    f.write("docker " + " ".join(args) + files + "\n")
def env(name, default=""):
    return os.environ.get(name, default)
if args[:1] == ["--version"]:
    print("Docker version 28.2.2, build e6534b4")
    sys.exit(0)
if args[:1] == ["info"]:
    if env("STUB_DOCKER_DOWN"):
        sys.exit(1)
    if "--format" in args:
        print(env("STUB_RUNTIMES", '{"nvidia":{},"runc":{}}'))
    sys.exit(0)
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[-1] in env("STUB_LOCAL_IMAGES").split() else 1)
if args[:2] == ["manifest", "inspect"]:
    sys.exit(1 if any(m and m in args[-1] for m in env("STUB_MISSING_IMAGES").split()) else 0)
if args[:1] == ["inspect"]:
    cid = args[-1]
    states = json.loads(env("STUB_STATES", "{}"))
    print(states.get(cid.removeprefix("cid-"), env("STUB_DEFAULT_STATE", "healthy")))
    sys.exit(0)
if args[:1] == ["compose"]:
    rest = [a for a in args[1:] if a != "-a"]
    while rest and rest[0] in ("--project-directory", "-f"):
        rest = rest[2:]
    if rest[:2] == ["version", "--short"]:
        print(env("STUB_COMPOSE_VERSION", "2.29.1"))
        sys.exit(0)
    if rest[:2] == ["ps", "-q"]:
        if len(rest) > 2:
            started = [l.split() for l in open(os.environ["STUB_LOG"]) if " up -d " in l]
            present = env("STUB_PRESENT").split()
            if any(rest[2] in l for l in started) or env("STUB_RUNNING") or rest[2] in present:
                print("cid-" + rest[2])
        elif env("STUB_RUNNING"):
            print("cid-router")
        sys.exit(0)
    if rest[:1] == ["logs"]:
        print("vllm  | torch.OutOfMemoryError: CUDA out of memory")
        sys.exit(0)
    if rest[:2] == ["up", "-d"] and env("STUB_UP_FAILS") in rest[2:]:
        print(f"dependency failed to start: container {env('STUB_UP_FAILS')} is unhealthy", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
sys.exit(0)
"""

NVIDIA_SMI_STUB = r"""#!PYTHON
# STUB_GPU: "name, MiB, compute cap, driver" per card, cards separated by ";";
# STUB_GPU_USED: MiB in use on each card.
import os, sys
fields = ["name", "memory.total", "compute_cap", "driver_version"]
query = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--query-gpu=")), ",".join(fields))
for index, card in enumerate(os.environ["STUB_GPU"].split(";")):
    values = dict(zip(fields, [v.strip() for v in card.split(",")]))
    values["memory.used"] = os.environ.get("STUB_GPU_USED", "1")
    values["index"] = str(index)
    print(", ".join(values[q] for q in query.split(",")))
"""


CURL_STUB = r"""#!PYTHON
# Minimal curl: -s -o FILE -D FILE -w FMT -m N -H H -d BODY URL. Answers from STUB_HTTP (JSON):
# {"url substring": [code, body, {"header": "value"}]}; unknown URLs are unreachable (000).
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as f:
    f.write("curl " + " ".join(args) + "\n")
out = headers = fmt = None
url = None
body = None
i = 0
while i < len(args):
    a = args[i]
    if a in ("-o", "-D", "-w", "-m", "-H", "-d"):
        v = args[i + 1]
        if a == "-o": out = v
        if a == "-D": headers = v
        if a == "-w": fmt = v
        if a == "-d": body = v
        i += 2
        continue
    if not a.startswith("-"):
        url = a
    i += 1
routes = json.loads(os.environ.get("STUB_HTTP", "{}"))
match = None
for key in sorted(routes, key=len, reverse=True):
    path, _, model = key.partition("#")  # "#tier_low": only for requests naming that model
    if path in url and (not model or (body is not None and f'"{model}"' in body)):
        match = routes[key]
        break
if match is None:
    if fmt: sys.stdout.write("000")
    sys.exit(7)
code, text, hdrs = match
if headers:
    with open(headers, "w") as f:
        f.write(f"HTTP/1.1 {code}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()))
if out and out != "/dev/null":
    open(out, "w").write(text)
elif not out:
    sys.stdout.write(text)
if fmt:
    sys.stdout.write(str(code))
"""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(script: Path) -> None:
    shellcheck = require_tool("shellcheck")
    out = subprocess.run([shellcheck, "-x", str(script)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.suffix == ".sh" and p.parent.name == "scripts"],
                         ids=lambda p: p.name)  # fmt: skip
def test_every_script_has_help_and_strict_mode(script: Path) -> None:
    text = script.read_text()
    assert "set -euo pipefail" in text
    out = subprocess.run(
        ["bash", str(script), "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout


class Sandbox:
    """A copy of the repository's runnable parts, with stub commands on PATH."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "stratum"
        for name in ("scripts", "docker", "grafana"):
            shutil.copytree(ROOT / name, self.root / name)
        for name in (".env.example", "docker-compose.yml", "docker-compose.cpu.yml"):
            shutil.copy(ROOT / name, self.root / name)
        (self.root / "router").mkdir()
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.log = tmp / "calls.log"
        self.log.write_text("")
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(tmp),
            "STUB_LOG": str(self.log),
            "STRATUM_POLL_SECONDS": "0",
            "NO_COLOR": "1",
            # The sandbox's ports are whatever this machine has free; do not depend on them.
            **{
                k: str(p)
                for k, p in zip(
                    (
                        "WEBUI_PORT",
                        "GRAFANA_PORT",
                        "LITELLM_PORT",
                        "VLLM_PORT",
                        "LLAMA_CPP_PORT",
                        "ROUTER_PORT",
                        "PROMETHEUS_PORT",
                        "EMBED_PORT",
                        "RERANK_PORT",
                    ),
                    free_ports(9),
                    strict=True,
                )
            },
        }
        self.stub("docker", DOCKER_STUB)

    def stub(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text.replace("#!PYTHON", "#!" + sys.executable, 1))
        path.chmod(0o755)

    def gpu(self, line: str = GPU_16GB) -> None:
        self.stub("nvidia-smi", NVIDIA_SMI_STUB)
        self.env["STUB_GPU"] = line

    def retrieval_models(self) -> None:
        models = self.root / "docker/llama-cpp/models"
        for name in ("embeddinggemma-300M-qat-Q4_0.gguf", "bge-reranker-v2-m3-Q4_K_M.gguf"):
            (models / name).write_bytes(b"GGUF")

    def models(self) -> None:
        self.retrieval_models()
        models = self.root / "docker/llama-cpp/models"
        (models / "gemma-4-26B_q4_0-it.gguf").write_bytes(b"GGUF")
        (models / "gemma-4-26B-it-mmproj.gguf").write_bytes(b"GGUF")
        repo = "models--xbill9--gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4"
        snap = self.root / ".cache/huggingface/hub" / repo / "snapshots/abc"
        snap.mkdir(parents=True)
        (snap / "config.json").write_text("{}")

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.root / "scripts" / script), *args],
            capture_output=True, text=True, timeout=120, env={**self.env, **env}, cwd=self.root,
        )  # fmt: skip

    def calls(self, compose_files: bool = False) -> list[str]:
        """The commands the stubs saw; with compose_files, each compose call ends with the
        COMPOSE_FILE it ran with."""
        lines = self.log.read_text().splitlines()
        return lines if compose_files else [line.split("  # COMPOSE_FILE=")[0] for line in lines]


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


# -- start.sh -------------------------------------------------------------------------------------


def test_start_dry_run_without_gpu_fails_clearly(box: Sandbox) -> None:
    out = box.run("start.sh", "--dry-run")
    assert out.returncode == 1
    assert "no NVIDIA driver found" in out.stderr
    assert "install-cuda-linux.sh" in out.stderr
    assert "nothing was started" in out.stderr
    assert not any(" up -d" in c for c in box.calls())


def test_start_dry_run_with_a_16gb_gpu_passes_preflight(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "RTX 5060 Ti, 16311 MiB, compute capability 12.0, driver 580.95.05" in out.stdout
    assert "would create .env" in out.stdout
    for stage in (
        "up -d prometheus grafana router",
        "up -d vllm",
        "up -d llama-cpp",
        "up -d embed rerank",
        "up -d postgres litellm litellm-keys open-webui",
    ):
        assert f"would run: compose {stage}" in out.stdout
    assert out.stdout.index("up -d vllm") < out.stdout.index("up -d llama-cpp")
    assert not (box.root / ".env").exists()
    assert not any(" up -d" in c for c in box.calls())


@pytest.mark.parametrize(
    ("gpu", "env", "message"),
    [
        ("NVIDIA GeForce RTX 4060, 8188, 8.9, 580.95.05", {}, "plan in .env.example does not fit this card"),
        ("NVIDIA GeForce RTX 3090, 24576, 8.6, 580.95.05", {}, "vLLM refuses an FP8 KV cache"),
        ("NVIDIA GeForce RTX 5060 Ti, 16311, 12.0, 575.64.05", {}, "v0.31.0-cu129"),
        ("NVIDIA GeForce RTX 5060 Ti, 16311, 12.0, 560.35.03", {"VLLM_IMAGE": "vllm/vllm-openai:v0.31.0-cu129"}, "needs >= 575.57"),
    ],
)  # fmt: skip
def test_start_refuses_what_cannot_work(
    box: Sandbox, gpu: str, env: dict[str, str], message: str
) -> None:
    box.gpu(gpu)
    box.models()
    out = box.run("start.sh", "--dry-run", **env)
    assert out.returncode == 1
    assert message in out.stderr


OLD_16GB_PLAN = {  # the plan this project shipped first: FP8 online leaves 7 GB of embeddings BF16
    "VLLM_MODEL": "google/gemma-4-E4B-it", "VLLM_QUANTIZATION_ARGS": "--quantization fp8",
    "VLLM_GPU_MEMORY_UTILIZATION": "0.62", "VLLM_MAX_IMAGES": "1", "LLAMA_MMPROJ_ARGS": "",
    "LLAMA_MMPROJ_FILE": "", "LLAMA_N_CPU_MOE": "30", "ROUTER_VISION_TIERS": "tier_low",
}  # fmt: skip


def test_start_refuses_a_plan_that_does_not_fit_and_shows_the_numbers(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--dry-run", **OLD_16GB_PLAN)
    assert out.returncode == 1
    assert "GPU memory plan in .env.example does not fit this card" in out.stderr
    # The planner's own table, engine by engine, and why vLLM cannot start.
    assert "weights  per_layer_embeddings" in out.stdout and "5.25 GiB" in out.stdout
    assert "No available memory for the cache blocks" in out.stdout
    assert "Raise VLLM_GPU_MEMORY_UTILIZATION" in out.stdout
    assert "nothing was started" in out.stderr


def test_start_counts_what_other_processes_hold_on_the_card(box: Sandbox) -> None:
    box.gpu()
    box.models()
    # The 16 GB plan leaves 1.17 GiB: room for a headless driver's few MiB, not a desktop's.
    assert box.run("start.sh", "--dry-run", STUB_GPU_USED="100").returncode == 0
    out = box.run("start.sh", "--dry-run", STUB_GPU_USED="1536")  # a desktop session, say
    assert out.returncode == 1
    assert "1.50 GiB already used by other processes" in out.stdout


def test_start_accepts_the_24gb_profile_on_a_24gb_card(box: Sandbox) -> None:
    box.gpu(GPU_24GB)
    box.models()
    env = {**PROFILES["24gb"].values, "VLLM_KV_CACHE_DTYPE": "fp8"}
    out = box.run("start.sh", "--dry-run", **env)
    assert "the plan fits this card" in out.stdout, out.stdout + out.stderr


MEMINFO_24GB = "MemTotal:       24576000 kB\nMemAvailable:   20971520 kB\n"


def test_start_cpu_profile_needs_no_gpu_and_runs_both_tiers_on_llama_cpp(box: Sandbox) -> None:
    # No nvidia-smi on PATH and no nvidia runtime in Docker: a laptop with Docker alone.
    models = box.root / "docker/llama-cpp/models"
    (models / "gemma-4-E2B-it-Q4_K_M.gguf").write_bytes(b"GGUF")
    (models / "gemma-4-E4B-it-Q4_K_M.gguf").write_bytes(b"GGUF")
    box.retrieval_models()
    meminfo = box.root / "meminfo"
    meminfo.write_text(MEMINFO_24GB)
    out = box.run("start.sh", "--profile", "cpu", "--dry-run",
                  STUB_RUNTIMES='{"runc":{}}', STRATUM_MEMINFO=str(meminfo))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "would create .env from .env.example with the cpu profile" in out.stdout
    assert "no GPU and no NVIDIA Container Toolkit needed" in out.stdout
    assert "tier_low: gemma-4-E2B-it-Q4_K_M.gguf" in out.stdout
    assert "the plan fits this machine's free memory" in out.stdout
    assert "Starting tier_low (llama.cpp on CPU, Gemma 4 E2B)" in out.stdout
    # Compose runs with the cpu override, and the CPU image (not the CUDA ones) is checked.
    compose_calls = [
        c
        for c in box.calls(compose_files=True)
        if c.startswith("docker compose --project-directory")
    ]
    assert compose_calls
    assert all(
        c.endswith("COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml") for c in compose_calls
    )
    manifests = {c.split()[-1] for c in box.calls() if c.startswith("docker manifest inspect")}
    assert any(m.endswith(":server-b12464") for m in manifests)
    assert not any("server-cuda" in m or "vllm-openai" in m for m in manifests)


def test_start_cpu_profile_refuses_a_machine_without_the_ram(box: Sandbox) -> None:
    meminfo = box.root / "meminfo"
    meminfo.write_text("MemTotal:        8192000 kB\nMemAvailable:    6291456 kB\n")
    out = box.run("start.sh", "--profile", "cpu", "--dry-run",
                  STUB_RUNTIMES='{"runc":{}}', STRATUM_MEMINFO=str(meminfo))  # fmt: skip
    assert out.returncode == 1
    assert "the RAM plan in .env.example does not fit this machine's free memory" in out.stderr


def test_start_dual_gpu_profile_plans_each_card(box: Sandbox) -> None:
    box.gpu(f"{GPU_16GB};{GPU_16GB}")
    box.models()
    out = box.run("start.sh", "--profile", "dual-16gb", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "GPU 0: NVIDIA GeForce RTX 5060 Ti" in out.stdout
    assert "GPU 1: NVIDIA GeForce RTX 5060 Ti" in out.stdout
    assert "the plan fits these cards" in out.stdout
    # The same profile on one card: llama-server's card is missing.
    box.gpu(GPU_16GB)
    out = box.run("start.sh", "--profile", "dual-16gb", "--dry-run")
    assert out.returncode == 1
    assert "LLAMA_GPU_DEVICE_ID" in out.stdout + out.stderr


def _dotenv(box: Sandbox) -> dict[str, str]:
    values: dict[str, str] = envfile.read_env(box.root / ".env", {})
    return values


def test_a_profile_asked_for_on_a_copied_env_example_is_shown_then_applied(box: Sandbox) -> None:
    """A copied .env.example (the 16 GB profile), then --profile 24gb: start.sh lists what would
    change and, with --yes, changes exactly that; secrets and own lines stay."""
    example = (box.root / ".env.example").read_text()
    mine = example.replace("LITELLM_MASTER_KEY=\n", "LITELLM_MASTER_KEY=sk-mine\n")
    mine += "# my own note\nMY_SETTING=kept # and its comment\n"
    (box.root / ".env").write_text(mine)
    profile = PROFILES["24gb"]
    changed = {
        k: profile.values[k] for k in profile.keys if _dotenv(box).get(k) != profile.values[k]
    }
    assert {"STRATUM_PROFILE", "VLLM_MODEL", "LLAMA_N_CPU_MOE"} <= changed.keys()

    asked = box.run("start.sh", "--profile", "24gb", "--env-only")  # no terminal, no --yes
    assert asked.returncode == 1
    assert ".env holds the 16gb profile, not 24gb; --profile 24gb changes:" in asked.stdout
    for key, value in changed.items():
        assert re.search(
            rf"^    {key} +.* ->  {re.escape(value or '(empty)')}$", asked.stdout, re.M
        )
    assert "Run again with --yes to apply the 24gb profile" in asked.stderr
    assert (box.root / ".env").read_text() == mine  # nothing changed

    dry = box.run("start.sh", "--profile", "24gb", "--dry-run")
    assert f"would apply these {len(changed)} changes to .env" in dry.stdout
    assert (box.root / ".env").read_text() == mine

    applied = box.run("start.sh", "--profile", "24gb", "--env-only", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"applied the 24gb profile to .env ({len(changed)} settings changed)" in applied.stdout
    after = _dotenv(box)
    assert {k: after[k] for k in profile.keys} == {k: profile.values[k] for k in profile.keys}
    assert after["LITELLM_MASTER_KEY"] == "sk-mine" and after["MY_SETTING"] == "kept"
    assert "# my own note\nMY_SETTING=kept # and its comment\n" in (box.root / ".env").read_text()

    again = box.run("start.sh", "--profile", "24gb", "--env-only")
    assert again.returncode == 0 and "ok    .env holds the 24gb profile" in again.stdout


def test_switching_to_the_cpu_profile_switches_the_compose_files_too(box: Sandbox) -> None:
    assert box.run("start.sh", "--env-only").returncode == 0  # a new .env: 16gb
    assert _dotenv(box)["STRATUM_PROFILE"] == "16gb"
    out = box.run("start.sh", "--profile", "cpu", "--env-only", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"COMPOSE_FILE +docker-compose.yml  ->  docker-compose.yml:docker-compose.cpu.yml",
                     out.stdout)  # fmt: skip
    env = _dotenv(box)
    assert env["STRATUM_PROFILE"] == "cpu"
    assert env["COMPOSE_FILE"] == "docker-compose.yml:docker-compose.cpu.yml"


def test_an_env_that_edited_its_profile_is_shown_what_the_profile_sets_back(box: Sandbox) -> None:
    assert box.run("start.sh", "--env-only").returncode == 0
    with (box.root / ".env").open("a") as env:
        env.write("LLAMA_N_CPU_MOE=26\n")
    out = box.run("start.sh", "--profile", "16gb", "--env-only")
    assert out.returncode == 1
    assert "set up for the 16gb profile, with lines changed since" in out.stdout
    assert re.search(r"LLAMA_N_CPU_MOE +26  ->  27", out.stdout)


@pytest.mark.parametrize("key", ["BIND_ADDRESS", "WEBUI_BIND_ADDRESS"])
def test_start_refuses_the_retired_bind_setting_and_says_what_replaces_it(
    box: Sandbox, key: str
) -> None:
    assert box.run("start.sh", "--env-only").returncode == 0
    with (box.root / ".env").open("a") as env:
        env.write(f"{key}=0.0.0.0\n")
    before = (box.root / ".env").read_text()
    for args in (["--dry-run"], ["--profile", "cpu", "--yes", "--env-only"]):
        out = box.run("start.sh", *args)
        assert out.returncode == 1 and f"{key} in .env is no longer read" in out.stderr
        assert (box.root / ".env").read_text() == before  # refused before anything changed
    assert "TEAM_BIND_ADDRESS" in out.stderr and "INTERNAL_BIND_ADDRESS" in out.stderr
    assert f"Replace the line {key}=0.0.0.0 in .env" in out.stderr


def test_start_refuses_openwebui_without_login_on_the_teams_network(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--dry-run", WEBUI_AUTH="false")
    assert out.returncode == 1
    assert "WEBUI_AUTH=false in .env with TEAM_BIND_ADDRESS=0.0.0.0" in out.stderr
    out = box.run("start.sh", "--dry-run", WEBUI_AUTH="false", TEAM_BIND_ADDRESS="127.0.0.1")
    assert out.returncode == 0, out.stdout + out.stderr


def test_start_names_an_image_that_cannot_be_pulled_and_how_to_fix_it(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--dry-run", STUB_MISSING_IMAGES="server-cuda-b12464")
    assert out.returncode == 1
    assert "ghcr.io/ggml-org/llama.cpp:server-cuda-b12464@sha256:" in out.stderr
    assert "Set LLAMA_CPP_IMAGE in .env" in out.stderr
    assert "github.com/ggml-org/llama.cpp/pkgs/container/llama.cpp" in out.stderr
    assert "docker manifest inspect" in out.stderr
    assert not any(" up -d" in c for c in box.calls())
    # An image already on this machine needs no registry (an offline restart).
    local = "ghcr.io/ggml-org/llama.cpp:server-cuda-b12464@sha256:ae96e52f8b2106ea82bad786ee2d08bb9b0a8c93403df9c27ae1bf065a118089"
    out = box.run("start.sh", "--dry-run", STUB_MISSING_IMAGES="server-cuda-b12464",
                  STUB_LOCAL_IMAGES=local)  # fmt: skip
    assert out.returncode == 0, out.stderr
    manifests = [c for c in box.calls() if c.startswith("docker manifest inspect")]
    assert len({c.split()[-1] for c in manifests}) == 7  # every image of the stack is checked


def test_start_stops_llama_server_before_it_starts_vllm(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--timeout", "5", STUB_PRESENT="llama-cpp",
                  STUB_STATES=json.dumps({"llama-cpp": "healthy"}))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "holds GPU memory: stopping llama-server first" in out.stdout
    calls = box.calls()
    stop = next(i for i, c in enumerate(calls) if c.endswith(" stop llama-cpp"))
    assert stop < next(i for i, c in enumerate(calls) if c.endswith(" up -d vllm"))


def test_start_checks_docker_compose_and_toolkit(box: Sandbox) -> None:
    box.gpu()
    out = box.run(
        "start.sh", "--dry-run", STUB_COMPOSE_VERSION="2.17.3", STUB_RUNTIMES='{"runc":{}}'
    )
    assert out.returncode == 1
    assert "Compose 2.17.3 is too old" in out.stderr
    assert "NVIDIA Container Toolkit is not configured" in out.stderr
    out = box.run("start.sh", "--dry-run", STUB_DOCKER_DOWN="1")
    assert out.returncode == 1 and "Docker daemon does not answer" in out.stderr


def test_start_reports_busy_ports(box: Sandbox) -> None:
    import socket

    box.gpu()
    box.models()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = box.run("start.sh", "--dry-run", ROUTER_PORT=str(port))
    assert out.returncode == 1
    assert f"port {port} (router) is already in use" in out.stderr


def test_start_generates_secrets_once_and_keeps_them(box: Sandbox) -> None:
    box.gpu()
    box.models()
    first = box.run("start.sh", "--timeout", "5")
    assert first.returncode == 0, first.stdout + first.stderr
    env1 = (box.root / ".env").read_text()
    secrets = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in env1.splitlines()
               if line.split("=", 1)[0] in ("LITELLM_MASTER_KEY", "WEBUI_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD",
                                             "POSTGRES_PASSWORD", "OPENWEBUI_LITELLM_KEY",
                                             "ROUTER_API_KEY")}  # fmt: skip
    assert len(secrets) == 6 and all(len(v) >= 32 for v in secrets.values())
    assert secrets["OPENWEBUI_LITELLM_KEY"].startswith("sk-")
    assert secrets["ROUTER_API_KEY"].startswith("sk-")  # the router always asks for its key
    assert all(c in "0123456789abcdef" for c in secrets["POSTGRES_PASSWORD"])  # safe in a URL
    assert secrets["LITELLM_MASTER_KEY"].startswith("sk-")
    assert oct((box.root / ".env").stat().st_mode)[-3:] == "600"
    ups = [c.split(" up -d ", 1)[1] for c in box.calls() if " up -d " in c]
    assert ups == ["prometheus grafana router", "vllm", "llama-cpp", "embed rerank",
                   "postgres litellm litellm-keys open-webui"]  # fmt: skip
    assert "Stratum is up" in first.stdout and "curl -s http://127.0.0.1:" in first.stdout
    assert "the first account made there is the admin" in first.stdout
    assert "password: GRAFANA_ADMIN_PASSWORD in .env" in first.stdout
    second = box.run("start.sh", "--timeout", "5", STUB_RUNNING="1")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (box.root / ".env").read_text() == env1
    assert "is set (kept)" in second.stdout


def test_start_never_overwrites_a_value_the_user_set(box: Sandbox) -> None:
    box.gpu()
    box.models()
    text = (
        (box.root / ".env.example")
        .read_text()
        .replace("LITELLM_MASTER_KEY=\n", "LITELLM_MASTER_KEY=sk-mine\n")
    )
    (box.root / ".env").write_text(text)
    assert box.run("start.sh", "--timeout", "5").returncode == 0
    assert "LITELLM_MASTER_KEY=sk-mine\n" in (box.root / ".env").read_text()


def test_start_shows_logs_and_a_hint_when_a_service_fails(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--timeout", "5", STUB_STATES=json.dumps({"vllm": "unhealthy"}))
    assert out.returncode == 1
    assert "vllm is unhealthy" in out.stderr
    assert "CUDA out of memory" in out.stderr
    assert "RAISE VLLM_GPU_MEMORY_UTILIZATION" in out.stdout  # the direction that helps
    assert "plan_vram.py check --env .env" in out.stdout
    assert not any(" up -d llama-cpp" in c for c in box.calls())


def test_start_shows_logs_and_a_hint_when_compose_gives_up_on_a_dependency(box: Sandbox) -> None:
    """`compose up -d` exits 1 when a service others depend on turns unhealthy (LiteLLM, whose
    OpenWebUI waits): start.sh says which one, with its log and what to check."""
    box.gpu()
    box.models()
    out = box.run("start.sh", "--timeout", "5", STUB_UP_FAILS="litellm",
                  STUB_STATES=json.dumps({"litellm": "unhealthy"}))  # fmt: skip
    assert out.returncode == 1
    assert "litellm is unhealthy" in out.stderr
    assert "check docker/litellm/config.yaml" in out.stdout
    assert "the stack did not come up" in out.stderr


def test_start_times_out_with_a_clear_message(box: Sandbox) -> None:
    box.gpu()
    box.models()
    out = box.run("start.sh", "--timeout", "0", STUB_DEFAULT_STATE="starting")
    assert out.returncode == 1
    assert "timed out waiting for" in out.stderr


def test_start_without_models_and_no_download(box: Sandbox) -> None:
    box.gpu()
    out = box.run("start.sh", "--no-download")
    assert out.returncode == 1
    assert "download-models.sh" in out.stderr
    # Each missing file is named, the tiers' and the retrieval engines'.
    for missing in ("tier_high GGUF gemma-4-26B_q4_0-it.gguf",
                    "embed GGUF embeddinggemma-300M-qat-Q4_0.gguf",
                    "rerank GGUF bge-reranker-v2-m3-Q4_K_M.gguf"):  # fmt: skip
        assert missing in out.stderr


# -- health-check.sh --------------------------------------------------------------------------------


def _healthy_http(box: Sandbox, **overrides: list[object]) -> str:
    e = box.env
    routes: dict[str, list[object]] = {
        f":{e['ROUTER_PORT']}/health": [200, '{"status": "ok"}', {}],
        f":{e['VLLM_PORT']}/health": [200, "", {}],
        f":{e['VLLM_PORT']}/v1/models": [200, '{"data": [{"id": "gemma-4-e4b"}]}', {}],
        f":{e['LLAMA_CPP_PORT']}/health": [200, '{"status": "ok"}', {}],
        f":{e['LLAMA_CPP_PORT']}/v1/models": [200, '{"data": [{"id": "gemma-4-26b-a4b"}]}', {}],
        f":{e['LITELLM_PORT']}/health/liveliness": [200, "I'm alive!", {}],
        f":{e['LITELLM_PORT']}/health/readiness": [
            200,
            '{"status": "healthy", "db": "connected"}',
            {},
        ],
        f":{e['WEBUI_PORT']}/health": [200, '{"status": true}', {}],
        f":{e['PROMETHEUS_PORT']}/-/healthy": [200, "ok", {}],
        f":{e['GRAFANA_PORT']}/api/health": [200, "{}", {}],
        f":{e['ROUTER_PORT']}/v1/chat/completions#tier_low": [
            200,
            "{}",
            {"x-router-tier": "tier_low"},
        ],
        f":{e['ROUTER_PORT']}/v1/chat/completions#tier_high": [
            200,
            "{}",
            {"x-router-tier": "tier_high"},
        ],
        f":{e['EMBED_PORT']}/health": [200, '{"status": "ok"}', {}],
        f":{e['EMBED_PORT']}/v1/models": [200, '{"data": [{"id": "embeddinggemma-300m"}]}', {}],
        f":{e['RERANK_PORT']}/health": [200, '{"status": "ok"}', {}],
        f":{e['RERANK_PORT']}/v1/models": [200, '{"data": [{"id": "bge-reranker-v2-m3"}]}', {}],
        f":{e['ROUTER_PORT']}/v1/embeddings": [200, '{"data": [{"embedding": [0.1]}]}', {}],
        f":{e['ROUTER_PORT']}/v1/rerank": [200, '{"results": [{"relevance_score": 1}]}', {}],
    }
    routes.update(overrides)
    return json.dumps(routes)


def test_health_check_all_up(box: Sandbox) -> None:
    box.stub("curl", CURL_STUB)
    out = box.run("health-check.sh", STUB_HTTP=_healthy_http(box))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "CONTAINER", "HTTP", "DETAIL"]
    assert any(line.startswith("vllm") and "model gemma-4-e4b loaded" in line for line in lines)
    assert any(
        line.startswith("request:tier_high") and "answered by tier_high" in line for line in lines
    )
    for name in ("request:embeddings", "request:rerank"):
        assert any(line.startswith(name) and "answered through the router" in line
                   for line in lines)  # fmt: skip
    assert any(line.startswith("embed ") and "embeddinggemma-300m loaded" in line for line in lines)


def test_health_check_fails_when_the_embedding_engine_is_down(box: Sandbox) -> None:
    box.stub("curl", CURL_STUB)
    routes = json.loads(_healthy_http(box))
    del routes[f":{box.env['EMBED_PORT']}/health"]
    routes[f":{box.env['ROUTER_PORT']}/v1/embeddings"] = [503, '{"error": {}}', {}]
    out = box.run("health-check.sh", STUB_HTTP=json.dumps(routes))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(line.startswith("embed ") and "not reachable" in line and "FAIL" in line
               for line in lines)  # fmt: skip
    assert any(line.startswith("request:embeddings") and "FAIL" in line for line in lines)


def test_health_check_expects_the_cpu_profiles_models_there(box: Sandbox) -> None:
    box.stub("curl", CURL_STUB)
    e = box.env
    cpu_models = {
        f":{e['VLLM_PORT']}/v1/models": [200, '{"data": [{"id": "gemma-4-e2b"}]}', {}],
        f":{e['LLAMA_CPP_PORT']}/v1/models": [200, '{"data": [{"id": "gemma-4-e4b"}]}', {}],
    }
    out = box.run("health-check.sh", "--no-requests", STUB_HTTP=_healthy_http(box, **cpu_models))
    assert out.returncode == 1  # a GPU .env expects the E4B and the 26B there
    out = box.run("health-check.sh", "--no-requests", STRATUM_PROFILE="cpu",
                  STUB_HTTP=_healthy_http(box, **cpu_models))  # fmt: skip
    assert out.returncode == 0, out.stdout
    assert "model gemma-4-e2b loaded" in out.stdout and "model gemma-4-e4b loaded" in out.stdout


def test_stop_uses_the_cpu_compose_file_for_a_cpu_env(box: Sandbox) -> None:
    (box.root / ".env").write_text("STRATUM_PROFILE=cpu\n")
    assert box.run("stop.sh").returncode == 0
    downs = [c for c in box.calls(compose_files=True) if "down --remove-orphans" in c]
    assert downs and downs[0].endswith("COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml")


def test_stop_uses_the_compose_files_env_names(box: Sandbox) -> None:
    (box.root / ".env").write_text(
        "STRATUM_PROFILE=cpu\nCOMPOSE_FILE=docker-compose.yml:mine.yml\n"
    )
    assert box.run("stop.sh").returncode == 0
    downs = [c for c in box.calls(compose_files=True) if "down --remove-orphans" in c]
    assert downs and downs[0].endswith("COMPOSE_FILE=docker-compose.yml:mine.yml")


@pytest.mark.parametrize(
    ("profile", "files"),
    [("cpu", "docker-compose.yml:docker-compose.cpu.yml"), ("16gb", "docker-compose.yml")],
)
def test_start_records_the_profiles_compose_files_in_env(
    box: Sandbox, profile: str, files: str
) -> None:
    """So `docker compose ps` / `logs` / `up -d`, run by hand in the folder, see the same stack."""
    out = box.run("start.sh", "--profile", profile, "--env-only")
    assert out.returncode == 0, out.stdout + out.stderr
    env = (box.root / ".env").read_text()
    assert re.findall(r"^COMPOSE_FILE=(.*)$", env, re.M) == [files]
    assert not [c for c in box.calls() if c.startswith("docker compose") and " up " in c]
    # An older .env without the line gets it on the next start; one the user set is kept.
    (box.root / ".env").write_text(env.replace(f"COMPOSE_FILE={files}\n", ""))
    assert box.run("start.sh", "--env-only").returncode == 0
    assert f"\nCOMPOSE_FILE={files}\n" in (box.root / ".env").read_text()


def test_start_refuses_a_cpu_env_whose_compose_files_lack_the_cpu_override(box: Sandbox) -> None:
    assert box.run("start.sh", "--profile", "cpu", "--env-only").returncode == 0
    env = box.root / ".env"
    env.write_text(env.read_text() + "COMPOSE_FILE=docker-compose.yml\n")
    out = box.run("start.sh", "--dry-run")
    assert out.returncode == 1
    assert "the cpu profile needs docker-compose.cpu.yml in COMPOSE_FILE" in out.stderr


def test_retrieval_on_the_gpu_needs_its_compose_file_and_a_gpu_profile(box: Sandbox) -> None:
    """RETRIEVAL_DEVICE=gpu: COMPOSE_FILE must carry docker-compose.retrieval-gpu.yml (start.sh
    writes it when it writes COMPOSE_FILE; one that disagrees is refused with the fix), and the
    cpu profile cannot have it."""
    assert box.run("start.sh", "--env-only").returncode == 0
    env = box.root / ".env"
    env.write_text(env.read_text() + "RETRIEVAL_DEVICE=gpu\n")
    out = box.run("start.sh", "--dry-run")
    assert out.returncode == 1
    assert "RETRIEVAL_DEVICE=gpu needs docker-compose.retrieval-gpu.yml" in out.stderr
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.retrieval-gpu.yml" in out.stderr
    env.write_text(re.sub(r"^COMPOSE_FILE=.*\n", "", env.read_text(), flags=re.M))
    assert box.run("start.sh", "--env-only").returncode == 0
    files = re.findall(r"^COMPOSE_FILE=(.*)$", env.read_text(), re.M)
    assert files == ["docker-compose.yml:docker-compose.retrieval-gpu.yml"]
    env.write_text(env.read_text() + "RETRIEVAL_DEVICE=cpu\n")  # back, without the file
    out = box.run("start.sh", "--dry-run")
    assert out.returncode == 1 and "but RETRIEVAL_DEVICE is cpu" in out.stderr
    env.unlink()
    assert box.run("start.sh", "--profile", "cpu", "--env-only").returncode == 0
    env.write_text(env.read_text() + "RETRIEVAL_DEVICE=gpu\n")
    out = box.run("start.sh", "--dry-run")
    assert out.returncode == 1 and "the cpu profile has no GPU" in out.stderr


def test_lines_appended_to_env_win_as_they_do_for_compose(box: Sandbox) -> None:
    """`cat artifacts/compose/images.env >> .env` (docs/DEVELOPMENT.md): the scripts read the
    last value."""
    assert box.run("start.sh", "--profile", "cpu", "--env-only").returncode == 0
    env = box.root / ".env"
    env.write_text(env.read_text() + "LITELLM_IMAGE=example/litellm:local\n")
    box.run("start.sh", "--dry-run")
    inspected = [c for c in box.calls() if c.startswith("docker image inspect")]
    assert any(c.endswith("example/litellm:local") for c in inspected), inspected


def test_health_check_fails_when_a_tier_is_down(box: Sandbox) -> None:
    box.stub("curl", CURL_STUB)
    e = box.env
    routes = json.loads(_healthy_http(box))
    del routes[f":{e['LLAMA_CPP_PORT']}/health"]
    routes[f":{e['ROUTER_PORT']}/v1/chat/completions#tier_high"] = [
        200,
        "{}",
        {"x-router-tier": "tier_low"},
    ]
    out = box.run("health-check.sh", "--json", STUB_HTTP=json.dumps(routes))
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False
    by_name = {s["service"]: s for s in report["services"]}
    assert by_name["llama-cpp"]["ok"] is False and by_name["llama-cpp"]["http"] == "000"
    assert "degraded" in by_name["request:tier_high"]["detail"]
    assert by_name["vllm"]["ok"] is True


def test_health_check_fails_when_litellm_has_no_database(box: Sandbox) -> None:
    box.stub("curl", CURL_STUB)
    routes = json.loads(_healthy_http(box))
    routes[f":{box.env['LITELLM_PORT']}/health/readiness"] = [
        200,
        '{"status": "healthy", "db": "Not connected"}',
        {},
    ]
    out = box.run("health-check.sh", "--no-requests", STUB_HTTP=json.dumps(routes))
    assert out.returncode == 1
    line = next(line for line in out.stdout.splitlines() if line.startswith("litellm-db"))
    assert "team keys fail" in line


def test_health_check_optional_services_only_warn(box: Sandbox) -> None:
    box.stub("curl", CURL_STUB)
    routes = json.loads(_healthy_http(box))
    del routes[f":{box.env['GRAFANA_PORT']}/api/health"]
    out = box.run("health-check.sh", "--no-requests", STUB_HTTP=json.dumps(routes))
    assert out.returncode == 0
    assert any(line.startswith("grafana") and "warn" in line for line in out.stdout.splitlines())
    assert not any("chat/completions" in c for c in box.calls())


def test_stop_keeps_data_unless_asked(box: Sandbox) -> None:
    out = box.run("stop.sh")
    assert out.returncode == 0
    assert any(c.endswith("down --remove-orphans") for c in box.calls())
    out = box.run("stop.sh", "--volumes")
    assert out.returncode == 1 and "--yes" in out.stderr
    out = box.run("stop.sh", "--volumes", "--yes")
    assert out.returncode == 0
    assert any("down --volumes" in c for c in box.calls())


def test_stop_engines_stops_llama_server_before_vllm_and_nothing_else(box: Sandbox) -> None:
    out = box.run("stop.sh", "--engines")
    assert out.returncode == 0, out.stderr
    stops = [c.rsplit(" ", 2)[-2:] for c in box.calls() if " stop " in c]
    assert stops == [["stop", "llama-cpp"], ["stop", "vllm"]]
    assert not any(" down" in c for c in box.calls())
    assert "start.sh starts vLLM, then llama-server" in out.stdout


def test_install_cuda_dry_run_prints_the_plan(box: Sandbox, tmp_path: Path) -> None:
    osr = tmp_path / "os-release"
    osr.write_text(
        'ID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nPRETTY_NAME="Ubuntu 24.04 LTS"\n'
    )
    box.stub("dpkg", "#!/bin/sh\necho amd64\n")
    out = box.run("install-cuda-linux.sh", "--dry-run", STRATUM_OS_RELEASE=str(osr))
    assert out.returncode == 0, out.stderr
    assert "would run: apt-get install -y nvidia-driver-580-open" in out.stdout
    assert "would run: nvidia-ctk runtime configure --runtime=docker" in out.stdout
    assert "docker run --rm --gpus all" in out.stdout
    box.gpu()
    box.stub("nvidia-ctk", "#!/bin/sh\necho 'NVIDIA Container Toolkit CLI version 1.17.8'\n")
    out = box.run("install-cuda-linux.sh", "--dry-run", STRATUM_OS_RELEASE=str(osr))
    assert "driver 580.95.05 is installed and loaded: skipping" in out.stdout
    assert "nvidia-driver-580-open" not in out.stdout
    # The CUDA 13 vLLM image needs 580.65.06 (start.sh refuses less): an older 580 is upgraded.
    box.gpu("NVIDIA GeForce RTX 5060 Ti, 16311, 12.0, 580.20.00")
    out = box.run("install-cuda-linux.sh", "--dry-run", STRATUM_OS_RELEASE=str(osr))
    assert "driver 580.20.00 is older than 580.65.06: upgrading" in out.stderr
    assert "would run: apt-get install -y nvidia-driver-580-open" in out.stdout
    osr.write_text('ID=fedora\nVERSION_ID="41"\nPRETTY_NAME="Fedora 41"\n')
    out = box.run("install-cuda-linux.sh", "--dry-run", STRATUM_OS_RELEASE=str(osr))
    assert out.returncode == 1 and "Ubuntu 22.04 and 24.04" in out.stderr


def test_download_helper_says_clearly_when_offline(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/download_models.py"), "--gguf-repo", "ggml-org/gemma-4-26B-A4B-it-GGUF",
         "--gguf-file", "gemma-4-26B-A4B-it-Q4_K_M.gguf", "--gguf-dir", str(tmp_path / "m"),
         "--vllm-model", "google/gemma-4-E4B-it", "--hf-cache", str(tmp_path / "hf"), "--dry-run"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hfhome")},
    )  # fmt: skip
    assert out.returncode == 1
    assert "cannot reach the Hugging Face Hub" in out.stderr
    assert "Traceback" not in out.stderr


def test_download_helper_refuses_a_hub_file_other_than_the_planned_one() -> None:
    """The default 26B file and its projector are pinned by size and SHA-256 (the plan was made
    for them): a Hub answer that differs stops the download with what to do."""
    repo, name = "google/gemma-4-26B-A4B-it-qat-q4_0-gguf", "gemma-4-26B_q4_0-it.gguf"
    size, sha = download_models.PINNED[(repo, name)]
    download_models.check_pinned(
        download_models.RemoteFile(repo, name, size, sha)
    )  # the planned file: fine
    download_models.check_pinned(
        download_models.RemoteFile("ggml-org/gemma-4-26B-A4B-it-GGUF", "x.gguf", 1, None)
    )
    with pytest.raises(
        download_models.DownloadError, match="not the file this release was checked against"
    ):
        download_models.check_pinned(download_models.RemoteFile(repo, name, size + 2144, "0" * 64))
