#!/usr/bin/env python3
"""Write every generated file of the repository, or (--check) say which is stale.

    .venv/bin/python scripts/generate.py            # rewrite what is stale
    .venv/bin/python scripts/generate.py --check    # change nothing; exit 1 naming each stale file
    python3 scripts/generate.py --only planner,dashboards,kubernetes   # standard library only

The generators, in the order they run (a later one reads what an earlier one wrote):

  planner          .env.example's profile blocks and the tables of docs/VRAM-REALITY-CHECK.md
                   (scripts/vram/tables.py)
  dashboards       the Grafana dashboards, grafana/dashboards/*.json (grafana/build_dashboards.py)
  kubernetes       the copies in deploy/kubernetes/ (scripts/sync_kubernetes.py)
  router-settings  the settings table of docs/API.md (`adaptive-router config --markdown`)

All but router-settings need only the standard library; router-settings needs the router package
(the .venv that `bash scripts/test.sh --fast` creates). A generator this Python cannot run is
named with the command that can, and the exit status is 2: a check that did not run is no pass.

Exit status: 0 when every file is (or now is) up to date; 1 with --check when a file is stale;
2 when a generator could not run or a source is malformed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sync_kubernetes
from generation import GenerationError, Tree, replace_block
from vram import tables

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"


class Unavailable(Exception):
    """This Python cannot run the generator: a package it needs is not importable."""


def dashboards(tree: Tree) -> dict[str, bytes]:
    import build_dashboards  # grafana/: on the path through pyproject.toml, or main() below

    rendered = build_dashboards.render()
    return {f"grafana/dashboards/{name}": text.encode() for name, text in rendered.items()}


API_DOC = "docs/API.md"
API_BEGIN = "<!-- adaptive-router config --markdown -->"
API_END = "<!-- end adaptive-router config --markdown -->"


def router_settings(tree: Tree) -> dict[str, bytes]:
    """docs/API.md's settings table: the output of `adaptive-router config --markdown`."""
    try:
        from adaptive_router import cli
    except ImportError as exc:
        raise Unavailable(f"{sys.executable} cannot import the router package ({exc})") from None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["config", "--markdown"])
    text = replace_block(
        tree.text(API_DOC), API_BEGIN, API_END, out.getvalue().rstrip("\n"), API_DOC
    )
    return {API_DOC: text.encode()}


@dataclass(frozen=True)
class Generator:
    name: str
    what: str
    outputs: Callable[[Tree], dict[str, bytes]]


GENERATORS = {
    g.name: g
    for g in (
        Generator(
            "planner",
            ".env.example's profiles and docs/VRAM-REALITY-CHECK.md's tables",
            tables.outputs,
        ),
        Generator("dashboards", "the Grafana dashboards (grafana/dashboards/)", dashboards),
        Generator("kubernetes", "the copies in deploy/kubernetes/", sync_kubernetes.outputs),
        Generator("router-settings", "docs/API.md's settings table", router_settings),
    )
}


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in GENERATORS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or text!r}: choose from {', '.join(GENERATORS)}"
        )
    return names


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="generate.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument(
        "--only",
        type=_names,
        metavar="NAMES",
        help="comma-separated generators to run (default: all): " + ", ".join(GENERATORS),
    )
    parser.add_argument("--list", action="store_true", help="list the generators and exit")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.list:
        for g in GENERATORS.values():
            print(f"{g.name:16s} {g.what}")
        return 0
    if str(GRAFANA) not in sys.path:
        sys.path.append(str(GRAFANA))  # build_dashboards, when run as a file
    chosen = [GENERATORS[n] for n in GENERATORS if args.only is None or n in args.only]
    tree = Tree(root)
    stale: list[tuple[str, Generator]] = []
    skipped: dict[str, str] = {}
    checked = 0
    for generator in chosen:
        try:
            files = generator.outputs(tree)
        except Unavailable as exc:
            skipped[generator.name] = str(exc)
            continue
        except GenerationError as exc:
            print(f"generate.py: {generator.name}: {exc}", file=sys.stderr)
            return 2
        tree.produced.update(files)
        for name, data in files.items():
            checked += 1
            path = root / name
            if path.is_file() and path.read_bytes() == data:
                continue
            stale.append((name, generator))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                print(f"wrote {name}")
    ran = [g.name for g in chosen if g.name not in skipped]
    only = f" --only {','.join(args.only)}" if args.only else ""
    if args.check and stale:
        for name, generator in stale:
            print(f"stale: {name} (generator: {generator.name})", file=sys.stderr)
        python = (
            ".venv/bin/python" if any(g.name == "router-settings" for _, g in stale) else "python3"
        )
        print(f"run: {python} scripts/generate.py{only}", file=sys.stderr)
    elif not stale and ran:
        print(f"up to date: {checked} generated files ({', '.join(ran)})")
    for name, why in skipped.items():
        others = ",".join(g.name for g in chosen if g.name != name)
        print(
            f"not {'checked' if args.check else 'written'}: {GENERATORS[name].what} ({name}): "
            f"{why}; run .venv/bin/python scripts/generate.py{' --check' if args.check else ''}"
            " (bash scripts/test.sh --fast creates .venv)"
            + (f", or leave it out: --only {others}" if others else ""),
            file=sys.stderr,
        )
    if args.check and stale:
        return 1
    return 2 if skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())
