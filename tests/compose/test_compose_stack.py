"""The cpu profile under a real Docker engine, started and used as a user would.

`bash scripts/start.sh --profile cpu --yes` starts the stack from a copy of this checkout, on
images built here (tests/compose/images/build.sh: each a stand-in for its upstream image, which
no registry here can serve) and tiny generated GGUFs under the file names the profile expects.
Then the tests do what its users do: health-check.sh, curl on the router with its key, LiteLLM
with a key, OpenWebUI in Chromium (first user, a streamed chat), a teammate's laptop in a network
namespace of its own (what it reaches, what refuses it), Prometheus and the dashboards' queries,
the documented `docker compose` commands, stop and start again, and a crashed engine.

Two things do not run as shipped, and only these (tests/compose/litellm-without-database.yml):
- Grafana: no package of it in any registry these machines reach. Its image is a stand-in that
  answers Grafana's health endpoint: it proves where the port is published (the teammate reaches
  it), not Grafana's login, whose settings tests/test_compose.py checks statically; the
  dashboards' queries run against the real Prometheus.
- LiteLLM's database mode: Prisma's engines cannot be downloaded here. LiteLLM runs without
  DATABASE_URL (master key only); PostgreSQL itself runs and keeps its data.

Everything the containers log is kept in artifacts/compose/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from e2eutil import EASY_PROMPT, HARD_PROMPT, litellm_traffic, metric_sum, scrape
from playwright.sync_api import sync_playwright
from stackutil import ROOT, require, require_tool
from test_e2e_browser import CHROMIUM_ARGS, SocketDeltas, message_id
from test_e2e_observability import dashboard_queries

from adaptive_router.testing.processes import wait_until
from stratum_tools.tiny_gguf import write_tiny_llama

ARTIFACTS = ROOT / "artifacts" / "compose"
OVERRIDE = "tests/compose/litellm-without-database.yml"
# Appended to .env after the images' lines: the files and a project name of the test's own, so a
# stack of the user's on this machine (project "stratum") is never touched.
TEST_ENV = (
    f"COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml:{OVERRIDE}\n"
    "COMPOSE_PROJECT_NAME=stratum-compose-test\n"
)
ROUTER = "http://127.0.0.1:9000"
LITELLM = "http://127.0.0.1:4000"
WEBUI = "http://127.0.0.1:3000"
PROMETHEUS = "http://127.0.0.1:9090"
WEBUI_USER = {"name": "Ada Admin", "email": "ada@example.com", "password": "compose-test-pass"}
# The user each service's main process runs as: its upstream image's (see images/*.Dockerfile).
# llama.cpp's server, LiteLLM and OpenWebUI images run as root upstream (no USER line, USER root,
# UID=0 by default); everything else must not.
PROCESS_UIDS = {
    "router": 10001,  # router/Dockerfile: useradd --uid 10001
    "prometheus": 65534,  # prom/prometheus: USER nobody
    "postgres": 70,  # postgres:17-alpine: uid 70, gosu from root
    "grafana": 472,  # grafana/grafana: uid 472
    "vllm": 0,  # cpu profile: llama.cpp's server image, root upstream
    "llama-cpp": 0,
    "embed": 0,  # the retrieval engines: the same image
    "rerank": 0,
    "litellm": 0,
    "open-webui": 0,
}


@dataclass
class Stack:
    """The checkout the stack runs from, and ways to run what a user runs there."""

    root: Path

    def run(
        self, *argv: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        env["NO_COLOR"] = "1"
        out = subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, timeout=timeout, env=env
        )
        with (ARTIFACTS / "commands.log").open("a") as log:
            log.write(f"$ {' '.join(argv)}  (exit {out.returncode})\n{out.stdout}{out.stderr}\n")
        if check and out.returncode != 0:
            tail = f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
            pytest.fail(f"{' '.join(argv)} exited {out.returncode}:\n{tail}")
        return out

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`docker compose ...` exactly as typed in the folder: the files come from .env."""
        return self.run("docker", "compose", *args, check=check)

    def dotenv(self, key: str) -> str:
        values = re.findall(rf"^{key}=(.*)$", (self.root / ".env").read_text(), re.M)
        return values[-1] if values else ""

    def container(self, service: str) -> str:
        return self.compose("ps", "-aq", service).stdout.strip()

    def services(self) -> dict[str, dict[str, Any]]:
        out = self.compose("ps", "-a", "--format", "json").stdout
        rows = (
            json.loads(out)
            if out.lstrip().startswith("[")
            else [json.loads(line) for line in out.splitlines() if line.strip()]
        )
        return {row["Service"]: row for row in rows}

    def wait_healthy(self, timeout: float = 300) -> None:
        def healthy() -> bool:
            rows = self.services()
            return all(
                row["Health"] == "healthy"
                or (service == "litellm-keys" and row["State"] == "exited")
                for service, row in rows.items()
            )

        wait_until(healthy, timeout, "every service to be healthy", interval=2.0)

    def save_logs(self, name: str) -> None:
        logs = self.compose("logs", "--no-color", "--timestamps", check=False)
        (ARTIFACTS / "logs").mkdir(exist_ok=True)
        (ARTIFACTS / "logs" / f"{name}.log").write_text(logs.stdout + logs.stderr)


