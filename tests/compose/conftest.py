"""The real-Docker suite: the stack as a user starts it, in containers, under a real engine.

Every test here is marked ``compose``. Without a Docker engine the tests skip on a developer
machine and fail in CI (.ci/run installs and starts one).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stackutil import ROOT, in_ci

# The e2e suite's helpers (the tiny GGUF writer, prompts, metric scraping, the browser's
# settings) serve here too.
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.compose)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI a compose test that skips (no engine, an image that would not build) fails."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci() and item.get_closest_marker("compose"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every compose test: {report.longrepr}"
