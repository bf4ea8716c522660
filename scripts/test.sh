#!/usr/bin/env bash
# Run the checks of the repository: lint, types and tests. CI runs this command with no option.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash scripts/test.sh [--fast | --no-e2e | --compose] [--no-install] [PYTEST_ARGS...]
       bash scripts/test.sh --lint | --types

Creates .venv (or $VENV) if needed and installs the locked development requirements into it,
then runs one tier of checks:

  (no option)    everything, as CI does: ruff, mypy and pytest over router/tests and tests/,
                 the end-to-end suite included (tests/e2e starts the real stack on loopback;
                 its parts come from scripts/e2e-deps.sh: llama-server built from source on the
                 first run, about 10 minutes; LiteLLM; OpenWebUI) and the real-Docker suite
                 (tests/compose builds the images and starts the cpu profile under the Docker
                 engine with scripts/start.sh)
  --fast         lint, types and the unit tests (the decision engine, the service against fake
                 engines, the stack's files and scripts): under 2 minutes; run it before a commit
  --no-e2e       lint, types and every test but the end-to-end and compose suites
  --compose      the real-Docker suite (tests/compose) alone, without lint
  --lint         ruff's checks and formatter alone (a pre-commit hook)
  --types        mypy alone (a pre-commit hook)

  --no-install   skip the installs (they are skipped anyway while the lock is unchanged)
  -h, --help     this text

Installs are locked: requirements-dev.lock (every package and the SHA-256 of its files) with
pip --require-hashes, then the router (router/) and the repository's tools (stratum_tools/),
editable, with nothing else. To add or change a dependency, edit router/requirements.txt (the
router image's), router/build-requirements.txt or requirements-dev.txt, then regenerate both
locks with one command and commit them with the change:

  bash scripts/lock.sh

With CI=true a missing tool (the Docker engine included) is a failure, never a skip. Logs,
screenshots and the figures of the end-to-end run are written to artifacts/e2e/, those of the
compose suite (every container's log, the images' sizes) to artifacts/compose/.
TXT
}

TIER=all
INSTALL=1
PYTEST_ARGS=()
set_tier() {
  if [[ "$TIER" != all ]]; then
    echo "error: $TIER and $1 do not go together (see --help)" >&2
    exit 2
  fi
  TIER="$1"
}
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --no-install) INSTALL=0 ;;
    --fast|--no-e2e|--compose|--lint|--types) set_tier "$arg" ;;
    *) PYTEST_ARGS+=("$arg") ;;
  esac
done

# The unit tests of --fast: no engine, no stack, no Docker; each file runs in seconds.
FAST_TESTS=(
  router/tests
  tests/test_api_doc.py tests/test_compose.py tests/test_docs.py tests/test_gpu_check.py
  tests/test_envfile.py tests/test_generate.py tests/test_locks.py tests/test_versions.py
  tests/test_vram_plan.py
)
# Half of their time on 2 cores, left to the full tiers: the scorer's training run twice (to
# compare the bytes), and every benchmark's --help run to check the flags the docs name.
FAST_DESELECT=(
  --deselect router/tests/test_devset.py::test_training_is_reproducible_to_the_byte
  --deselect tests/test_docs.py::test_benchmark_flags_in_the_docs_exist
)

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
  rm -f "$VENV/.stratum-lock.sha256"
fi
# What the installs depend on; while it is unchanged they are skipped (the stamp is in the venv).
STAMP="$VENV/.stratum-lock.sha256"
inputs_hash() { sha256sum requirements-dev.lock router/pyproject.toml pyproject.toml; }
if [[ "$INSTALL" == 1 ]] && [[ "$(cat "$STAMP" 2>/dev/null)" != "$(inputs_hash)" ]]; then
  echo "==> installing the locked development requirements (requirements-dev.lock)"
  pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" --require-hashes -r requirements-dev.lock
  # The router and the repository's tools (stratum_tools), editable: every module imports by
  # name (pyproject.toml). No dependencies and no build environment: both came from the lock.
  "${pip[@]}" --no-deps --no-build-isolation -e ./router -e .
  inputs_hash >"$STAMP"
fi
if [[ "$INSTALL" == 1 && "$TIER" == all ]]; then
  echo "==> installing the end-to-end parts (cached; the first llama.cpp build takes ~10 minutes)"
  PYTHON="$VENV/bin/python" bash scripts/e2e-deps.sh
fi

export PATH="$VENV/bin:$PATH"
export CI="${CI:-false}"

lint() {
  echo "==> ruff"
  ruff check .
  ruff format --check .
}
types() {
  echo "==> mypy"
  # Every Python file, strict (pyproject.toml); tests/e2e/conftest.py apart, as its name is taken.
  mypy
  mypy tests/e2e/conftest.py
}

case "$TIER" in
  --lint) lint ;;
  --types) types ;;
  --compose)
    echo "==> pytest (the real-Docker suite)"
    exec pytest --durations=15 tests/compose "${PYTEST_ARGS[@]}"
    ;;
  --fast)
    lint
    types
    echo "==> pytest (unit tests)"
    pytest -m "not e2e and not compose" "${FAST_DESELECT[@]}" "${FAST_TESTS[@]}" "${PYTEST_ARGS[@]}"
    ;;
  --no-e2e)
    lint
    types
    echo "==> pytest"
    pytest --durations=15 -m "not e2e and not compose" router/tests tests "${PYTEST_ARGS[@]}"
    ;;
  all)
    lint
    types
    echo "==> pytest"
    pytest --durations=15 router/tests tests "${PYTEST_ARGS[@]}"
    ;;
esac
