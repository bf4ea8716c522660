"""``adaptive-router``: serve, explain a decision, or print the default configuration."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, RoutingConfig, dump_default_config, fields_markdown, load_config


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from .middleware import serve

        raise SystemExit(serve(argv[1:], prog="adaptive-router serve"))
    parser = argparse.ArgumentParser(
        prog="adaptive-router",
        description="Adaptive router for Gemma 4 tiers. Commands: serve, route, config.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service (see 'adaptive-router serve --help')")
    route = sub.add_parser("route", help="print the decision for a prompt (no GPU rules)")
    route.add_argument("prompt")
    route.add_argument("--config")
    config_cmd = sub.add_parser(
        "config", help="print every setting (decision and service) with its default and meaning"
    )
    config_cmd.add_argument(
        "--markdown", action="store_true", help="as Markdown tables instead of a YAML file"
    )
    args = parser.parse_args(argv)
    if args.command == "config":
        from .service.config import ServiceConfig, dump_service_config

        if args.markdown:
            print("### Decision (top level of router_config.yaml)\n")
            print(fields_markdown(RoutingConfig))
            print("\n### Service (the `service:` section)\n")
            print(fields_markdown(ServiceConfig, prefix="service."))
            return
        print(dump_default_config())
        print(dump_service_config())
        return
    from .router import AdaptiveRouter

    try:
        config = load_config(args.config, gpu_monitor=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with AdaptiveRouter(config) as router:
        print(json.dumps(router.decide(args.prompt).as_dict(), indent=2))


if __name__ == "__main__":
    main()
