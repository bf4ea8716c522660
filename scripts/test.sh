#!/usr/bin/env bash
# Run every check of the repository: lint, types and tests. CI runs exactly this command.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash scripts/test.sh [--no-install] [--no-e2e | --compose] [PYTEST_ARGS...]

Creates .venv (or $VENV) if needed, installs the pinned development requirements and the
router package, installs the end-to-end parts (scripts/e2e-deps.sh: llama-server built from
source on the first run, about 10 minutes; LiteLLM; OpenWebUI), then runs ruff, mypy and
pytest over router/tests and tests/ (tests/e2e starts the real stack on loopback; tests/compose
builds the images and starts the cpu profile under the Docker engine with scripts/start.sh).

  --no-install   skip the pip install steps (faster when nothing changed)
  --no-e2e       skip the end-to-end and compose suites and their installs
  --compose      run the real-Docker suite (tests/compose) alone, without lint
  -h, --help     this text

With CI=true a missing tool (the Docker engine included) is a failure, never a skip. Logs,
screenshots and the figures of the end-to-end run are written to artifacts/e2e/, those of the
compose suite (every container's log, the images' sizes) to artifacts/compose/.
TXT
}

INSTALL=1
E2E=1
COMPOSE_ONLY=0
PYTEST_ARGS=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --no-install) INSTALL=0 ;;
    --no-e2e) E2E=0 ;;
    --compose) COMPOSE_ONLY=1 ;;
    *) PYTEST_ARGS+=("$arg") ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: $PYTHON not found; install Python 3.11 or newer (or set PYTHON=/path/to/python3)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11+ is required, $("$PYTHON" --version) found" >&2
  exit 1
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
  INSTALL=1
fi
if [[ "$INSTALL" == 1 ]]; then
  echo "==> installing pinned development requirements"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e ./router
  if [[ "$E2E" == 1 ]]; then
    echo "==> installing the end-to-end parts (cached; the first llama.cpp build takes ~10 minutes)"
    PYTHON="$VENV/bin/python" bash scripts/e2e-deps.sh
  fi
fi
if [[ "$E2E" == 0 && "$COMPOSE_ONLY" == 1 ]]; then
  echo "error: --no-e2e and --compose do not go together" >&2
  exit 2
fi
if [[ "$E2E" == 0 ]]; then
  PYTEST_ARGS=(-m "not e2e and not compose" "${PYTEST_ARGS[@]}")
fi

export PATH="$VENV/bin:$PATH"
export CI="${CI:-false}"
if [[ "$COMPOSE_ONLY" == 1 ]]; then
  echo "==> pytest (the real-Docker suite)"
  exec pytest -c router/pyproject.toml --rootdir "$ROOT" --durations=15 tests/compose "${PYTEST_ARGS[@]}"
fi

echo "==> ruff"
ruff check router benchmarks rag-integration tests grafana scripts
ruff format --check router benchmarks rag-integration tests grafana scripts

echo "==> mypy"
(cd router && mypy)
# The scripts start.sh and compose run on the host (standard library only; typed like the router).
mypy --strict scripts/plan_vram.py scripts/vram_facts.py scripts/team_keys.py scripts/sync_kubernetes.py \
  scripts/envfile.py

echo "==> pytest"
pytest -c router/pyproject.toml --rootdir "$ROOT" --durations=15 router/tests tests "${PYTEST_ARGS[@]}"
