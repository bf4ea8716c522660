#!/usr/bin/env bash
# Download the models named in .env: the 26B GGUF for llama.cpp, the E4B for vLLM, and the
# retrieval engines' GGUFs (embeddings, reranking).
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/download-models.sh [--dry-run] [--only gguf|vllm|retrieval] [--no-verify]

Reads .env (or .env.example) and downloads, with progress bars and resume:
  - LLAMA_MODEL_FILE (and LLAMA_MMPROJ_FILE, if set) from LLAMA_MODEL_REPO into docker/llama-cpp/models/
  - VLLM_MODEL into the Hugging Face cache HF_CACHE_DIR (mounted into the vLLM container)
  - EMBED_MODEL_FILE from EMBED_MODEL_REPO and RERANK_MODEL_FILE from RERANK_MODEL_REPO (the
    retrieval engines: EmbeddingGemma 300M, about 280 MB; bge-reranker-v2-m3, about 440 MB)
With STRATUM_PROFILE=cpu: CPU_TIER_LOW_MODEL_FILE and CPU_TIER_HIGH_MODEL_FILE from
CPU_TIER_LOW_MODEL_REPO and CPU_TIER_HIGH_MODEL_REPO instead of the 26B and the E4B (small
GGUFs; no vLLM model), and the same retrieval models.
Free disk space is checked first; files already present with the right size are skipped; GGUF
files are checked against the SHA-256 the Hub publishes. HF_TOKEN is optional (Gemma 4 is not
gated). Uses a private virtual environment in .cache/stratum-tools for huggingface_hub.

  --dry-run     print what would be downloaded (asks the Hub for sizes), download nothing
  --only X      only the tiers' GGUFs (gguf), only the vLLM model (vllm), or only the
                retrieval engines' GGUFs (retrieval)
  --no-verify   skip the SHA-256 check of GGUF files (it reads 17 GB once)
  -h, --help    this text
TXT
}

for arg in "$@"; do
  case "$arg" in -h|--help) usage; exit 0 ;; esac
done

# --only is read here; the other options go to the Python helper as they are.
only="" passed=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --only)
      only="${2:-}"
      [[ "$only" =~ ^(gguf|vllm|retrieval)$ ]] || die "--only takes gguf, vllm or retrieval (got '${only}')"
      shift ;;
    *) passed+=("$1") ;;
  esac
  shift
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

# gguf_download REPO FILE: one GGUF into docker/llama-cpp/models (size and SHA-256 checked).
gguf_download() {
  "$PY" "$STRATUM_ROOT/scripts/download_models.py" --only gguf \
    --gguf-repo "$1" --gguf-file "$2" --gguf-dir "$STRATUM_ROOT/docker/llama-cpp/models" \
    --vllm-model none --hf-cache "${HF_CACHE_DIR:-./.cache/huggingface}" --root "$STRATUM_ROOT" \
    ${passed[@]+"${passed[@]}"}
}

# The retrieval engines' models, in both profiles (docker-compose.yml: embed, rerank).
# EmbeddingGemma: ggml-org's QAT Q4_0 conversion, the file llama.cpp's --embd-gemma-default
# preset loads (common/arg.cpp); Gemma terms of use. bge-reranker-v2-m3: gpustack's Q4_K_M
# conversion of BAAI's model (Apache-2.0), the reranker llama.cpp's server README names.
retrieval_models() {
  gguf_download "${EMBED_MODEL_REPO:-ggml-org/embeddinggemma-300M-qat-q4_0-GGUF}" \
    "${EMBED_MODEL_FILE:-embeddinggemma-300M-qat-Q4_0.gguf}"
  gguf_download "${RERANK_MODEL_REPO:-gpustack/bge-reranker-v2-m3-GGUF}" \
    "${RERANK_MODEL_FILE:-bge-reranker-v2-m3-Q4_K_M.gguf}"
}

if [[ "$only" == retrieval ]]; then
  retrieval_models
  exit 0
fi

if [[ "${STRATUM_PROFILE:-gpu}" == cpu ]]; then
  # No vLLM model here: --only vllm has nothing to do.
  [[ "$only" == vllm ]] && { ok "cpu profile: there is no vLLM model to download"; exit 0; }
  for tier in LOW HIGH; do
    repo_var="CPU_TIER_${tier}_MODEL_REPO"; file_var="CPU_TIER_${tier}_MODEL_FILE"
    if [[ "$tier" == LOW ]]; then
      repo="${!repo_var:-unsloth/gemma-4-E2B-it-GGUF}"; file="${!file_var:-gemma-4-E2B-it-Q4_K_M.gguf}"
    else
      repo="${!repo_var:-unsloth/gemma-4-E4B-it-GGUF}"; file="${!file_var:-gemma-4-E4B-it-Q4_K_M.gguf}"
    fi
    gguf_download "$repo" "$file"
  done
  [[ -n "$only" ]] || retrieval_models
  exit 0
fi

"$PY" "$STRATUM_ROOT/scripts/download_models.py" \
  --gguf-repo "${LLAMA_MODEL_REPO:-google/gemma-4-26B-A4B-it-qat-q4_0-gguf}" \
  --gguf-file "${LLAMA_MODEL_FILE:-gemma-4-26B_q4_0-it.gguf}" \
  --mmproj-file "${LLAMA_MMPROJ_FILE-gemma-4-26B-it-mmproj.gguf}" \
  --gguf-dir "$STRATUM_ROOT/docker/llama-cpp/models" \
  --vllm-model "${VLLM_MODEL:-xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4}" \
  --hf-cache "${HF_CACHE_DIR:-./.cache/huggingface}" \
  --root "$STRATUM_ROOT" \
  ${only:+--only "$only"} ${passed[@]+"${passed[@]}"}
[[ -n "$only" ]] || retrieval_models
