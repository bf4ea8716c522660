"""gemma4-adaptive-router: choose between a fast and a strong model per request, and explain why.

The decision engine (this package's top level) is pure and synchronous and never imports the
HTTP service that uses it (:mod:`adaptive_router.service`, the optional ``[service]`` part).
Test doubles for both live in :mod:`adaptive_router.testing`.
"""

from importlib.metadata import PackageNotFoundError, version

from .config import ConfigError, RoutingConfig, dump_default_config, load_config
from .conversation import Conversation, read_conversation
from .features import DIMENSIONS
from .gpu import GpuMonitor, GpuReading, GpuSnapshot, PynvmlSource
from .router import AdaptiveRouter, Decision
from .rules import (
    ContextLengthError,
    NoVisionTierError,
    RouterState,
    RoutingError,
    TierStatus,
)
from .scorer import ComplexityScorer, ScoreBreakdown
from .sla import LatencyEMA

try:
    # One place for the version: router/pyproject.toml, read back from the installed metadata.
    __version__ = version("gemma4-adaptive-router")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DIMENSIONS",
    "AdaptiveRouter",
    "ComplexityScorer",
    "ConfigError",
    "ContextLengthError",
    "Conversation",
    "Decision",
    "GpuMonitor",
    "GpuReading",
    "GpuSnapshot",
    "LatencyEMA",
    "NoVisionTierError",
    "PynvmlSource",
    "RouterState",
    "RoutingConfig",
    "RoutingError",
    "ScoreBreakdown",
    "TierStatus",
    "__version__",
    "dump_default_config",
    "load_config",
    "read_conversation",
]
