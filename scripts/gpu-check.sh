#!/usr/bin/env bash
# One GPU check of the whole path (engine, router, NVML, planner) in one run, within a budget.
# The run is Python (stratum_tools/gpu_check: the steps, their time limits, the background build,
# the report); this entry point only picks the interpreter and puts the checkout on its path.
# Every flag is the run's: bash scripts/gpu-check.sh --help
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# --python PY: the interpreter with the router's dependencies runs everything (default: the
# development environment's, else python3).
PY=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[i]}" == --python && $((i + 1)) -lt ${#args[@]} ]]; then PY="${args[i + 1]}"; fi
done
if [[ -z "$PY" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
command -v "$PY" >/dev/null 2>&1 || { echo "error: $PY not found (see --python in --help)" >&2; exit 2; }
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m stratum_tools.gpu_check "$@"
