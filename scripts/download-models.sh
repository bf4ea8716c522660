#!/usr/bin/env bash
# Download the models named in .env: the 26B GGUF for llama.cpp and the E4B for vLLM.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/download-models.sh [--dry-run] [--only gguf|vllm] [--no-verify]

Reads .env (or .env.example) and downloads, with progress bars and resume:
  - LLAMA_MODEL_FILE (and LLAMA_MMPROJ_FILE, if set) from LLAMA_MODEL_REPO into docker/llama-cpp/models/
  - VLLM_MODEL into the Hugging Face cache HF_CACHE_DIR (mounted into the vLLM container)
With STRATUM_PROFILE=cpu: CPU_TIER_LOW_MODEL_FILE and CPU_TIER_HIGH_MODEL_FILE from
CPU_TIER_LOW_MODEL_REPO and CPU_TIER_HIGH_MODEL_REPO instead (small GGUFs; no vLLM model).
Free disk space is checked first; files already present with the right size are skipped; GGUF
files are checked against the SHA-256 the Hub publishes. HF_TOKEN is optional (Gemma 4 is not
gated). Uses a private virtual environment in .cache/stratum-tools for huggingface_hub.

  --dry-run     print what would be downloaded (asks the Hub for sizes), download nothing
  --only X      only the GGUF (gguf) or only the vLLM model (vllm)
  --no-verify   skip the SHA-256 check of GGUF files (it reads 17 GB once)
  -h, --help    this text
TXT
}

for arg in "$@"; do
  case "$arg" in -h|--help) usage; exit 0 ;; esac
done

ENV_FILE="$STRATUM_ROOT/.env"
[[ -f "$ENV_FILE" ]] || ENV_FILE="$STRATUM_ROOT/.env.example"
load_env "$ENV_FILE"

have python3 || die "python3 is needed to download models (sudo apt-get install python3 python3-venv)"
TOOLS="$STRATUM_ROOT/.cache/stratum-tools"
PY="$TOOLS/bin/python"
if ! "$PY" -c 'import huggingface_hub' >/dev/null 2>&1; then
  info "Installing huggingface_hub into $TOOLS"
  python3 -m venv "$TOOLS" || die "could not create a virtual environment (sudo apt-get install python3-venv)"
  "$PY" -m pip install --quiet --disable-pip-version-check "huggingface-hub==${HF_HUB_VERSION:-2.4.0}" \
    || die "could not install huggingface_hub: is this machine offline? Copy the models by hand (see docker/llama-cpp/models/README.md)."
fi

if [[ "${STRATUM_PROFILE:-gpu}" == cpu ]]; then
  # No vLLM model here: --only vllm has nothing to do, --only gguf is what runs anyway.
  passed=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --only)
        [[ "${2:-}" == vllm ]] && { ok "cpu profile: there is no vLLM model to download"; exit 0; }
        shift ;;
      *) passed+=("$1") ;;
    esac
    shift
  done
  for tier in LOW HIGH; do
    repo_var="CPU_TIER_${tier}_MODEL_REPO"; file_var="CPU_TIER_${tier}_MODEL_FILE"
    if [[ "$tier" == LOW ]]; then
      repo="${!repo_var:-unsloth/gemma-4-E2B-it-GGUF}"; file="${!file_var:-gemma-4-E2B-it-Q4_K_M.gguf}"
    else
      repo="${!repo_var:-unsloth/gemma-4-E4B-it-GGUF}"; file="${!file_var:-gemma-4-E4B-it-Q4_K_M.gguf}"
    fi
    "$PY" "$STRATUM_ROOT/scripts/download_models.py" --only gguf \
      --gguf-repo "$repo" --gguf-file "$file" --gguf-dir "$STRATUM_ROOT/docker/llama-cpp/models" \
      --vllm-model none --hf-cache "${HF_CACHE_DIR:-./.cache/huggingface}" --root "$STRATUM_ROOT" \
      ${passed[@]+"${passed[@]}"}
  done
  exit 0
fi

exec "$PY" "$STRATUM_ROOT/scripts/download_models.py" \
  --gguf-repo "${LLAMA_MODEL_REPO:-ggml-org/gemma-4-26B-A4B-it-GGUF}" \
  --gguf-file "${LLAMA_MODEL_FILE:-gemma-4-26B-A4B-it-Q4_K_M.gguf}" \
  --mmproj-file "${LLAMA_MMPROJ_FILE-mmproj-gemma-4-26B-A4B-it-Q8_0.gguf}" \
  --gguf-dir "$STRATUM_ROOT/docker/llama-cpp/models" \
  --vllm-model "${VLLM_MODEL:-xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4}" \
  --hf-cache "${HF_CACHE_DIR:-./.cache/huggingface}" \
  --root "$STRATUM_ROOT" \
  "$@"