def copy_checkout(dest: Path) -> None:
    """The working tree's files (tracked, and new ones git does not ignore) into dest."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def docker_engine() -> str:
    docker = require_tool("docker")
    answers = subprocess.run([docker, "info"], capture_output=True).returncode == 0
    require(docker if answers else None, "a Docker engine", "start dockerd (.ci/run does)")
    return docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    docker_engine()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "commands.log").write_text("")
    build = subprocess.run(
        ["bash", "tests/compose/images/build.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    (ARTIFACTS / "build.log").write_text(build.stdout + build.stderr)
    assert build.returncode == 0, f"the images did not build:\n{build.stderr[-3000:]}"

    root = tmp_path_factory.mktemp("checkout") / "stratum"
    copy_checkout(root)
    models = root / "docker" / "llama-cpp" / "models"
    write_tiny_llama(models / "gemma-4-E2B-it-Q4_K_M.gguf", seed=1)
    write_tiny_llama(models / "gemma-4-E4B-it-Q4_K_M.gguf", seed=2)
    # The retrieval engines' file names (.env.example), tiny llama models in their modes.
    write_tiny_llama(models / "embeddinggemma-300M-qat-Q4_0.gguf", seed=3)
    write_tiny_llama(models / "bge-reranker-v2-m3-Q4_K_M.gguf", seed=4)
    s = Stack(root)
    # As docs/DEVELOPMENT.md says: create .env for the profile, point it at the images built
    # here, start.
    s.run("bash", "scripts/start.sh", "--profile", "cpu", "--env-only")
    with (root / ".env").open("a") as env:
        env.write((ARTIFACTS / "images.env").read_text() + TEST_ENV)
    s.compose("down", "--volumes", "--remove-orphans")  # what a run killed half-way left
    try:
        start = s.run(
            "bash", "scripts/start.sh", "--yes", "--timeout", "900", timeout=1200, check=False
        )
        (ARTIFACTS / "start.log").write_text(start.stdout + start.stderr)
        if start.returncode != 0:
            # start.sh's RAM plan refused the stack here when pytest itself held 8.6 GB (an app's
            # model per test app, kept alive by FastAPI's caches; fixed in adaptive_router.model):
            # say what holds the memory, beside start.sh's own words.
            pytest.fail(
                f"scripts/start.sh --yes exited {start.returncode}:\n{start.stdout[-3000:]}\n"
                f"{start.stderr[-3000:]}\n{memory_snapshot()}"
            )
        yield s
    finally:
        s.save_logs("compose")
        s.run("bash", "scripts/stop.sh", "--volumes", "--yes", check=False)


def memory_snapshot() -> str:
    """MemAvailable and the processes holding the most memory, as `ps` sees them."""
    meminfo = Path("/proc/meminfo").read_text()
    available = re.search(r"^MemAvailable:.*$", meminfo, re.M)
    ps = subprocess.run(
        ["ps", "-eo", "rss,pid,args", "--sort=-rss"], capture_output=True, text=True, check=False
    )
    top = "\n".join(line[:160] for line in ps.stdout.splitlines()[:11])
    return f"{available.group() if available else 'MemAvailable: ?'}\n{top}"


def curl_chat(
    stack: Stack, model: str, prompt: str, key: str | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A chat request to the router with curl and its key (ROUTER_API_KEY in .env, as a script on
    the server sends it): status, headers, body."""
    key = stack.dotenv("ROUTER_API_KEY") if key is None else key
    out = subprocess.run(
        ["curl", "-s", "-D", "-", "-m", "120", f"{ROUTER}/v1/chat/completions",
         "-H", "content-type: application/json", "-H", f"Authorization: Bearer {key}",
         "-d", json.dumps({"model": model, "max_tokens": 8,
                           "messages": [{"role": "user", "content": prompt}]})],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines()[1:])
    }
    return status, headers, json.loads(body)


