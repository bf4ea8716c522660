"""The real-Docker suite: the stack as a user starts it, in containers, under a real engine.

Every test here is marked ``compose`` (tests/conftest.py). Without a Docker engine the tests skip
on a developer machine and fail in CI (.ci/run installs and starts one).
"""

from __future__ import annotations

import sys

from stackutil import ROOT

# The e2e suite's helpers (the tiny GGUF writer, prompts, metric scraping, traffic through
# LiteLLM, the browser's settings) serve here too.
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
