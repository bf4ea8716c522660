#!/usr/bin/env bash
# Build the images the real-Docker suite runs the stack on, here, with no image registry.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash tests/compose/images/build.sh [--out FILE] [--sizes FILE]

Builds, on a Debian base made here with debootstrap, one image for each upstream image the cpu
profile runs (each Dockerfile in tests/compose/images/ says what it keeps of its upstream image
and how it differs):

  python:3.12-slim-bookworm        the router Dockerfile's FROM, under that name
  stratum-test/llama.cpp           llama-server (CPU), the e2e suite's build (scripts/e2e-deps.sh)
  stratum-test/litellm             LiteLLM from PyPI (tests/e2e/requirements-litellm.txt)
  stratum-test/open-webui          OpenWebUI from PyPI (tests/e2e/requirements-open-webui.txt)
  stratum-test/postgres            PostgreSQL 17 from Debian (trixie), the official image's contract
  stratum-test/prometheus          Prometheus from Debian, the official image's paths and user
  stratum-test/grafana-stand-in    NOT Grafana (none can be installed here): answers /api/health
  stratum-router                   router/Dockerfile, as shipped

Then writes the .env lines that point the stack at them (default artifacts/compose/images.env):

  bash scripts/start.sh --profile cpu --env-only
  cat artifacts/compose/images.env >> .env
  bash scripts/start.sh

Needs a Docker engine that answers, and root for debootstrap on the first run. The Debian root
file systems and the Python wheels are cached under $STRATUM_CACHE_DIR/compose (default
~/.cache/stratum/compose); an image whose inputs did not change is not rebuilt.

  --out FILE     where to write the .env lines (default artifacts/compose/images.env)
  --sizes FILE   where to write each image's size (default artifacts/compose/image-sizes.txt)
  -h, --help     this text
