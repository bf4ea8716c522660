#!/usr/bin/env bash
# One line per service (container, health endpoint, model loaded), then a real request per tier.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/health-check.sh [--json] [--no-requests]

For each service: the container's state, its health endpoint and, for the engines, whether the
model is loaded. Then real requests through the router (:9000, with ROUTER_API_KEY from .env):
a chat to each tier, an embedding and a rerank. Exits 1 when a required service (router, vLLM,
llama-server, the embedding and reranking engines, LiteLLM and its database) or one of these
requests fails; OpenWebUI, Prometheus and Grafana are reported but optional.

  --json          machine-readable output (one JSON object)
  --no-requests   skip the test requests (no tokens generated)
  -h, --help      this text
TXT
}

JSON=0
REQUESTS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --json) JSON=1 ;;
    --no-requests) REQUESTS=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

load_env "$STRATUM_ROOT/.env"
HOST="${HEALTH_HOST:-127.0.0.1}"
have curl || die "curl is needed (sudo apt-get install curl)"

RESULTS=()   # service|required|container|endpoint|detail|ok
FAILED=0

http_code() {  # http_code URL [curl args...]: prints the status code (000 when unreachable)
  local url=$1; shift
  curl -s -o /dev/null -m "${HEALTH_TIMEOUT:-5}" -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}

http_body() {
  local url=$1; shift
  curl -s -m "${HEALTH_TIMEOUT:-5}" "$@" "$url" 2>/dev/null || true
}

record() {  # record SERVICE REQUIRED CONTAINER ENDPOINT DETAIL OK
  RESULTS+=("$1|$2|$3|$4|$5|$6")
  if [[ "$6" != 1 && "$2" == 1 ]]; then FAILED=1; fi
}

container_of() {
  if have docker && docker info >/dev/null 2>&1; then container_state "$1"; else echo "unknown"; fi
}

check_service() {  # check_service NAME REQUIRED URL EXPECT [MODEL_URL MODEL_ID]
  local name=$1 required=$2 url=$3 expect=$4 model_url=${5:-} model_id=${6:-}
  local state code detail="" good=1
  state="$(container_of "$name")"
  code="$(http_code "$url")"
  [[ "$code" == "$expect" ]] || good=0
  case "$code" in
    000) detail="not reachable at $url" ;;
    503) detail="503 (loading or no tier can serve)" ;;
    "$expect") detail="ok" ;;
    *) detail="HTTP $code from $url" ;;
  esac
  if [[ -n "$model_url" && "$good" == 1 ]]; then
    if http_body "$model_url" | grep -q "\"$model_id\""; then
      detail="model $model_id loaded"
    else
      detail="answers, but model $model_id is not listed at $model_url"
      good=0
    fi
  fi
  record "$name" "$required" "$state" "$code" "$detail" "$good"
}

check_service router 1 "http://$HOST:${ROUTER_PORT:-9000}/health" 200
# The served model names: docker-compose.yml's, or docker-compose.cpu.yml's for the cpu profile.
low_model=gemma-4-e4b high_model=gemma-4-26b-a4b
if [[ "${STRATUM_PROFILE:-gpu}" == cpu ]]; then low_model=gemma-4-e2b high_model=gemma-4-e4b; fi
check_service vllm 1 "http://$HOST:${VLLM_PORT:-8000}/health" 200 "http://$HOST:${VLLM_PORT:-8000}/v1/models" "$low_model"
check_service llama-cpp 1 "http://$HOST:${LLAMA_CPP_PORT:-8080}/health" 200 "http://$HOST:${LLAMA_CPP_PORT:-8080}/v1/models" "$high_model"
check_service embed 1 "http://$HOST:${EMBED_PORT:-8081}/health" 200 "http://$HOST:${EMBED_PORT:-8081}/v1/models" embeddinggemma-300m
check_service rerank 1 "http://$HOST:${RERANK_PORT:-8082}/health" 200 "http://$HOST:${RERANK_PORT:-8082}/v1/models" bge-reranker-v2-m3
check_service litellm 1 "http://$HOST:${LITELLM_PORT:-4000}/health/liveliness" 200
# Team keys and their usage need LiteLLM's database: /health/readiness says whether it is there.
readiness="$(http_body "http://$HOST:${LITELLM_PORT:-4000}/health/readiness")"
if grep -Eq '"db": ?"connected"' <<<"$readiness"; then
  record litellm-db 1 "$(container_of postgres)" 200 "database connected (team keys, usage)" 1
