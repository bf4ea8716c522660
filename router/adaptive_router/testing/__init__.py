"""Test doubles and helpers for the router and the stack around it (not used in production).

- :mod:`~adaptive_router.testing.fake_engine`: an OpenAI-compatible engine that speaks vLLM's and
  llama-server's HTTP surface, with settable delays and faults.
- :mod:`~adaptive_router.testing.fake_nvml`: an NVML source the test controls.
- :mod:`~adaptive_router.testing.processes`: start a real process, wait until it answers, stop it.
"""

from .fake_nvml import FakeNvml

__all__ = ["FakeNvml"]