TXT
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="$ROOT/artifacts/compose/images.env"
SIZES="$ROOT/artifacts/compose/image-sizes.txt"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) [[ $# -ge 2 ]] || { echo "error: --out needs a file" >&2; exit 2; }; OUT=$2; shift ;;
    --sizes) [[ $# -ge 2 ]] || { echo "error: --sizes needs a file" >&2; exit 2; }; SIZES=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=tests/e2e/versions.env
source "$ROOT/tests/e2e/versions.env"
CACHE="${STRATUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum}"
COMPOSE_CACHE="$CACHE/compose"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
PYTHON="${PYTHON:-python3}"
LLAMA_BIN="$CACHE/llama.cpp-b$LLAMA_CPP_BUILD/bin"
LLAMA_BUILD="b$LLAMA_CPP_BUILD"
# The router's tag is its package version (router/pyproject.toml, the one place it is written).
ROUTER_TAG="stratum-router:$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/router/pyproject.toml")"

die() { echo "error: $*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd, or: sudo systemctl start docker)"
[[ -r "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE (set CA_BUNDLE): pip inside the images needs it"
mkdir -p "$COMPOSE_CACHE" "$(dirname "$OUT")" "$(dirname "$SIZES")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# rootfs SUITE: a `docker import`ed debootstrap --variant=minbase of Debian SUITE.
rootfs() {
  local suite=$1 tag="stratum-test/rootfs:$1-minbase" tarball="$COMPOSE_CACHE/$1-minbase.tar"
  if docker image inspect "$tag" >/dev/null 2>&1; then return; fi
  if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is needed for the base image (apt-get install debootstrap)"
    [[ "$(id -u)" == 0 ]] || die "debootstrap needs root: run this as root once (later runs use $tarball)"
    step "debootstrap --variant=minbase $suite (once; cached in $tarball)"
    local dir="$WORK/rootfs-$suite"
    debootstrap --variant=minbase "$suite" "$dir" "$DEBIAN_MIRROR" >"$WORK/debootstrap-$suite.log" 2>&1 \
      || { tail -n 20 "$WORK/debootstrap-$suite.log" >&2; die "debootstrap $suite failed"; }
    tar -C "$dir" -c . >"$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  step "docker import $tarball as $tag"
  docker import "$tarball" "$tag" >/dev/null
}

# inputs_hash FILE...: one hash of every input, so an unchanged image is not rebuilt.
inputs_hash() { cat "$@" | sha256sum | cut -c1-16; }

# build TAG DOCKERFILE CONTEXT [--build-arg ...]: docker build unless an image with the same
# inputs (the Dockerfile, the context's files, the base image) exists already.
build() {
  local tag=$1 dockerfile=$2 context=$3; shift 3
  local hash have
  cp "$HERE/$dockerfile" "$context/Dockerfile"
  hash="$( (find "$context" -type f -printf '%P %s\n' | sort; cat "$context/Dockerfile"; printf '%s\n' "$@") \
    | sha256sum | cut -c1-16)"
  for arg in "$@"; do
    [[ "$arg" == BASE=* ]] && hash="$hash-$(docker image inspect -f '{{.Id}}' "${arg#BASE=}" | cut -c8-19)"
  done
  have="$(docker image inspect -f '{{index .Config.Labels "org.stratum.test.inputs"}}' "$tag" 2>/dev/null || true)"
  if [[ "$have" == "$hash" ]]; then
    step "$tag is up to date"
    return
  fi
  step "building $tag"
  local args=(--label "org.stratum.test.inputs=$hash" -t "$tag")
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  docker build -q "${args[@]}" "$context" >/dev/null || die "building $tag failed (run: docker build $context)"
}

# context NAME: a fresh build context directory.
context() { mkdir -p "$WORK/$1"; printf '%s' "$WORK/$1"; }

# wheels NAME REQUIREMENTS DEST: the pinned wheels, from the cache or PyPI (and the local torch).
wheels() {
  local name=$1 requirements=$2 dest=$3 cached="$COMPOSE_CACHE/wheels/$1"
  local stamp="$cached/.requirements.sha256"
  if ! [[ -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$(sha256sum <"$requirements")" ]]; then
    step "downloading the $name wheels (cached in $cached)"
    rm -rf "$cached"
    mkdir -p "$cached"
    # This machine's Python 3.11 on glibc 2.36 picks the wheels bookworm's Python 3.11 runs.
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      -r "$requirements" -d "$cached" 2> >(grep -v "is ignored: it is neither" >&2) \
      || die "pip download of $requirements failed"
    sha256sum <"$requirements" >"$stamp"
  fi
  mkdir -p "$dest"
  cp -l "$cached"/*.whl "$dest"/ 2>/dev/null || cp "$cached"/*.whl "$dest"/
}

# sdist_file URL SHA256 MEMBER DEST: one file out of a source distribution (cached, checked).
sdist_file() {
  local url=$1 sha256=$2 member=$3 dest=$4 archive
  archive="$COMPOSE_CACHE/$(basename "$url")"
  if ! echo "$sha256  $archive" | sha256sum --status -c 2>/dev/null; then
    "$PYTHON" - "$url" "$archive" <<'PY'
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=300) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)
PY
    echo "$sha256  $archive" | sha256sum --status -c || die "$url does not have SHA-256 $sha256"
  fi
  tar -xzf "$archive" -O "$member" >"$dest"
}

# --- bases ---------------------------------------------------------------------------------------
rootfs bookworm
rootfs trixie
for suite in bookworm trixie; do
  ctx="$(context "base-$suite")"
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  build "stratum-test/base:$suite" base.Dockerfile "$ctx" "ROOTFS=stratum-test/rootfs:$suite-minbase"
done
BOOKWORM=stratum-test/base:bookworm
PY_BASE=python:3.12-slim-bookworm
build "$PY_BASE" python.Dockerfile "$(context python)" "BASE=$BOOKWORM"

# --- the stand-ins -------------------------------------------------------------------------------
if [[ ! -x "$LLAMA_BIN/llama-server" ]]; then
  step "llama-server is not built yet: scripts/e2e-deps.sh builds it (about 10 minutes, once)"
  PYTHON="$PYTHON" bash "$ROOT/scripts/e2e-deps.sh" >/dev/null
fi
ctx="$(context llama)"
cp -a "$LLAMA_BIN" "$ctx/llama-cpp"
LLAMA_TAG="stratum-test/llama.cpp:server-$LLAMA_BUILD"
build "$LLAMA_TAG" llama-server.Dockerfile "$ctx" "BASE=$BOOKWORM"

ctx="$(context litellm)"
cat "$ROOT/tests/e2e/requirements-litellm.txt" "$HERE/bookworm-python-requirements.txt" >"$ctx/requirements.txt"
wheels litellm "$ctx/requirements.txt" "$ctx/wheels"
wheels litellm-prisma "$HERE/litellm-prisma-requirements.txt" "$ctx/wheels"
cat "$HERE/litellm-prisma-requirements.txt" >>"$ctx/requirements.txt"
LITELLM_TAG="stratum-test/litellm:v$LITELLM_VERSION"
build "$LITELLM_TAG" litellm.Dockerfile "$ctx" "BASE=$PY_BASE"

ctx="$(context open-webui)"
cat "$ROOT/tests/e2e/requirements-open-webui.txt" "$HERE/bookworm-python-requirements.txt" >"$ctx/requirements.txt"
wheels open-webui "$ctx/requirements.txt" "$ctx/wheels"
sdist_file "$OPEN_WEBUI_SDIST_URL" "$OPEN_WEBUI_SDIST_SHA256" "open_webui-$OPEN_WEBUI_VERSION/backend/start.sh" "$ctx/start.sh"
OPEN_WEBUI_TAG="stratum-test/open-webui:v$OPEN_WEBUI_VERSION"
build "$OPEN_WEBUI_TAG" open-webui.Dockerfile "$ctx" "BASE=$PY_BASE"

ctx="$(context postgres)"
cp "$HERE/docker-entrypoint.sh" "$ctx/"
POSTGRES_TAG="stratum-test/postgres:17-trixie"
build "$POSTGRES_TAG" postgres.Dockerfile "$ctx" "BASE=stratum-test/base:trixie"

PROMETHEUS_TAG="stratum-test/prometheus:debian-bookworm"
build "$PROMETHEUS_TAG" prometheus.Dockerfile "$(context prometheus)" "BASE=$BOOKWORM"

GRAFANA_TAG="stratum-test/grafana-stand-in:not-grafana"
build "$GRAFANA_TAG" grafana-stand-in.Dockerfile "$(context grafana)" "BASE=$PY_BASE"

# The router as shipped: its own Dockerfile on the python stand-in (start.sh builds it again
# through compose; this one is measured).
step "building $ROUTER_TAG from router/Dockerfile"
docker build -q -t "$ROUTER_TAG" "$ROOT/router" >/dev/null || die "router/Dockerfile does not build"

cat >"$OUT" <<EOF
# Written by tests/compose/images/build.sh: the stack on images built here (stand-ins for the
# upstream images; see tests/compose/images/*.Dockerfile for how each differs).
LLAMA_CPP_CPU_IMAGE=$LLAMA_TAG
LITELLM_IMAGE=$LITELLM_TAG
OPEN_WEBUI_IMAGE=$OPEN_WEBUI_TAG
POSTGRES_IMAGE=$POSTGRES_TAG
PROMETHEUS_IMAGE=$PROMETHEUS_TAG
GRAFANA_IMAGE=$GRAFANA_TAG
EOF
{
  for tag in "$PY_BASE" "$LLAMA_TAG" "$LITELLM_TAG" "$OPEN_WEBUI_TAG" "$POSTGRES_TAG" \
             "$PROMETHEUS_TAG" "$GRAFANA_TAG" "$ROUTER_TAG"; do
    printf '%-45s %s MB\n' "$tag" "$(( $(docker image inspect -f '{{.Size}}' "$tag") / 1000000 ))"
  done
} >"$SIZES"
cat "$SIZES"
step "wrote $OUT"