def test_start_brings_every_service_up_healthy(stack: Stack) -> None:
    rows = stack.services()
    assert set(rows) == {
        "vllm", "llama-cpp", "embed", "rerank", "router", "postgres", "litellm", "litellm-keys",
        "open-webui", "prometheus", "grafana",
    }  # fmt: skip
    for service, row in rows.items():
        if service == "litellm-keys":  # a one-shot: ran and exited 0
            assert row["State"] == "exited" and "(0)" in row["Status"], row
        else:
            assert row["State"] == "running" and row["Health"] == "healthy", row
    # The cpu profile's engines run llama.cpp's CPU server image with the profile's models.
    image = stack.dotenv("LLAMA_CPP_CPU_IMAGE")
    assert rows["vllm"]["Image"] == rows["llama-cpp"]["Image"] == image
    assert rows["embed"]["Image"] == rows["rerank"]["Image"] == image  # retrieval on the CPU


def test_health_check_passes_but_for_litellms_database(stack: Stack) -> None:
    out = stack.run("bash", "scripts/health-check.sh", "--json", check=False)
    report = json.loads(out.stdout)
    failed = [s["service"] for s in report["services"] if not s["ok"]]
    # LiteLLM runs without its database here (see the module docstring): that line, alone.
    assert failed == ["litellm-db"], report
    lines = {s["service"]: s["detail"] for s in report["services"]}
    assert lines["request:tier_low"] == "answered by tier_low"
    assert lines["request:tier_high"] == "answered by tier_high"
    assert lines["request:embeddings"] == lines["request:rerank"] == "answered through the router"


def test_the_router_routes_gemma4_fast_both_ways_and_gemma4_smart_to_tier_high(
    stack: Stack,
) -> None:
    for model, prompt, tier, reason in [
        ("gemma4-fast", EASY_PROMPT, "tier_low", "complexity"),
        ("gemma4-fast", HARD_PROMPT, "tier_high", "complexity"),
        ("gemma4-smart", EASY_PROMPT, "tier_high", "override"),
    ]:
        status, headers, body = curl_chat(stack, model, prompt)
        assert status == 200, body
        assert (headers["x-router-tier"], headers["x-router-reason"]) == (tier, reason), headers
        assert body["model"] == model  # the engine's name is mapped back
        assert body["choices"][0]["message"]["content"] is not None
    # The router always asks for its key in the stack (start.sh generated it into .env).
    status, _, body = curl_chat(stack, "gemma4-fast", EASY_PROMPT, key="")
    assert status == 401 and body["error"]["code"] == "invalid_api_key", body


