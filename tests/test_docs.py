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
    "ARCHITECTURE.md", "BENCHMARKS.md", "HANDOVER.md", "HARDWARE-RECOMMENDATIONS.md",
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


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_scripts_named_in_commands_exist(doc: Path) -> None:
    text = doc.read_text()
    for script in re.findall(
        r"(?:python|bash) ((?:benchmarks|rag-integration|scripts|tests|grafana)/[\w./-]+)", text
    ):
        assert (ROOT / script).exists(), f"{doc.name} runs {script}, which does not exist"


def _flags(script: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    return set(re.findall(r"--[a-z][a-z-]+", out))


def test_benchmark_flags_in_the_docs_exist() -> None:
    """Every --flag written after a benchmark script in the docs is one the script accepts."""
    known: dict[str, set[str]] = {}
    for doc in DOCS:
        for command in re.findall(
            r"python ((?:benchmarks|rag-integration)/\w+\.py)((?:[^\n]|\\\n)*)", doc.read_text()
        ):
            script, args = command
            flags = set(re.findall(r"(--[a-z][a-z-]+)", args))
            known.setdefault(script, _flags(script))
            assert flags <= known[script], f"{doc.name}: {script} has no {flags - known[script]}"
