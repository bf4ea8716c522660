"""The repository's own Python tools, importable from anywhere in a checkout.

Benchmarks, tests and operator tools share these (the compose file as Compose reads it, the tiny
GGUF writer); the development environment installs this package in editable mode
(``pip install --no-deps -e .``, done by ``scripts/test.sh``), so nothing patches ``sys.path``.
They read the checkout they live in (:data:`ROOT`), so they are never installed elsewhere.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The root of the checkout."""
