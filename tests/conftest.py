"""Fixtures for the stack tests, and the two suites that start real parts (tests/e2e,
tests/compose): each test there carries its suite's marker, and in CI one that skips (a part
missing, for whatever reason) fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from stackutil import ROOT, in_ci

SUITES = ("e2e", "compose")


def _suite(item: pytest.Item) -> str | None:
    parts = Path(str(item.fspath)).relative_to(ROOT).parts
    return parts[1] if len(parts) > 2 and parts[0] == "tests" and parts[1] in SUITES else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if suite := _suite(item):
            item.add_marker(getattr(pytest.mark, suite))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci() and (suite := _suite(item)):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every {suite} test: {report.longrepr}"


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data