def test_litellm_answers_a_key_holder_and_refuses_anyone_else(stack: Stack) -> None:
    key = stack.dotenv("LITELLM_MASTER_KEY")
    sdk = openai.OpenAI(base_url=LITELLM + "/v1", api_key=key, max_retries=0)
    reply = sdk.chat.completions.create(
        model="gemma4-fast", messages=[{"role": "user", "content": HARD_PROMPT}], max_tokens=8
    )
    assert reply.choices[0].message.content is not None
    streamed = sdk.chat.completions.create(
        model="gemma4-smart",
        messages=[{"role": "user", "content": EASY_PROMPT}],
        max_tokens=8,
        stream=True,
    )
    assert sum(1 for _ in streamed) >= 2
    stranger = openai.OpenAI(base_url=LITELLM + "/v1", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        stranger.chat.completions.create(
            model="gemma4-fast", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    # Without its database LiteLLM cannot look a virtual key up: 400 "No connected db." (with
    # the database, as shipped: 401).
    assert refused.value.status_code == 400 and "No connected db" in str(refused.value)


def test_a_key_holder_embeds_and_reranks_through_litellm(stack: Stack) -> None:
    """The retrieval engines in their containers, reached by service name from the router's,
    with LiteLLM's model names and a key, as a team's RAG code calls them."""
    key = stack.dotenv("LITELLM_MASTER_KEY")
    sdk = openai.OpenAI(base_url=LITELLM + "/v1", api_key=key, max_retries=0)
    vectors = sdk.embeddings.create(model="gemma-embed", input=["first text", "second text"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 64  # the tiny n_embd
    r = httpx.post(
        LITELLM + "/v1/rerank",
        json={"model": "gemma-rerank", "query": "panda", "documents": ["a", "b", "c"]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    scores = [x["relevance_score"] for x in r.json()["results"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    health = httpx.get(ROUTER + "/health", timeout=10).json()
    assert {k: v["state"] for k, v in health["retrieval"].items()} == {
        "embed": "up",
        "rerank": "up",
    }


def test_openwebui_first_user_chats_and_the_reply_streams(stack: Stack) -> None:
    before = scrape(ROUTER)
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=require_tool("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        socket = SocketDeltas(page)
        try:
            # A new install: OpenWebUI asks for its first (admin) account.
            page.goto(WEBUI + "/")
            page.get_by_role("button", name="Get started").click()
            page.get_by_placeholder("Enter Your Full Name").fill(WEBUI_USER["name"])
            page.get_by_placeholder("Enter Your Email").fill(WEBUI_USER["email"])
            page.get_by_placeholder("Enter Your Password").fill(WEBUI_USER["password"])
            page.screenshot(path=str(shots / "openwebui-first-user.png"))
            page.get_by_role("button", name="Create Admin Account").click()
            page.locator("#chat-input").wait_for(timeout=60_000)
            whats_new = page.get_by_role("button", name="Okay, Let's Go!")
            if whats_new.count():
                whats_new.click()
            assert (
                page.locator("#model-selector-model-button").inner_text().strip() == "gemma4-fast"
            )
            page.locator("#chat-input").click()
            page.keyboard.type(HARD_PROMPT)
            page.keyboard.press("Enter")
            message = page.locator("div[id^='message-']:has(.chat-assistant)").last
            reply = message.locator("#response-content-container")
            reply.wait_for(timeout=60_000)
            message.locator("button[aria-label='Copy']").wait_for(timeout=120_000)
            page.screenshot(path=str(shots / "openwebui-chat.png"))
            assert reply.inner_text().strip(), "a reply is on screen"
            pieces = socket.of(message_id(message))
            assert len(pieces) >= 2, f"the reply reached the page in one piece: {pieces!r:.200}"
        finally:
            browser.close()

    def grown(**labels: str) -> float:
        return metric_sum(scrape(ROUTER), "router_requests_total", **labels) - metric_sum(
            before, "router_requests_total", **labels
        )

    assert grown(model="gemma4-fast", tier="tier_high") == 1  # the hard question, routed
    # OpenWebUI's background tasks (title, tags, follow-ups: its defaults, on) come as
    # gemma4-tasks (router model tier_low) and are all answered by tier_low.
    wait_until(lambda: grown(model="tier_low") >= 3, 120, "OpenWebUI's background tasks")
    assert grown(model="tier_low", tier="tier_low") == grown(model="tier_low")
    assert grown(tier="tier_high") == 1


def test_prometheus_scrapes_every_service_by_its_compose_name(stack: Stack) -> None:
    def targets() -> list[dict[str, Any]]:
        return list(httpx.get(PROMETHEUS + "/api/v1/targets").json()["data"]["activeTargets"])

    wait_until(lambda: all(t["health"] == "up" for t in targets()), 60, "every target up")
    scraped = {t["labels"]["job"]: httpx.URL(t["scrapeUrl"]).host for t in targets()}
    assert scraped == {
        "router": "router", "vllm": "vllm", "llama-cpp": "llama-cpp", "embed": "embed",
        "rerank": "rerank", "litellm": "litellm", "prometheus": "localhost",
    }  # fmt: skip
    # Prometheus reads LiteLLM with the master key from the compose secret; anyone else who
    # reaches port 4000 without a key does not.
    assert httpx.get(LITELLM + "/metrics/", timeout=10).status_code == 401


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    """Grafana cannot run here: each panel's query runs against the stack's real Prometheus,
    after traffic through LiteLLM. vLLM's panels stay empty in the cpu profile (no vLLM) and the
    GPU panels have no GPU to read; both are listed in the artifacts, not evaluated."""
    queries = dashboard_queries()
    evaluated = [q for q in queries if q.needs is None]
    pending = {str(q): q for q in evaluated}

    def all_have_data() -> bool:
        for key, q in list(pending.items()):
            body = httpx.get(PROMETHEUS + "/api/v1/query", params={"query": q.expr}).json()
            assert body["status"] == "success", f"{q}: {body}"
            if body["data"]["result"]:
                del pending[key]
        return not pending

    with litellm_traffic(LITELLM + "/v1", stack.dotenv("LITELLM_MASTER_KEY"), trickle_every_s=0.5):
        try:
            wait_until(all_have_data, 90, "every dashboard query to return data", interval=2.0)
        except TimeoutError:
            pytest.fail("queries without data after traffic:\n" + "\n".join(pending))
    (ARTIFACTS / "dashboard-queries.json").write_text(json.dumps({
        "evaluated": [str(q) for q in evaluated],
        "not_evaluated_needs_vllm": [str(q) for q in queries if q.needs == "vLLM"],
        "not_evaluated_needs_gpu": [str(q) for q in queries if q.needs == "GPU"],
    }, indent=2))  # fmt: skip
    assert len(evaluated) > 20


def test_what_has_a_login_listens_for_the_team_and_the_rest_on_loopback(stack: Stack) -> None:
    published: dict[str, set[str]] = {}
    for service, row in stack.services().items():
        for port in row.get("Publishers") or []:
            if port.get("PublishedPort"):
                published.setdefault(service, set()).add(port["URL"])
    team = {s: published.pop(s) for s in ("open-webui", "litellm", "grafana")}
    assert team == {"open-webui": {"0.0.0.0"}, "litellm": {"0.0.0.0"}, "grafana": {"0.0.0.0"}}
    assert set(published) == {"router", "vllm", "llama-cpp", "embed", "rerank", "prometheus"}
    assert all(urls == {"127.0.0.1"} for urls in published.values()), published


# A teammate's laptop: a network namespace of its own, joined to this machine by a veth pair
# with addresses of the test's own (a /30 no one else uses), as a laptop on the office network
# reaches the server's address.
SERVER_ADDRESS, LAPTOP_ADDRESS = "10.251.25.1", "10.251.25.2"
SDK_CHAT = """
import sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=120)
reply = client.chat.completions.create(model="gemma4-fast", max_tokens=8,
                                       messages=[{"role": "user", "content": "Hello!"}])
print(reply.choices[0].message.content is not None)
"""


@contextmanager
def teammate_laptop() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Runs a command in the laptop's namespace; removes the namespace and the pair after."""
    ip = require_tool("ip")
    require("/" if os.geteuid() == 0 else None, "root (for a network namespace)", "run as root")
    tag = str(os.getpid() % 100000)
    ns, server_end, laptop_end = f"stratum-mate-{tag}", f"smate-s{tag}", f"smate-l{tag}"
    steps = [
        ["netns", "add", ns],
        ["link", "add", server_end, "type", "veth", "peer", "name", laptop_end],
        ["link", "set", laptop_end, "netns", ns],
        ["addr", "add", f"{SERVER_ADDRESS}/30", "dev", server_end],
        ["link", "set", server_end, "up"],
        ["-n", ns, "addr", "add", f"{LAPTOP_ADDRESS}/30", "dev", laptop_end],
        ["-n", ns, "link", "set", laptop_end, "up"],
        ["-n", ns, "link", "set", "lo", "up"],
    ]

    def laptop(*argv: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ip, "netns", "exec", ns, *argv], capture_output=True, text=True,
                              timeout=timeout, env={"PATH": os.environ["PATH"]})  # fmt: skip

    try:
        for step in steps:
            subprocess.run([ip, *step], check=True, capture_output=True)
        yield laptop
    finally:
        subprocess.run([ip, "link", "del", server_end], capture_output=True)
        subprocess.run([ip, "netns", "del", ns], capture_output=True)


def test_a_teammates_laptop_reaches_what_has_a_login_and_nothing_else(stack: Stack) -> None:
    """From another machine's network: the teammate chats through LiteLLM with a key (the
    README's OpenAI SDK line) and opens OpenWebUI's login page and Grafana's port; without a key
    LiteLLM answers 401; the router, the engines and Prometheus refuse the connection.

    The key: scripts/team-keys.sh makes one per person, in LiteLLM's database, which cannot run
    here (module docstring); the script says so, and the teammate uses the master key, the only
    key this LiteLLM has. Team keys themselves: tests/test_team_keys.py. Grafana's image is a
    stand-in: reaching it proves where its port is published, not its login page."""
    made = stack.run("bash", "scripts/team-keys.sh", "create", "--name", "teammate", check=False)
    assert made.returncode != 0 and "LiteLLM has no database" in made.stderr, made.stderr
    key = stack.dotenv("LITELLM_MASTER_KEY")
    server = f"http://{SERVER_ADDRESS}"
    with teammate_laptop() as laptop:
        chat = laptop(sys.executable, "-c", SDK_CHAT, f"{server}:4000/v1", key)
        assert chat.returncode == 0 and chat.stdout.strip() == "True", chat.stderr[-2000:]

        def curl(url: str, *args: str) -> tuple[int, str, str]:
            out = laptop("curl", "-s", "-m", "30", "-w", "\n%{http_code}", *args, url)
            body, _, code = out.stdout.rpartition("\n")
            return out.returncode, code, body

        hello = json.dumps(
            {"model": "gemma4-fast", "messages": [{"role": "user", "content": "hi"}]}
        )
        rc, code, body = curl(f"{server}:4000/v1/chat/completions",
                              "-H", "content-type: application/json", "-d", hello)  # fmt: skip
        assert (rc, code) == (0, "401"), body
        rc, code, body = curl(f"{server}:3000/auth")  # OpenWebUI's sign-in page
        assert (rc, code) == (0, "200") and "<title>Open WebUI</title>" in body, body[:500]
        rc, code, body = curl(f"{server}:3001/api/health")  # the Grafana stand-in's one page
        assert (rc, code) == (0, "200") and "stand-in" in body, body
        refused = {}
        for name, port in (("router", 9000), ("vllm", 8000), ("llama-cpp", 8080),
                           ("embed", 8081), ("rerank", 8082), ("prometheus", 9090)):  # fmt: skip
            refused[name] = curl(f"{server}:{port}/")[0]
        assert refused == dict.fromkeys(refused, 7), refused  # curl 7: connection refused
    # The same ports answer on the server itself.
    assert httpx.get(PROMETHEUS + "/-/healthy", timeout=10).status_code == 200


def test_no_container_runs_as_root_where_its_upstream_image_does_not(stack: Stack) -> None:
    uids = {}
    for service in PROCESS_UIDS:
        pid = stack.run(
            "docker", "inspect", "-f", "{{.State.Pid}}", stack.container(service)
        ).stdout.strip()
        status = Path(f"/proc/{pid}/status").read_text()
        uids[service] = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    assert uids == PROCESS_UIDS


def documented_compose_commands() -> list[str]:
    """Every `docker compose ...` command README.md and docs/ show, as written."""
    found = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found |= set(re.findall(r"`(docker compose [^`]+)`", doc.read_text()))
        found |= {
            m.strip() for m in re.findall(r"^\s*(docker compose [^#\n]+)", doc.read_text(), re.M)
        }
    return sorted(found)


def test_the_documented_docker_compose_commands_work_as_written(stack: Stack) -> None:
    commands = documented_compose_commands()
    assert "docker compose up -d" in commands and "docker compose ps" in commands
    for command in commands:
        argv = command.replace("<service>", "router").split()
        out = stack.run(*argv, check=False)
        assert out.returncode == 0, f"{command}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
        assert "could not select device driver" not in out.stderr
        if argv[2] in ("up", "restart"):
            stack.wait_healthy()
    ps = stack.compose("ps", "--format", "{{.Service}} {{.Image}}").stdout
    assert f"vllm {stack.dotenv('LLAMA_CPP_CPU_IMAGE')}" in ps  # the cpu override, from .env


@contextmanager
def webui_session() -> Iterator[httpx.Client]:
    """Signed in to OpenWebUI as the first user (created here if the browser test did not)."""
    with httpx.Client(base_url=WEBUI, timeout=30) as client:
        creds = {"email": WEBUI_USER["email"], "password": WEBUI_USER["password"]}
        r = client.post("/api/v1/auths/signin", json=creds)
        if r.status_code != 200:
            r = client.post("/api/v1/auths/signup", json=WEBUI_USER)
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        yield client


def test_stop_and_start_keep_the_account_the_chats_and_the_database(stack: Stack) -> None:
    with webui_session() as client:
        chat = {"chat": {"title": "kept across restarts", "messages": []}}
        made = client.post("/api/v1/chats/new", json=chat)
        assert made.status_code == 200, made.text
        chats_before = {c["id"] for c in client.get("/api/v1/chats/").json()}
    psql = ["exec", "-T", "postgres", "psql", "-U", "litellm", "-d", "litellm", "-tA", "-c"]
    stack.compose(
        *psql, "CREATE TABLE stratum_probe (note text); INSERT INTO stratum_probe VALUES ('kept');"
    )

    stack.run("bash", "scripts/stop.sh")
    assert stack.services() == {}
    stack.run("bash", "scripts/start.sh", "--yes", "--timeout", "900", timeout=1200)

    with webui_session() as client:
        assert client.get("/api/v1/auths/").json()["email"] == WEBUI_USER["email"]
        assert chats_before <= {c["id"] for c in client.get("/api/v1/chats/").json()}
    assert stack.compose(*psql, "SELECT note FROM stratum_probe").stdout.strip() == "kept"


def router_tier_state(tier: str) -> str:
    return str(httpx.get(ROUTER + "/health", timeout=5).json()["tiers"][tier]["state"])


def test_a_crashed_tier_high_engine_degrades_then_comes_back_by_itself(stack: Stack) -> None:
    """The engine's process is killed from outside, as the kernel's OOM killer would, while its
    model cannot load, so it stays down (crash-looping) until the file is back; the restart
    policy (unless-stopped) brings it back. (`docker kill` would not test that policy: Docker
    counts it as a manual stop and does not restart the container.)"""
    model = stack.root / "docker" / "llama-cpp" / "models" / "gemma-4-E4B-it-Q4_K_M.gguf"
    hidden = model.with_suffix(".away")
    container = stack.container("llama-cpp")
    restarts = int(stack.run("docker", "inspect", "-f", "{{.RestartCount}}", container).stdout)
    pid = stack.run("docker", "inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
    model.rename(hidden)
    try:
        os.kill(int(pid), 9)
        wait_until(
            lambda: router_tier_state("tier_high") != "up", 60, "the router to see tier_high down"
        )
        status, headers, body = curl_chat(stack, "gemma4-fast", HARD_PROMPT)
        assert status == 200, body
        assert headers["x-router-tier"] == "tier_low"
        assert headers["x-router-degraded"] == "true"
        assert headers["x-router-policy-tier"] == "tier_high"
    finally:
        hidden.rename(model)
    wait_until(
        lambda: router_tier_state("tier_high") == "up", 180, "tier_high back after its restarts"
    )
    assert (
        int(stack.run("docker", "inspect", "-f", "{{.RestartCount}}", container).stdout) > restarts
    )
    status, headers, _ = curl_chat(stack, "gemma4-fast", HARD_PROMPT)
    assert (status, headers["x-router-tier"], headers["x-router-reason"]) == (
        200,
        "tier_high",
        "complexity",
    )
    assert "x-router-degraded" not in headers
