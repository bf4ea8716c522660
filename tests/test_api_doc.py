"""docs/API.md is the router's one HTTP reference: its settings tables are the command's own
output, and every endpoint, error code, metric and command the router has is in it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
from stackutil import ROOT

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.service.app import create_app
from adaptive_router.service.config import ServiceConfig
from adaptive_router.testing.fake_nvml import FakeNvml

DOC = (ROOT / "docs" / "API.md").read_text()
SOURCE = ROOT / "router" / "adaptive_router"
BEGIN, END = "<!-- adaptive-router config --markdown -->", "<!-- end adaptive-router config"


def test_settings_tables_list_every_setting() -> None:
    """The block is `adaptive-router config --markdown`'s output, written and checked by
    scripts/generate.py (tests/test_generate.py); here: nothing is left out of it."""
    block = DOC[DOC.index(BEGIN) + len(BEGIN) : DOC.index(END)].strip()
    for name in [*RoutingConfig.model_fields, *ServiceConfig.model_fields]:
        assert f"`ROUTER_{name.upper()}`" in block


def _live_app() -> object:
    router = AdaptiveRouter(RoutingConfig(), gpu_source=FakeNvml())
    assert router.gpu_monitor is not None
    router.gpu_monitor.poll_once()  # so the NVML gauges are exported too
    service = ServiceConfig(
        tier_low_url="http://127.0.0.1:9/v1", tier_high_url="http://127.0.0.1:9/v1"
    )
    return create_app(service, router=router, probes=False)


def test_every_metric_the_router_exports_is_documented() -> None:
    async def scrape() -> str:
        transport = httpx.ASGITransport(app=_live_app())  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return (await client.get("/metrics")).text

    families = re.findall(r"^# TYPE (router_\w+) \w+$", asyncio.run(scrape()), re.M)
    exported = {name for name in families if not name.endswith("_created")}
    section = DOC[DOC.index("## Metrics") :]
    documented = set(re.findall(r"`(router_\w+)`", section))
    documented |= {"router_gpu_memory" + s for s in ("_used_bytes", "_total_bytes")}
    assert exported <= documented, exported - documented


def test_every_endpoint_error_code_and_command_is_documented() -> None:
    app = _live_app()
    paths = {r.path for r in app.api.routes if not r.path.startswith("/docs/")}  # type: ignore[attr-defined]
    paths -= {"/redoc"}
    for path in paths:
        assert f" {path}`" in DOC, f"endpoint {path} is not in docs/API.md"
    codes: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r'code="([a-z_]+)"', text))
        codes |= set(re.findall(r'^\s+code = "([a-z_]+)"', text, re.M))
    codes -= {"upstream_error"}  # sse_error_event's default; every caller names its code
    assert codes >= {"invalid_api_key", "context_length_exceeded", "upstream_unavailable"}
    for code in codes:
        assert f"`{code}`" in DOC, f"error code {code} is not in docs/API.md"
    help_text = subprocess.run([str(Path(sys.executable).parent / "adaptive-router"), "--help"],
                               capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    commands = re.search(r"\{([a-z,]+)\}", help_text)
    assert commands
    for command in commands.group(1).split(","):
        assert f"adaptive-router {command}" in DOC
