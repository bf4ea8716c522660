"""Fixtures for the stack tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from stackutil import ROOT


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data
