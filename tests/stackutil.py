"""Helpers shared by the stack tests (compose, scripts, dashboards, Prometheus)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from stratum_tools import ROOT as ROOT  # the checkout, for every test


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