else
  record litellm-db 1 "$(container_of postgres)" "-" "LiteLLM has no database: team keys fail (docker compose logs postgres litellm)" 0
fi
check_service open-webui 0 "http://$HOST:${WEBUI_PORT:-3000}/health" 200
check_service prometheus 0 "http://$HOST:${PROMETHEUS_PORT:-9090}/-/healthy" 200
check_service grafana 0 "http://$HOST:${GRAFANA_PORT:-3001}/api/health" 200

if [[ "$REQUESTS" == 1 ]]; then
  auth=()
  [[ -n "${ROUTER_API_KEY:-}" ]] && auth=(-H "Authorization: Bearer ${ROUTER_API_KEY}")
  for tier in tier_low tier_high; do
    body="{\"model\": \"$tier\", \"max_tokens\": 8, \"messages\": [{\"role\": \"user\", \"content\": \"Say OK.\"}]}"
    headers="$(mktemp)"
    code="$(curl -s -o /dev/null -D "$headers" -m "${HEALTH_REQUEST_TIMEOUT:-120}" -w '%{http_code}' \
      -H 'content-type: application/json' "${auth[@]}" -d "$body" \
      "http://$HOST:${ROUTER_PORT:-9000}/v1/chat/completions" 2>/dev/null || true)"
    served="$(awk -F': *' 'tolower($1) == "x-router-tier" {gsub(/\r/, "", $2); print $2}' "$headers")"
    rm -f "$headers"
    if [[ "$code" == 200 && "$served" == "$tier" ]]; then
      record "request:$tier" 1 "-" "$code" "answered by $served" 1
    elif [[ "$code" == 200 ]]; then
      record "request:$tier" 1 "-" "$code" "answered by ${served:-?} instead (degraded)" 0
    else
      record "request:$tier" 1 "-" "${code:-000}" "request through the router failed" 0
    fi
  done
  for kind in embeddings rerank; do
    if [[ "$kind" == embeddings ]]; then
      body='{"model": "gemma-embed", "input": ["Stratum health check"]}'
      expect='"embedding"'
    else
      body='{"model": "gemma-rerank", "query": "health", "documents": ["health check", "weather"]}'
      expect='"relevance_score"'
    fi
    answer="$(mktemp)"
    code="$(curl -s -o "$answer" -m "${HEALTH_REQUEST_TIMEOUT:-120}" -w '%{http_code}' \
      -H 'content-type: application/json' "${auth[@]}" -d "$body" \
      "http://$HOST:${ROUTER_PORT:-9000}/v1/$kind" 2>/dev/null || true)"
    if [[ "$code" == 200 ]] && grep -q "$expect" "$answer"; then
      record "request:$kind" 1 "-" "$code" "answered through the router" 1
    else
      record "request:$kind" 1 "-" "${code:-000}" "request through the router failed" 0
    fi
    rm -f "$answer"
  done
fi

if [[ "$JSON" == 1 ]]; then
  printf '{"ok": %s, "services": [' "$([[ $FAILED == 0 ]] && echo true || echo false)"
  sep=""
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r name required state code detail good <<<"$row"
    detail="${detail//\\/\\\\}"; detail="${detail//\"/\\\"}"
    printf '%s{"service": "%s", "required": %s, "container": "%s", "http": "%s", "detail": "%s", "ok": %s}' \
      "$sep" "$name" "$([[ $required == 1 ]] && echo true || echo false)" "$state" "$code" "$detail" \
      "$([[ $good == 1 ]] && echo true || echo false)"
    sep=", "
  done
  printf ']}\n'
else
  printf '%-18s %-10s %-6s %s\n' SERVICE CONTAINER HTTP DETAIL
  for row in "${RESULTS[@]}"; do
    IFS='|' read -r name required state code detail good <<<"$row"
    mark="${C_GREEN}ok${C_OFF}"
    if [[ "$good" != 1 ]]; then
      if [[ "$required" == 1 ]]; then mark="${C_RED}FAIL${C_OFF}"; else mark="${C_YELLOW}warn${C_OFF}"; fi
    fi
    printf '%-18s %-10s %-6s %s  %s\n' "$name" "$state" "$code" "$detail" "$mark"
  done
  if [[ "$FAILED" == 1 ]]; then
    log "Something required is down. 'docker compose logs <service>' shows why; docs/HANDOVER.md lists fixes."
  fi
fi
exit "$FAILED"
