#!/usr/bin/env bash
# Install the real parts the end-to-end tests run, into a cache keyed by version.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash scripts/e2e-deps.sh [--check]

Installs what tests/e2e starts on loopback, each pinned (tests/e2e/versions.env) and cached under
$STRATUM_CACHE_DIR (default ~/.cache/stratum), so only the first run is slow:

  llama-server    built (CPU) from the llama.cpp source tree in a PyPI sdist, checked by SHA-256
                  (scripts/llama-server-build.sh; ~10 minutes on 2 cores)
  LiteLLM proxy   its own virtual environment (tests/e2e/requirements-litellm.txt)
  OpenWebUI       its own virtual environment (tests/e2e/requirements-open-webui.txt, torch CPU)
  vLLM source     the Python files of vLLM's sdist from PyPI (checked by SHA-256; read by the
                  flag drift test, never built)

Prometheus and Chromium come from Debian packages (.ci/run installs them).

  --check      only report what is installed; exit 1 if something is missing
  -h, --help   this text
TXT
}

CHECK=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --check) CHECK=1 ;;
    *) echo "error: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/e2e/versions.env
source "$ROOT/tests/e2e/versions.env"
CACHE="${STRATUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum}"
PYTHON="${PYTHON:-python3}"
PIP_FLAGS=(--quiet --disable-pip-version-check)

LLAMA_DIR="$CACHE/llama.cpp-b$LLAMA_CPP_BUILD"
LLAMA_SERVER="$LLAMA_DIR/bin/llama-server"
LLAMA_SDIST="$LLAMA_DIR/$(basename "$LLAMA_CPP_SDIST_URL")"
LITELLM_VENV="$CACHE/venv-litellm-$LITELLM_VERSION"
WEBUI_VENV="$CACHE/venv-open-webui-$OPEN_WEBUI_VERSION"
VLLM_SRC="$CACHE/vllm-src-$VLLM_VERSION"

report() {
  local missing=0
  for item in "llama-server:$LLAMA_SERVER" "litellm:$LITELLM_VENV/bin/litellm" \
              "open-webui:$WEBUI_VENV/bin/open-webui" "vllm-source:$VLLM_SRC/vllm/engine/arg_utils.py"; do
    if [[ -x "${item#*:}" || ( "${item%%:*}" == vllm-source && -f "${item#*:}" ) ]]; then
      echo "ok       ${item%%:*}  ${item#*:}"
    else
      echo "missing  ${item%%:*}  ${item#*:}"
      missing=1
    fi
  done
  return "$missing"
}

if [[ "$CHECK" == 1 ]]; then
  report
  exit $?
fi

mkdir -p "$CACHE"

# -- llama-server -------------------------------------------------------------------------------
# fetch URL SHA256 DEST: a file from PyPI, kept only if its SHA-256 is the pinned one.
fetch() {
  "$PYTHON" - "$1" "$2" "$3" <<'PY'
import hashlib, shutil, sys, tempfile, urllib.request
from pathlib import Path
url, sha256, dest = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as f:
    with urllib.request.urlopen(url, timeout=300) as r:
        shutil.copyfileobj(r, f)
part = Path(f.name)
digest = hashlib.sha256(part.read_bytes()).hexdigest()
if digest != sha256:
    part.unlink()
    sys.exit(f"error: {url} has SHA-256 {digest}, expected {sha256}")
part.replace(dest)
PY
}

if ! "$LLAMA_SERVER" --version >/dev/null 2>&1; then
  mkdir -p "$LLAMA_DIR"
  if ! echo "$LLAMA_CPP_SDIST_SHA256  $LLAMA_SDIST" | sha256sum --status -c 2>/dev/null; then
    echo "==> fetching the llama.cpp b$LLAMA_CPP_BUILD source ($(basename "$LLAMA_SDIST"))"
    fetch "$LLAMA_CPP_SDIST_URL" "$LLAMA_CPP_SDIST_SHA256" "$LLAMA_SDIST"
  fi
  echo "==> building llama-server b$LLAMA_CPP_BUILD (CPU; about 10 minutes on 2 cores)"
  if ! bash "$ROOT/scripts/llama-server-build.sh" --sdist "$LLAMA_SDIST" --work "$LLAMA_DIR/work" \
      >"$LLAMA_DIR/build.log" 2>&1; then
    tail -n 30 "$LLAMA_DIR/build.log" >&2
    echo "error: the llama.cpp build failed (log: $LLAMA_DIR/build.log); it needs cmake, ninja, gcc and g++" >&2
    exit 1
  fi
  # The binary and its shared libraries (and their soname links) side by side: RPATH $ORIGIN.
  rm -rf "${LLAMA_DIR:?}/bin"
  mkdir -p "$LLAMA_DIR/bin"
  cp -a "$LLAMA_DIR/work/build/bin/llama-server" "$LLAMA_DIR/work/build/bin/"lib*.so* "$LLAMA_DIR/bin/"
  rm -rf "$LLAMA_DIR/work"
  "$LLAMA_SERVER" --version 2>&1 | grep -q version || {
    echo "error: $LLAMA_SERVER does not run; delete $LLAMA_DIR and try again" >&2
    exit 1
  }
fi

# -- Python tools, each in its own virtual environment (their pins clash with the router's) -----
venv_install() {  # venv requirements-file
  local venv="$1" requirements="$2" stamp
  stamp="$venv/.requirements.sha256"
  if [[ -f "$stamp" ]] && sha256sum --status -c "$stamp" 2>/dev/null; then
    return
  fi
  echo "==> installing $(basename "$venv") (pinned by ${requirements#"$ROOT"/})"
  [[ -x "$venv/bin/python" ]] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install "${PIP_FLAGS[@]}" --no-deps -r "$requirements"
  (cd "$(dirname "$requirements")" && sha256sum "$(basename "$requirements")") \
    | sed "s|  |  $(dirname "$requirements")/|" >"$stamp"
}
venv_install "$LITELLM_VENV" "$ROOT/tests/e2e/requirements-litellm.txt"

# -- vLLM's source: its Python files only (pip cannot download an sdist without building it) -------
if [[ ! -f "$VLLM_SRC/vllm/engine/arg_utils.py" ]]; then
  echo "==> fetching the vLLM $VLLM_VERSION source distribution (read by the flag drift test)"
  "$PYTHON" - "$VLLM_SDIST_URL" "$VLLM_SDIST_SHA256" "$VLLM_SRC" <<'PY'
import hashlib, shutil, sys, tarfile, tempfile, urllib.request
from pathlib import Path
url, sha256, dest = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with tempfile.TemporaryDirectory() as tmp:
    archive = Path(tmp) / "vllm.tar.gz"
    with urllib.request.urlopen(url, timeout=300) as r, archive.open("wb") as f:
        shutil.copyfileobj(r, f)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        sys.exit(f"error: {url} has SHA-256 {digest}, expected {sha256}")
    staging = Path(tmp) / "src"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.endswith(".py") and "/vllm/" in m.name]
        tar.extractall(staging, members=members, filter="data")
    (top,) = staging.iterdir()
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(str(top), dest)
PY
fi
venv_install "$WEBUI_VENV" "$ROOT/tests/e2e/requirements-open-webui.txt"

report
