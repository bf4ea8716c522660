"""The engine commands of docker-compose.yml against the engines' own code.

- vLLM: every flag of the command, rendered for each GPU profile, exists in vLLM's argument
  parser with the value form used: read from the pinned version's source distribution (PyPI,
  checked by SHA-256, never built): the flags ``engine/arg_utils.py`` and the frontend's argument
  classes declare (``entrypoints/launchers/cli_args.py`` in 0.29 and 0.31,
  ``entrypoints/common/cli_args.py`` in 0.34: found wherever they are), the types of the config
  fields behind them, the registered tool-call and reasoning parsers, and the modalities Gemma 4
  takes.
- llama-server: the real llama-server the suite builds starts with the command's flags, and a
  tool-calling request through the router comes back as parsed ``tool_calls`` (Gemma 4's own
  chat template, llama-server's own Gemma 4 tool-call parser). The CPU build ignores the GPU
  placement flags (it says so) but parses them; ``--mmproj`` needs a projector file the tiny
  model does not have, so its presence is checked in ``--help`` instead.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import httpx
import pytest
import stack
from e2eutil import router_headers, sse_events
from stackutil import require
from vram.profiles import PROFILES

from adaptive_router.testing.processes import Process, free_port, running
from stratum_tools.compose import compose_argv, compose_command, load_compose_file
from stratum_tools.tiny_gguf import GEMMA4_TOKENS, write_tiny_llama

TEMPLATE = Path(__file__).parent / "data" / "gemma-4-chat-template.jinja"


# -- vLLM ------------------------------------------------------------------------------------------


def vllm_source() -> Path:
    v = stack.versions()["VLLM_VERSION"]
    return require(stack.cache_dir() / f"vllm-src-{v}" / "vllm", f"vLLM {v} source",
                   stack.DEPS_HINT)  # fmt: skip


FRONTEND_ARGS = ("BaseFrontendArgs", "FrontendArgs")


def _frontend_modules(root: Path) -> list[Path]:
    """The modules that declare vllm serve's frontend argument classes, wherever the version at
    hand keeps them (they moved between releases)."""
    declares = re.compile(rf"^class ({'|'.join(FRONTEND_ARGS)})\b", re.M)
    return [
        p for p in sorted((root / "entrypoints").rglob("*.py")) if declares.search(p.read_text())
    ]


@cache
def _classes(root: Path) -> dict[str, tuple[ast.ClassDef, ast.Module, str]]:
    """Every class of the package by name, with the module it is in (first definition wins)."""
    found: dict[str, tuple[ast.ClassDef, ast.Module, str]] = {}
    for path in [*sorted((root / "config").glob("*.py")), *_frontend_modules(root)]:
        text = path.read_text()
        module = ast.parse(text)
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, (node, module, text))
    return found


def _field_annotation(root: Path, cls: str, field: str) -> tuple[str, ast.Module]:
    node, module, _ = _classes(root)[cls]
    for base in [node, *(_classes(root)[b.id][0] for b in node.bases
                         if isinstance(b, ast.Name) and b.id in _classes(root))]:  # fmt: skip
        for item in base.body:
            if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and item.target.id == field):  # fmt: skip
                return ast.unparse(item.annotation), module
    raise AssertionError(f"{cls}.{field} not found")


def _literal(module: ast.Module, alias: str) -> set[str] | None:
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == alias for t in node.targets
        ):
            value = ast.unparse(node.value)
            if value.startswith("Literal["):
                return set(re.findall(r"'([^']*)'", value))
    return None


@cache
def vllm_flags(root: Path) -> dict[str, tuple[str, str]]:
    """``--flag`` -> (config class, field) for every flag vllm serve's parser declares."""
    arg_utils = (root / "engine" / "arg_utils.py").read_text()
    groups = dict(re.findall(r"(\w+)_kwargs = get_kwargs\((\w+)\)", arg_utils))
    flags: dict[str, tuple[str, str]] = {}
    # add_argument("--flag"[, "-f"][, "--alias"...][, dest="..."], **group_kwargs["field"])
    for names, group, field in re.findall(
        r'add_argument\(\s*((?:"-{1,2}[\w-]+"\s*,\s*(?:#[^\n]*\n\s*)?)+)'
        r'(?:\w+="[^"]*"\s*,\s*)*\*\*(?:\{\s*\*\*)?(\w+)_kwargs\["(\w+)"\]',
        arg_utils,
    ):
        for flag in re.findall(r'"(--[\w-]+)"', names):
            flags[flag] = (groups[group], field)
    frontend = [cls for cls in FRONTEND_ARGS if cls in _classes(root)]
    assert frontend, f"no {' or '.join(FRONTEND_ARGS)} class under {root / 'entrypoints'}"
    for cls in frontend:
        node = _classes(root)[cls][0]
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                flags["--" + item.target.id.replace("_", "-")] = (cls, item.target.id)
    return flags


