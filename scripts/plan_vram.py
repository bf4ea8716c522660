#!/usr/bin/env python3
"""Plan the GPU memory of a Stratum .env before anything starts: does it fit, and how much is left?

    python3 scripts/plan_vram.py check --env .env --gpu-gb 15.93   # what start.sh runs
    python3 scripts/plan_vram.py profile 16gb                      # a shipped profile
    python3 scripts/plan_vram.py calibration                       # against published sizes

`--help` (and `COMMAND --help`) says more. This file is only the entry point start.sh and the
docs call; the planner is the package beside it (scripts/vram/: settings, memory model,
profiles, calibration, the generated tables, the command line) and its sourced facts are
scripts/vram_facts.py. Standard library only: start.sh runs it on the host, with the system's
python3, before any container exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The planner is the package beside this file. Python puts this folder first on the path, except
# in safe-path mode (PYTHONSAFEPATH=1, python3 -P or -I), which a host's python3 may run in.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from vram.cli import main  # noqa: E402  (after the path, on purpose)

if __name__ == "__main__":
    raise SystemExit(main())
