#!/usr/bin/env bash
# Regenerate the two lock files from the pins people edit.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash scripts/lock.sh [--upgrade]

Resolves the pinned requirements, with everything they pull in, into lock files with the SHA-256
of every file PyPI has for each version (any platform, Python 3.11 and newer), which pip then
installs with --require-hashes:

  router/requirements.txt + router/build-requirements.txt  ->  router/requirements.lock
      what router/Dockerfile installs
  requirements-dev.txt (which includes the two above)      ->  requirements-dev.lock
      what scripts/test.sh installs; constrained to router/requirements.lock, so the tests run
      on exactly the versions the image ships

Edit the .txt files, never the .lock files, then run this and commit all of them. Versions already
in a lock are kept where the pins allow (a new pin changes only what it must); --upgrade takes
the newest release of everything that is not pinned in a .txt file.

The resolver is uv (pinned in requirements-dev.txt; `bash scripts/test.sh --fast` installs it),
which needs to reach PyPI.

  --upgrade    re-resolve every unpinned dependency to its newest release
  -h, --help   this text
TXT
}

UPGRADE=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --upgrade) UPGRADE=(--upgrade) ;;
    *) echo "error: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV="${UV:-}"
if [[ -z "$UV" ]]; then
  if [[ -x "$ROOT/.venv/bin/uv" ]]; then UV="$ROOT/.venv/bin/uv"; else UV="$(command -v uv || true)"; fi
fi
if [[ -z "$UV" ]]; then
  echo "error: uv not found; run 'bash scripts/test.sh --fast' once (it installs the pinned uv into .venv) or set UV=/path/to/uv" >&2
  exit 1
fi

# --universal: one lock for every platform and Python version (the image runs 3.12, CI 3.11).
compile() {
  "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "bash scripts/lock.sh" "${UPGRADE[@]}" "$@"
}

echo "==> router/requirements.lock"
compile router/requirements.txt router/build-requirements.txt -o router/requirements.lock
echo "==> requirements-dev.lock"
compile requirements-dev.txt --constraint router/requirements.lock -o requirements-dev.lock
echo "done: commit the .txt and .lock files together"
