"""The package's layers: the decision engine never imports the HTTP service or the test doubles,
so `pip install gemma4-adaptive-router` (without the [service] extra) routes prompts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import adaptive_router

PACKAGE = Path(adaptive_router.__file__).parent
COMMANDS = {"cli.py", "middleware.py"}  # they start the service, lazily, on request


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.update(
                f"{base}.{alias.name}" if node.module is None else base for alias in node.names
            )
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_engine_module_imports_the_service_or_the_test_doubles() -> None:
    engine = [p for p in PACKAGE.glob("*.py") if p.name not in COMMANDS]
    assert len(engine) >= 10
    for path in engine:
        for name in _imports(path):
            assert not name.lstrip(".").startswith(("service", "testing")), f"{path.name}: {name}"
            assert not name.startswith(("adaptive_router.service", "adaptive_router.testing"))
            assert name.split(".")[0] not in {
                "fastapi",
                "starlette",
                "uvicorn",
                "httpx",
                "httptools",
            }


def test_the_engine_imports_and_decides_without_the_service_dependencies() -> None:
    code = (
        "import sys\n"
        "for name in ('fastapi', 'starlette', 'uvicorn', 'httptools', 'prometheus_client'):\n"
        "    sys.modules[name] = None  # importing any of them now fails\n"
        "from adaptive_router import AdaptiveRouter, RoutingConfig\n"
        "r = AdaptiveRouter(RoutingConfig(gpu_monitor=False))\n"
        "print(r.route('Prove that there are infinitely many primes.'))\n"
        "import threading; assert threading.active_count() == 1, 'a thread was started'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tier_high"


def test_without_the_service_dependencies_serve_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['fastapi'] = None\n"
        "from adaptive_router.middleware import serve\n"
        "raise SystemExit(serve(['--tier-low-url', 'http://a/v1']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "pip install 'gemma4-adaptive-router[service]'" in out.stderr
    assert "Traceback" not in out.stderr