def registered(path: Path) -> set[str]:
    """Names registered in a vLLM parser registry (a dict literal of "name": (...))."""
    return set(re.findall(r'^\s{4}"([\w-]+)": \(', path.read_text(), re.M))


def check_vllm_value(root: Path, flag: str, value: str | None) -> None:
    base, _, key = flag.partition(".")
    flags = vllm_flags(root)
    assert base in flags, f"vLLM {root.parent.name} has no {base}"
    cls, field = flags[base]
    annotation, module = _field_annotation(root, cls, field)
    if key:  # --limit-mm-per-prompt.video 0: a modality Gemma 4 takes, a count
        gemma4 = (root / "model_executor" / "models" / "gemma4_mm.py").read_text()
        limits = re.search(r"def get_supported_mm_limits.*?return limits", gemma4, re.S)
        assert limits and f'"{key}"' in limits.group(0), f"Gemma 4 takes no {key}"
        assert value is not None and int(value) >= 0
        return
    if annotation == "bool":
        assert value is None, f"{flag} is a switch; it takes no value ({value!r})"
        return
    assert value is not None, f"{flag} needs a value ({annotation})"
    if field == "tool_call_parser":
        assert value in registered(root / "tool_parsers" / "__init__.py"), value
    elif field == "reasoning_parser":
        assert value in registered(root / "reasoning" / "__init__.py"), value
    elif field == "quantization":
        quant = ast.parse((root / "model_executor/layers/quantization/__init__.py").read_text())
        assert value in (_literal(quant, "QuantizationMethods") or set()), value
    elif annotation.split(" ")[0] in ("int", "float"):
        float(value) if annotation.startswith("float") else int(value)
    elif (choices := _literal(module, annotation)) is not None:
        assert value in choices, f"{flag} {value}: not one of {sorted(choices)}"
    else:
        assert "str" in annotation, f"{flag}: {annotation} not understood by this test"


