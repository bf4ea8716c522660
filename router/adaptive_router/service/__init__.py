"""The HTTP service around the decision engine (the optional ``[service]`` dependencies).

Modules, in the order a request meets them: :mod:`.intake` (auth, body, JSON, shape, model
alias), :mod:`.proxy` (decision and failover loop, the answer to the client),
:mod:`.exchange` (one request to one engine), :mod:`.tiers` (each tier's state),
:mod:`.probes` (health and load, in the background), :mod:`.metrics` and :mod:`.collector`
(Prometheus), :mod:`.app` (the ASGI application), :mod:`.serve` (the command line),
:mod:`.config` (its settings; importable without the service's dependencies).
Nothing in the engine (the package's top level) imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ServiceConfig, load_service_config

if TYPE_CHECKING:
    from .app import RouterApp, create_app

__all__ = ["RouterApp", "ServiceConfig", "create_app", "load_service_config"]


def __getattr__(name: str) -> Any:
    # The app needs FastAPI and friends; the settings alone must not (``adaptive-router config``).
    if name in ("RouterApp", "create_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
