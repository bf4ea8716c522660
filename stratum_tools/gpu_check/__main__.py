"""``python -m stratum_tools.gpu_check``: the run (scripts/gpu-check.sh is its entry point)."""

from stratum_tools.gpu_check.run import main

raise SystemExit(main())
