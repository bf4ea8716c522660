"""Helpers shared by the stack tests (compose, scripts, dashboards, Prometheus)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(path: Path | str | None, what: str, hint: str) -> Path:
    """The part's path; skip the test where it is missing, but fail in CI (CI must install it)."""
    if path is not None and Path(path).exists():
        return Path(path)
    message = f"{what} is not installed ({path or 'not found'}); {hint}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """A command on PATH (see :func:`require`)."""
    return str(require(shutil.which(name), name, ".ci/run must install it"))


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def load_module(path: str) -> ModuleType:
    """A script of the repository (scripts/, benchmarks/: not packages) imported as a module."""
    file = ROOT / path
    name = file.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(file):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
