"""Plan the GPU memory of a Stratum .env before anything starts: does it fit, and how much is left?

    python3 scripts/plan_vram.py check --env .env --gpu-gb 15.93 [--gpu-used-gb 0.4] [--json]
    python3 scripts/plan_vram.py check --env .env --ram-gb 20.5   # the cpu profile: RAM
    python3 scripts/plan_vram.py profile 16gb [--json]            # a shipped profile's plan
    python3 scripts/plan_vram.py profile 24gb --settings          # its settings, as .env lines
    python3 scripts/plan_vram.py calibration                      # against published sizes

For each engine it works out the weights by part, the KV cache and the overhead (docs/VRAM-
REALITY-CHECK.md explains each number), then what is left on the card: the free memory the
router's vram rule sees once both engines have started.

Exit status: 0 when the plan fits with at least --min-free-gib (1 GiB) to spare and its settings
agree with each other; 1 when it does not fit (the message names the engine and by how much); 2 on
bad input (unknown model, malformed value, settings that contradict each other). Standard library
only: start.sh runs it on the host before any container exists.

The flags of 0.2 (--env, --profile, --show-profile, --calibration, --write-generated) still work
until the next release, with a note on stderr; --write-generated is now
`python3 scripts/generate.py --only planner`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from vram.calibration import calibration, render_calibration
from vram.model import make_plan, render
from vram.profiles import PROFILES, profile_gpu_gib
from vram.settings import DEFAULTS, PlanError, Settings, read_env

PROG = "plan_vram.py"


def gib_list(text: str) -> list[float]:
    """``15.93`` or ``15.93,23.99``: GiB per card."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of GiB: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    memory = argparse.ArgumentParser(add_help=False)
    memory.add_argument(
        "--gpu-gb",
        type=gib_list,
        help="each card's memory in GiB as nvidia-smi counts it (memory.total MiB / 1024, e.g. "
        "15.93), comma-separated by card index; 16, 24 or 32 alone mean the shipped profiles' "
        "cards",
    )
    memory.add_argument(
        "--gpu-used-gb",
        type=gib_list,
        default=[0.0],
        help="GiB other processes already hold on each card (a desktop session)",
    )
    memory.add_argument(
        "--ram-gb",
        type=float,
        help="the cpu profile: the machine's available RAM in GiB (start.sh passes MemAvailable)",
    )
    memory.add_argument(
        "--min-free-gib",
        type=float,
        default=1.0,
        help="what must stay free after both engines start (default 1)",
    )
    memory.add_argument("--json", action="store_true", help="print one JSON object")

    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        parents=[memory],
        help="the plan of a .env on this machine's cards (start.sh runs it before each start)",
        description="The plan of a .env file on cards of --gpu-gb (or, for the cpu profile, RAM "
        "of --ram-gb). The file is read as docker compose reads it: a setting in the shell's "
        "environment wins over the file's, and an empty or missing one means "
        "docker-compose.yml's default.",
    )
    check.add_argument(
        "--env", type=Path, default=Path(".env"), help="the .env file to plan (default .env)"
    )
    profile = commands.add_parser(
        "profile",
        parents=[memory],
        help="a shipped profile's plan on its card, or (--settings) its .env lines",
        description="A shipped profile's plan: on the card it was made for, or on the cards "
        "of --gpu-gb. With --settings, its settings as KEY=VALUE lines instead (what "
        "`bash scripts/start.sh --profile NAME` writes to .env).",
    )
    profile.add_argument("name", choices=sorted(PROFILES), metavar="NAME",
                         help="one of " + ", ".join(sorted(PROFILES)))  # fmt: skip
    profile.add_argument(
        "--settings",
        action="store_true",
        help="print the profile's settings as KEY=VALUE lines (start.sh writes them to .env)",
    )
    commands.add_parser(
        "calibration",
        help="the memory model next to every published size it is checked against",
        description="The memory model next to every published size it is checked against "
        "(Google's table, the GGUF files, vLLM's logs), as a Markdown table.",
    )
    return parser


