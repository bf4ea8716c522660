"""Run the router service.

    python -m adaptive_router.middleware --tier-low-url URL --tier-high-url URL [--port 9000]

The 0.1 command line, kept flag for flag, plus ``--config router_config.yaml``. Settings come
from, lowest first: defaults, the YAML file, ``ROUTER_*`` environment variables, these flags.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from .config import ConfigError


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="OpenAI-compatible adaptive router between tier_low and tier_high.",
        epilog="Every setting can also come from --config YAML or a ROUTER_<SETTING> variable.",
    )
    parser.add_argument("--tier-low-url", help="tier_low base URL, e.g. http://vllm:8000/v1")
    parser.add_argument("--tier-high-url", help="tier_high base URL, e.g. http://llama-cpp:8080/v1")
    parser.add_argument("--host", help="listen address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default 9000)")
    parser.add_argument(
        "--config", help="router_config.yaml (decision keys at top level, service: section)"
    )
    parser.add_argument("--complexity-threshold", type=float)
    parser.add_argument("--vram-headroom-gb", type=float)
    parser.add_argument("--latency-sla-ms", type=float)
    parser.add_argument("--sla-warmup-seed-ms", type=float)
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    return parser


def settings_from_args(args: argparse.Namespace) -> tuple[Any, Any]:
    from .service_config import load_settings

    return load_settings(
        args.config,
        service_overrides={
            "tier_low_url": args.tier_low_url,
            "tier_high_url": args.tier_high_url,
            "host": args.host,
            "port": args.port,
            "log_level": args.log_level,
        },
        routing_overrides={
            "complexity_threshold": args.complexity_threshold,
            "vram_headroom_gb": args.vram_headroom_gb,
            "latency_sla_ms": args.latency_sla_ms,
            "sla_warmup_seed_ms": args.sla_warmup_seed_ms,
        },
    )


def serve(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        service, routing = settings_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from .app import create_app
    except ImportError as exc:
        print(
            f"error: the service needs its extra dependencies ({exc.name} is missing): "
            "pip install 'gemma4-adaptive-router[service]'",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=service.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: the health and load polls alone would be 4 lines every
    # 2 s. Its warnings still show; set log_level debug to see each call.
    if service.log_level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(service, routing)
    uvicorn.run(
        app,
        host=service.host,
        port=service.port,
        loop="uvloop",
        http="httptools",
        log_level=service.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(service.drain_timeout_s) or None,
        timeout_keep_alive=30,
    )
    return 0


def main() -> None:
    raise SystemExit(serve(prog="python -m adaptive_router.middleware"))


if __name__ == "__main__":
    main()
