"""The documentation points at things that exist: linked files, scripts in commands, flags."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from stackutil import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
EXPECTED_DOCS = {
    "ARCHITECTURE.md", "BENCHMARKS.md", "DEVELOPMENT.md", "HANDOVER.md", "HARDWARE-RECOMMENDATIONS.md",
    "MIGRATION.md", "MTP-SPECULATIVE-DECODING.md", "RADIXATTENTION-OPERATIVE-TABLE.md",
    "VISION-BUDGET.md", "VRAM-REALITY-CHECK.md",
}  # fmt: skip


def test_the_documentation_set_is_complete() -> None:
    assert {p.name for p in (ROOT / "docs").glob("*.md")} >= EXPECTED_DOCS


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)\)", doc.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


COMMAND = re.compile(
    r"(?:bash|python3?|\.venv/bin/python) ((?:benchmarks|rag-integration|scripts|tests|grafana)/"
    r"[\w./-]+\.(?:sh|py))((?:\\\n|[^\n`|;&#])*)"
)
"""A script run in a command, and its arguments up to the line's (or the code span's) end."""


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_scripts_named_in_commands_exist(doc: Path) -> None:
    for script, _ in COMMAND.findall(doc.read_text()):
        assert (ROOT / script).exists(), f"{doc.name} runs {script}, which does not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_host_commands_run_as_written_on_stock_ubuntu(doc: Path) -> None:
    """Stock Ubuntu 24.04 has python3, no `python`: the scripts that need only the standard
    library run with python3, the tools that need packages with the .venv of
    docs/DEVELOPMENT.md's one command."""
    bare = re.findall(
        r"(?:^|[\s`(>])(python (?!-m adaptive_router)[\w./-]+)", doc.read_text(), re.M
    )
    assert not bare, f"{doc.name}: {bare} (python3, or .venv/bin/python)"


_help_flags: dict[tuple[str, str], set[str]] = {}


def _flags(script: str, command: str = "") -> set[str]:
    """The flags ``script --help`` lists; for a command of a script with subcommands
    (``plan_vram.py check``), those of ``script command --help``."""
    if (script, command) not in _help_flags:
        run = ["bash", script] if script.endswith(".sh") else [sys.executable, script]
        argv = [*run, *([command] if command else []), "--help"]
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
        if command and not re.match(rf"usage: \S+ {command}\b", out.stdout):
            return _flags(script)  # not one of its commands: an argument
        _help_flags[script, command] = set(
            re.findall(r"--[a-z][a-z0-9-]*", out.stdout + out.stderr)
        )
    return _help_flags[script, command]


@pytest.mark.parametrize("doc", [*DOCS, ROOT / ".env.example"], ids=lambda p: p.name)
def test_every_flag_a_doc_gives_a_script_is_one_it_accepts(doc: Path) -> None:
    """Every --flag written after a script (shell or Python), or after its command, is one its
    --help lists."""
    for script, args in COMMAND.findall(doc.read_text()):
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", args))
        first = re.match(r"\s*([a-z][a-z0-9-]*)(?:\s|$)", args)
        known = _flags(script, first[1] if first else "")
        assert used <= known, f"{doc.name}: {script} has no {used - known}"


def _known_variables() -> set[str]:
    """What a setting a doc names may be: a line of .env.example, a variable or an environment
    key of the compose files or the Kubernetes manifests, a router setting, or a variable (or a
    constant) the scripts read."""
    import yaml

    from adaptive_router.config import ENV_PREFIX, RoutingConfig
    from adaptive_router.service.config import ServiceConfig

    known = {
        ENV_PREFIX + n.upper() for n in (*RoutingConfig.model_fields, *ServiceConfig.model_fields)
    }
    known |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for compose in ROOT.glob("docker-compose*.yml"):
        text = compose.read_text()
        known |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
        for service in yaml.safe_load(text.replace("!reset", ""))["services"].values():
            if isinstance(service.get("environment"), dict):
                known |= set(service["environment"])
    for manifest in ROOT.glob("deploy/kubernetes/**/*"):
        if manifest.suffix in (".yaml", ".env"):
            known |= set(re.findall(r"(?:name: |^)([A-Z][A-Z0-9_]+)\b", manifest.read_text(), re.M))
    for script in [
        *ROOT.glob("scripts/**/*.sh"),
        *ROOT.glob("scripts/*.py"),
        *ROOT.glob("tests/compose/images/*.sh"),
    ]:
        text = script.read_text()
        known |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text))
        known |= set(re.findall(r"environ(?:\.get)?[\[(]\"([A-Z][A-Z0-9_]+)\"", text))
        known |= set(re.findall(r"^([A-Z][A-Z0-9_]+)\s*[:=]", text, re.M))
    return known


RETIRED = {"BIND_ADDRESS", "WEBUI_BIND_ADDRESS"}
"""Named by docs/HANDOVER.md as what start.sh refuses, with what replaces them."""


def test_every_setting_a_doc_names_exists() -> None:
    known = _known_variables() | RETIRED
    for doc in [*DOCS, ROOT / "router/README.md", ROOT / "deploy/kubernetes/README.md"]:
        named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`", doc.read_text()))
        assert named <= known, (
            f"{doc.name} names settings that exist nowhere: {sorted(named - known)}"
        )
    start = (ROOT / "scripts/start.sh").read_text()
    assert all(name in start for name in RETIRED)


REPOSITORY_PATH = re.compile(
    r"(?<![\w./-])((?:scripts|docs|docker|router|tests|benchmarks|deploy|grafana|rag-integration|"
    r"data|\.ci)/[\w./-]*[\w/]|\.env\.example|docker-compose[\w.-]*\.yml)(?![\w./#-])"
)
MADE_BY_THE_READER = {"benchmarks/engines.yaml"}  # a copy of engines.example.yaml, as the doc says


@pytest.mark.parametrize("doc", [*DOCS, ROOT / "router/README.md"], ids=lambda p: p.name)
def test_every_repository_path_a_doc_names_exists(doc: Path) -> None:
    for path in REPOSITORY_PATH.findall(doc.read_text()):
        if path in MADE_BY_THE_READER:
            continue
        assert (ROOT / path).exists(), f"{doc.name} names {path}, which is not in the repository"


def test_the_readme_is_a_newcomers_page() -> None:
    """The issue's order, at most 1,300 words, the first start command in the first 45 lines."""
    text = (ROOT / "README.md").read_text()
    assert len(text.split()) <= 1300, len(text.split())
    first = next(
        i for i, line in enumerate(text.splitlines(), 1) if "bash scripts/start.sh" in line
    )
    assert first <= 45, f"the first start command is on line {first}"
    order = ["## Requirements", "Clone", "Install", "profile", "## 4. Start", "First login",
             "Teammates", "When something fails", "## Limitations"]  # fmt: skip
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    at = [next(i for i, h in enumerate(headings) if word in h) for word in order]
    assert at == sorted(at), headings
    limitations = text.split("## Limitations")[1].split("\n## ")[0]
    assert len(re.findall(r"^\d\. ", limitations, re.M)) == 5
    for needed in ("sudo reboot", "team-keys.sh create", "from openai import OpenAI",
                   "GRAFANA_ADMIN_PASSWORD", "health-check.sh", "docs/HANDOVER.md",
                   "docs/DEVELOPMENT.md", "docs/BENCHMARKS.md"):  # fmt: skip
        assert needed in text, needed