OLD_FLAGS = ("--env", "--profile", "--show-profile", "--calibration", "--write-generated")
"""The flags of 0.2, kept until the next release: each is translated to its command."""


def _old_flag(argv: Sequence[str]) -> str | None:
    """The 0.2 flag ``argv`` is written with, if it is written the old way (no command)."""
    if not argv or not argv[0].startswith("-") or {"-h", "--help"} & set(argv):
        return None
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in OLD_FLAGS:
            return flag
    return None


def _translate(flag: str, argv: list[str]) -> list[str]:
    """The command line of the 0.2 ``argv`` whose source flag is ``flag``."""
    if flag == "--env":
        return ["check", *argv]
    if flag == "--calibration":
        return ["calibration"]  # 0.2 accepted and ignored the other flags here
    index = next(i for i, a in enumerate(argv) if a.split("=", 1)[0] == flag)
    taken = 1 if "=" in argv[index] else 2  # --profile=NAME or --profile NAME
    value = argv[index].split("=", 1)[1] if taken == 1 else "".join(argv[index + 1 : index + 2])
    rest = argv[:index] + argv[index + taken :]
    if flag == "--show-profile":
        return ["profile", value, "--settings"]
    return ["profile", value, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    flag = _old_flag(args_in)
    if flag == "--write-generated":
        print(f"{PROG}: --write-generated is deprecated and goes in the next release; use: "
              "python3 scripts/generate.py --only planner", file=sys.stderr)  # fmt: skip
        import generate  # scripts/generate.py: the one generator of every generated file

        return generate.main(["--only", "planner"])
    if flag:
        args_in = _translate(flag, args_in)
        print(f"{PROG}: {flag} is deprecated and goes in the next release; use: python3 "
              f"scripts/{PROG} {shlex.join(args_in)}", file=sys.stderr)  # fmt: skip
    parser = _parser()
    try:
        args = parser.parse_args(args_in)
        if (
            args.command == "profile"
            and args.settings
            and (args.json or args.gpu_gb or args.ram_gb)
        ):
            parser.error("--settings prints the profile's .env lines: it plans nothing")
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "calibration":
        print(render_calibration(calibration()))
        return 0
    if args.command == "profile" and args.settings:
        chosen = PROFILES[args.name]
        print("\n".join(f"{k}={chosen.values[k]}" for k in chosen.keys))
        return 0
    try:
        settings, memory = _memory(args)
        plan = make_plan(settings, memory, args.gpu_used_gb, args.min_free_gib)
    except PlanError as exc:
        if args.json:
            print(json.dumps({"fits": False, "error": str(exc)}))
        print(f"plan_vram: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(plan.as_dict(), indent=2) if args.json else render(plan))
    return 0 if plan.fits else 1


def _memory(args: argparse.Namespace) -> tuple[Settings, list[float]]:
    """The settings to plan and the memory they go in (GiB of each card, or of RAM)."""
    values: Mapping[str, str]
    if args.command == "profile":
        chosen = PROFILES[args.name]
        values = chosen.values
        memory = args.gpu_gb or ([args.ram_gb] if args.ram_gb else list(chosen.memory_gib))
    else:
        # As docker compose does: the shell's environment wins over the file.
        values = {**read_env(args.env), **{k: os.environ[k] for k in DEFAULTS if k in os.environ}}
        if values.get("STRATUM_PROFILE") == "cpu":
            if not args.ram_gb:
                raise PlanError("--ram-gb is required for the cpu profile (start.sh passes it)")
            memory = [args.ram_gb]
        else:
            if not args.gpu_gb:
                raise PlanError("--gpu-gb is required (start.sh passes nvidia-smi's)")
            memory = args.gpu_gb
    if len(memory) == 1 and memory[0] in (16, 24, 32):
        memory = [profile_gpu_gib(f"{int(memory[0])}gb")]
    if min(memory) <= 0 or min(args.gpu_used_gb) < 0:
        raise PlanError("memory sizes must be positive and the used memory not negative")
    return Settings.from_env(values), memory