def flag_values(argv: list[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            out.append((arg, None if nxt is None or nxt.startswith("--") else nxt))
    return out


VLLM_VARIANTS = {
    **{
        name: dict(p.values) for name, p in PROFILES.items() if p.values["STRATUM_PROFILE"] != "cpu"
    },
    # The settings .env.example documents as alternatives, beside the profiles' own.
    "bf16-with-online-fp8": {
        **PROFILES["24gb"].values,
        "VLLM_MODEL": "google/gemma-4-E4B-it",
        "VLLM_QUANTIZATION_ARGS": "--quantization fp8",
        "VLLM_KV_CACHE_DTYPE": "auto",
    },
}


@pytest.mark.parametrize("variant", sorted(VLLM_VARIANTS))
def test_every_vllm_flag_exists_in_the_pinned_vllm_with_its_value_form(variant: str) -> None:
    root = vllm_source()
    argv = compose_command("vllm", VLLM_VARIANTS[variant])
    checked = flag_values(argv)
    assert len(checked) >= 14
    for flag, value in checked:
        check_vllm_value(root, flag, value)


def test_the_drift_check_catches_a_flag_or_value_vllm_does_not_have() -> None:
    root = vllm_source()
    for flag, value in (("--gpu-memory-fraction", "0.5"), ("--kv-cache-dtype", "fp4"),
                        ("--tool-call-parser", "gemma3x"), ("--enforce-eager", "true"),
                        ("--limit-mm-per-prompt.smell", "0")):  # fmt: skip
        with pytest.raises(AssertionError):
            check_vllm_value(root, flag, value)


def test_the_flag_lookup_follows_the_frontend_arguments_where_a_release_moves_them(
    tmp_path: Path,
) -> None:
    """vLLM 0.34 declares --enable-auto-tool-choice and --tool-call-parser in
    entrypoints/common/cli_args.py, 0.29 in entrypoints/launchers/cli_args.py: the pinned source
    with the module moved there still yields every flag, with the same answers."""
    root = vllm_source()
    moved = tmp_path / "vllm"
    shutil.copytree(root, moved)
    (moved / "entrypoints" / "common").mkdir(exist_ok=True)
    (moved / "entrypoints" / "launchers" / "cli_args.py").rename(
        moved / "entrypoints" / "common" / "cli_args.py"
    )
    assert vllm_flags(moved) == vllm_flags(root)
    check_vllm_value(moved, "--tool-call-parser", "gemma4")
    check_vllm_value(moved, "--enable-auto-tool-choice", None)


def test_compose_pins_the_vllm_version_whose_source_is_checked() -> None:
    compose = (stack.ROOT / "docker-compose.yml").read_text()
    pinned = re.search(r"vllm/vllm-openai:v([\d.]+)", compose)
    assert pinned and pinned.group(1) == stack.versions()["VLLM_VERSION"]


# -- llama-server ----------------------------------------------------------------------------------


# Every llama-server command of every profile: the cpu profile runs llama-server for both tiers.
LLAMA_COMMANDS = [(name, "llama-cpp") for name in PROFILES] + [("cpu", "vllm")]


def compose_llama_argv(
    profile: str, model: Path, port: int, service: str = "llama-cpp"
) -> list[str]:
    """The compose command for this profile, with the container paths and address swapped for
    loopback ones and --mmproj left out."""
    values = PROFILES[profile].values
    files = ("docker-compose.cpu.yml",) if values["STRATUM_PROFILE"] == "cpu" else ()
    swap = {"--model": str(model), "--host": "127.0.0.1", "--port": str(port)}
    return compose_argv(service, values, swap, files, drop=("--mmproj",))


@pytest.fixture(scope="module")
def gemma4_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gemma4") / "gemma-4-vocab-tiny.gguf"
    return write_tiny_llama(path, control_tokens=GEMMA4_TOKENS)


@pytest.mark.parametrize(("profile", "service"), LLAMA_COMMANDS)
def test_every_compose_flag_is_accepted_by_the_real_llama_server(
    profile: str, service: str, gemma4_tiny: Path, artifacts: Path
) -> None:
    port = free_port()
    argv = [str(stack.llama_server_bin()),
            *compose_llama_argv(profile, gemma4_tiny, port, service), "--threads", "1"]  # fmt: skip
    server = Process(f"compose-flags-{profile}-{service}", argv, artifacts / "logs",
                     ready_url=f"http://127.0.0.1:{port}/health")  # fmt: skip
    with running(server):
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
    log = server.log_path.read_text(errors="replace")
    assert "invalid argument" not in log and "unknown argument" not in log
    if "--mmproj" in compose_command(service, PROFILES[profile].values):
        help_text = subprocess.run([str(stack.llama_server_bin()), "--help"],
                                   capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        assert "--mmproj FILE" in help_text


@pytest.fixture(scope="module")
def tool_stack(
    gemma4_tiny: Path, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[str]:
    """The 16 GB plan's llama-server with Gemma 4's chat template, behind the router."""
    port = free_port()
    argv = [str(stack.llama_server_bin()), *compose_llama_argv("16gb", gemma4_tiny, port),
            "--threads", "1", "--chat-template-file", str(TEMPLATE)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    engine = Process("tools-llama-server", argv, artifacts / "logs", ready_url=url + "/health")
    router = stack.router(tmp_path_factory.mktemp("tools"), url, url, artifacts / "logs",
                          name="tools-router")  # fmt: skip
    with running(engine, router.process):
        yield router.url


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "additionalProperties": False,
        },
    },
}


# Token ids of the tiny Gemma-vocabulary model: 3 specials, 256 bytes, then GEMMA4_TOKENS.
CLOSING_BRACE = 3 + ord("}")
END_OF_TURN = 3 + 256 + GEMMA4_TOKENS.index("<turn|>")


def tool_request(stream: bool) -> dict[str, object]:
    """The weights are noise, so the request steers the choice: tool_choice "required" makes
    llama-server constrain the output to Gemma 4's tool-call syntax (its grammar, built from the
    template), and a logit bias on "}" and on Gemma 4's end of turn keeps the arguments empty and
    the answer to one call. What is tested is the real path: the router passes the tools
    through, llama-server renders them with Gemma 4's template, parses the call with its Gemma 4
    parser and answers in OpenAI's format, and the router hands that back."""
    return {
        "model": "gemma4-smart",
        "stream": stream,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "max_tokens": 64,
        "logit_bias": {str(CLOSING_BRACE): 100, str(END_OF_TURN): 100},
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_a_tool_call_through_the_router_comes_back_parsed(tool_stack: str) -> None:
    r = httpx.post(tool_stack + "/v1/chat/completions", json=tool_request(stream=False),
                   headers=router_headers(), timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["x-router-tier"] == "tier_high"
    answer = r.json()
    assert answer["model"] == "gemma4-smart"
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    assert calls[0]["type"] == "function" and calls[0]["id"]
    assert calls[0]["function"]["arguments"] == "{}"


def test_a_streamed_tool_call_arrives_as_tool_call_deltas(tool_stack: str) -> None:
    name, arguments, finish = "", "", None
    with httpx.stream("POST", tool_stack + "/v1/chat/completions", json=tool_request(stream=True),
                      headers=router_headers(), timeout=60) as r:  # fmt: skip
        assert r.status_code == 200
        for event in sse_events(r.iter_lines()):
            if event == "[DONE]":
                break
            assert isinstance(event, dict) and event["model"] == "gemma4-smart"
            choice = event["choices"][0]  # type: ignore[index]
            for call in choice["delta"].get("tool_calls", []):
                name += call.get("function", {}).get("name", "")
                arguments += call.get("function", {}).get("arguments", "")
            finish = choice.get("finish_reason") or finish
    assert (name, arguments, finish) == ("get_weather", "{}", "tool_calls")


# -- the cpu profile end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpu_stack(
    gemma4_tiny: Path, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[str]:
    """The cpu profile as docker-compose.cpu.yml wires it: both tiers are llama-servers with the
    override's commands, and the router runs with the override's environment (GPU rules off, the
    tiers' model names)."""
    engines = []
    urls = []
    for service in ("vllm", "llama-cpp"):
        port = free_port()
        command = compose_llama_argv("cpu", gemma4_tiny, port, service)
        argv = [str(stack.llama_server_bin()), *command, "--threads", "1"]
        urls.append(f"http://127.0.0.1:{port}")
        engines.append(Process(f"cpu-{service}", argv, artifacts / "logs",
                               ready_url=urls[-1] + "/health"))  # fmt: skip
    override = load_compose_file("docker-compose.cpu.yml")
    env = {k: str(v) for k, v in override["services"]["router"]["environment"].items()}
    router = stack.router(tmp_path_factory.mktemp("cpu"), urls[0], urls[1], artifacts / "logs",
                          name="cpu-router", env=env)  # fmt: skip
    with running(*engines, router.process):
        yield router.url


def test_the_cpu_profile_answers_on_both_tiers_without_a_gpu(cpu_stack: str) -> None:
    health = httpx.get(cpu_stack + "/health").json()
    assert health["status"] == "ok"
    assert health["gpu"]["available"] is False
    assert {name: tier["health"] for name, tier in health["tiers"].items()} == {
        "tier_low": "up", "tier_high": "up"
    }  # fmt: skip
    for model, tier in (("gemma4-fast", "tier_low"), ("gemma4-smart", "tier_high")):
        r = httpx.post(cpu_stack + "/v1/chat/completions", headers=router_headers(), timeout=60,
                       json={"model": model, "max_tokens": 4,
                             "messages": [{"role": "user", "content": "Hello!"}]})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.headers["x-router-tier"] == tier
        assert r.json()["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.parametrize("service", ["embed", "rerank"])
@pytest.mark.parametrize("files", [(), ("docker-compose.retrieval-gpu.yml",)], ids=["cpu", "gpu"])
def test_the_retrieval_commands_are_accepted_by_the_real_llama_server(
    service: str, files: tuple[str, ...], tiny_model: Path, artifacts: Path
) -> None:
    """compose's embed and rerank commands, and the GPU override's (the same plus
    --n-gpu-layers, which a CPU build accepts and ignores), start the real server in its mode."""
    port = free_port()
    swap = {"--model": str(tiny_model), "--host": "127.0.0.1", "--port": str(port),
            "--threads": "1"}  # fmt: skip
    argv = [str(stack.llama_server_bin()), *compose_argv(service, {}, swap, files)]
    name = f"compose-flags-{service}-{'gpu' if files else 'cpu'}"
    server = Process(name, argv, artifacts / "logs", ready_url=f"http://127.0.0.1:{port}/health")
    with running(server):
        path, body = (
            ("/v1/embeddings", {"input": "hello"}) if service == "embed"
            else ("/v1/rerank", {"query": "hello", "documents": ["a", "b"]})
        )  # fmt: skip
        r = httpx.post(f"http://127.0.0.1:{port}{path}", json=body, timeout=30)
        assert r.status_code == 200, r.text
    log = server.log_path.read_text(errors="replace")
    assert "invalid argument" not in log and "unknown argument" not in log
