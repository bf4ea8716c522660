"""The 0.1 release's command, kept: ``python -m adaptive_router.middleware --tier-low-url URL
--tier-high-url URL [--port 9000]``. The service itself is :mod:`adaptive_router.service`."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def serve(
    argv: Sequence[str] | None = None, prog: str = "python -m adaptive_router.middleware"
) -> int:
    """Run the service; a clear message, not a traceback, when its dependencies are missing."""
    try:
        from .service.serve import serve as run
    except ImportError as exc:
        print(
            f"error: the service needs its extra dependencies ({exc.name} is missing): "
            "pip install 'gemma4-adaptive-router[service]'",
            file=sys.stderr,
        )
        return 2
    return run(argv, prog=prog)


def main() -> None:
    raise SystemExit(serve())


if __name__ == "__main__":
    main()
