#!/usr/bin/env bash
# Bring the whole Stratum stack up: preflight, .env, models, then the services in order.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/start.sh [--dry-run] [--no-download] [--yes] [--timeout SECONDS]

Checks this machine (Docker, Compose >= 2.20, NVIDIA driver and container toolkit, GPU memory and
compute capability, driver vs image CUDA, RAM for the MoE offload, disk, free ports), creates .env
from .env.example when missing (generating LITELLM_MASTER_KEY, WEBUI_SECRET_KEY,
GRAFANA_ADMIN_PASSWORD, POSTGRES_PASSWORD and OPENWEBUI_LITELLM_KEY, never overwriting a value),
makes sure the models are downloaded, then starts vLLM, llama-server, the router, LiteLLM with
its PostgreSQL, OpenWebUI (with its own LiteLLM key), Prometheus and Grafana in order and waits
until every one is healthy.

  --dry-run        check and print what would be done; change nothing, start nothing
  --no-download    fail instead of downloading missing models
  --yes            download missing models without asking
  --timeout N      seconds to wait for the services (default: START_TIMEOUT in .env, 1800)
  -h, --help       this text
TXT
}

DRY_RUN=0
DOWNLOAD=ask
TIMEOUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --no-download) DOWNLOAD=no ;;
    --yes|-y) DOWNLOAD=yes ;;
    --timeout)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
      TIMEOUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

cd "$STRATUM_ROOT"
ENV_FILE="$STRATUM_ROOT/.env"
PROBLEMS=0
problem() { fail "$*"; PROBLEMS=$((PROBLEMS + 1)); }
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would run: $*"
  else
    "$@"
  fi
}

# --- .env ----------------------------------------------------------------------------------------
prepare_env() {
  info ".env"
  if [[ ! -f "$ENV_FILE" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      log "  would create .env from .env.example and generate its secrets"
      load_env "$STRATUM_ROOT/.env.example"
      return 0
    fi
    cp "$STRATUM_ROOT/.env.example" "$ENV_FILE"
    chmod 600 "$ENV_FILE"
    ok "created .env from .env.example"
  fi
  local key value
  for key in LITELLM_MASTER_KEY WEBUI_SECRET_KEY GRAFANA_ADMIN_PASSWORD POSTGRES_PASSWORD OPENWEBUI_LITELLM_KEY; do
    value="$(env_get "$ENV_FILE" "$key")"
    if [[ -n "$value" ]]; then
      ok "$key is set (kept)"
      continue
    fi
    if [[ "$DRY_RUN" == 1 ]]; then
      log "  would generate $key"
      continue
    fi
    case "$key" in
      LITELLM_MASTER_KEY|OPENWEBUI_LITELLM_KEY) value="sk-$(random_secret 24)" ;;
      *) value="$(random_secret 24)" ;;  # hex: safe in DATABASE_URL too
    esac
    env_set "$ENV_FILE" "$key" "$value"
    ok "generated $key"
  done
  load_env "$ENV_FILE"
}

# --- preflight -------------------------------------------------------------------------------------
check_docker() {
  info "Docker"
  if ! have docker; then
    problem "docker is not installed. Install it (and the NVIDIA toolkit) with: sudo bash scripts/install-cuda-linux.sh"
    return
  fi
  if ! docker info >/dev/null 2>&1; then
    problem "the Docker daemon does not answer. Start it (sudo systemctl start docker) and make sure your user may use it (sudo usermod -aG docker \$USER, then log in again)."
    return
  fi
  ok "Docker daemon answers"
  local version
  version="$(docker compose version --short 2>/dev/null || true)"
  version="${version#v}"
  if [[ -z "$version" ]]; then
    problem "Docker Compose v2 is missing (the 'docker compose' plugin). Install docker-compose-plugin."
  elif ! version_ge "$version" 2.20; then
    problem "Docker Compose $version is too old; 2.20 or newer is needed (for depends_on conditions and 'include'). Update docker-compose-plugin."
  else
    ok "Docker Compose $version"
  fi
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia || have nvidia-ctk; then
    ok "NVIDIA Container Toolkit present"
  else
    problem "the NVIDIA Container Toolkit is not configured for Docker: containers cannot see the GPU. Run: sudo bash scripts/install-cuda-linux.sh"
  fi
}

check_gpu() {
  info "GPU"
  if ! have nvidia-smi; then
    problem "no NVIDIA driver found (nvidia-smi is missing). Stratum needs an NVIDIA GPU with 16 GB; install the driver with: sudo bash scripts/install-cuda-linux.sh"
    return
  fi
  local line
  line="$(nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv,noheader,nounits -i "${GPU_DEVICE_ID:-0}" 2>/dev/null | head -n 1 || true)"
  if [[ -z "$line" ]]; then
    problem "nvidia-smi finds no GPU (or the driver is not loaded). Check 'nvidia-smi' and reboot after a driver install."
    return
  fi
  local name mem cap driver
  IFS=',' read -r name mem cap driver <<<"$line"
  name="$(echo "$name" | xargs)"; mem="$(echo "$mem" | xargs)"; cap="$(echo "$cap" | xargs)"; driver="$(echo "$driver" | xargs)"
  ok "$name, ${mem} MiB, compute capability $cap, driver $driver"
  if [[ "$mem" =~ ^[0-9]+$ ]] && (( mem < 15000 )); then
    problem "$name has ${mem} MiB; the 16 GB plan needs a 16 GB card (see docs/HARDWARE-RECOMMENDATIONS.md)."
  fi
  if [[ -n "$cap" ]] && ! version_ge "$cap" 8.9 && [[ "${VLLM_KV_CACHE_DTYPE:-fp8}" == fp8 ]]; then
    warn "compute capability $cap < 8.9: FP8 (KV cache, weights) is not native; set VLLM_KV_CACHE_DTYPE=auto and VLLM_QUANTIZATION_ARGS= in .env"
  fi
  local image="${VLLM_IMAGE:-vllm/vllm-openai:v0.29.0}" need
  if [[ "$image" == *-cu129* ]]; then need=575.57; else need=580.65.06; fi
  if ! version_ge "$driver" "$need"; then
    problem "driver $driver is too old for $image (needs >= $need). Update the driver, or use the CUDA 12.9 image (VLLM_IMAGE=vllm/vllm-openai:v0.29.0-cu129, driver >= 575.57)."
  fi
  if ! version_ge "$driver" 570.124; then
    problem "driver $driver is too old for the llama.cpp CUDA 12.8 image (needs >= 570.124)."
  fi
}

check_memory_and_disk() {
  info "RAM and disk"
  local mem_kb
  mem_kb="$(awk '/^MemTotal:/ {print $2}' "${STRATUM_MEMINFO:-/proc/meminfo}" 2>/dev/null || echo 0)"
  local mem_gb=$(( mem_kb / 1024 / 1024 ))
  if [[ "${LLAMA_N_CPU_MOE:-30}" != 0 ]] && (( mem_gb < 30 )); then
    warn "${mem_gb} GB of RAM: the 26B's experts live in system RAM (LLAMA_N_CPU_MOE=${LLAMA_N_CPU_MOE:-30}); 32 GB or more is needed or llama-server will swap or be killed."
  else
    ok "${mem_gb} GB of RAM"
  fi
  local models_dir="$STRATUM_ROOT/docker/llama-cpp/models" free_gb need_gb=0
  [[ -f "$models_dir/${LLAMA_MODEL_FILE:-gemma-4-26B-A4B-it-Q4_K_M.gguf}" ]] || need_gb=$((need_gb + 18))
  hf_model_present || need_gb=$((need_gb + 17))
  free_gb="$(df -Pk "$STRATUM_ROOT" | awk 'NR == 2 {print int($4 / 1024 / 1024)}')"
  if (( need_gb > 0 && free_gb < need_gb + 5 )); then
    problem "${free_gb} GB free on $(df -P "$STRATUM_ROOT" | awk 'NR == 2 {print $6}'); the missing models need about ${need_gb} GB plus room for images."
  else
    ok "${free_gb} GB of disk free"
  fi
}

check_ports() {
  info "Ports"
  if [[ -n "$(compose ps -q 2>/dev/null || true)" ]]; then
    ok "the stack is already running: its own ports are not checked"
    return
  fi
  local spec name port busy=0
  for spec in "OpenWebUI:${WEBUI_PORT:-3000}" "Grafana:${GRAFANA_PORT:-3001}" "LiteLLM:${LITELLM_PORT:-4000}" \
              "vLLM:${VLLM_PORT:-8000}" "llama-server:${LLAMA_CPP_PORT:-8080}" "router:${ROUTER_PORT:-9000}" \
              "Prometheus:${PROMETHEUS_PORT:-9090}"; do
    name="${spec%%:*}"; port="${spec##*:}"
    if port_in_use "$port"; then
      problem "port $port ($name) is already in use; stop what uses it (ss -ltnp 'sport = :$port') or change it in .env"
      busy=1
    fi
  done
  (( busy )) || ok "all ports free"
}

hf_model_present() {
  local repo="${VLLM_MODEL:-google/gemma-4-E4B-it}" cache="${HF_CACHE_DIR:-./.cache/huggingface}"
  [[ "$cache" == /* ]] || cache="$STRATUM_ROOT/${cache#./}"
  compgen -G "$cache/hub/models--${repo//\//--}/snapshots/*/config.json" >/dev/null
}

check_models() {
  info "Models"
  local gguf="$STRATUM_ROOT/docker/llama-cpp/models/${LLAMA_MODEL_FILE:-gemma-4-26B-A4B-it-Q4_K_M.gguf}"
  local missing=()
  if [[ -f "$gguf" ]]; then ok "tier_high: $(basename "$gguf")"; else missing+=("tier_high GGUF $(basename "$gguf")"); fi
  if hf_model_present; then ok "tier_low: ${VLLM_MODEL:-google/gemma-4-E4B-it}"; else missing+=("tier_low ${VLLM_MODEL:-google/gemma-4-E4B-it}"); fi
  (( ${#missing[@]} == 0 )) && return 0
  warn "missing: ${missing[*]}"
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would run: bash scripts/download-models.sh"
    return 0
  fi
  case "$DOWNLOAD" in
    no) die "models are missing and --no-download was given. Run: bash scripts/download-models.sh" ;;
    ask)
      if [[ -t 0 ]]; then
        local answer
        read -r -p "  Download them now (about 27 GB)? [Y/n] " answer
        [[ -z "$answer" || "$answer" =~ ^[Yy] ]] || die "not downloading. Run bash scripts/download-models.sh when ready."
      else
        die "models are missing. Run: bash scripts/download-models.sh (or start.sh --yes to download now)"
      fi ;;
  esac
  bash "$STRATUM_ROOT/scripts/download-models.sh" || die "the download failed (see above); start.sh can be run again, downloads resume."
}

# --- start and wait ---------------------------------------------------------------------------
hint_for() {
  case "$1" in
    vllm) log "  hint: out of memory? lower VLLM_GPU_MEMORY_UTILIZATION or VLLM_MAX_MODEL_LEN in .env; 'Free memory on device ... less than desired' means another process holds the GPU (nvidia-smi)." ;;
    llama-cpp) log "  hint: check the GGUF file in docker/llama-cpp/models and LLAMA_MODEL_FILE; 'out of memory' on the GPU: raise LLAMA_N_CPU_MOE; killed: not enough system RAM for the experts." ;;
    router) log "  hint: a config error names the key; see docker/router/router_config.yaml and ROUTER_* in .env." ;;
    litellm) log "  hint: check docker/litellm/config.yaml, LITELLM_MASTER_KEY in .env and the database: docker compose logs postgres." ;;
    postgres) log "  hint: a password changed after the first start? POSTGRES_PASSWORD only applies to a new volume (docker volume ls | grep postgres)." ;;
    litellm-keys) log "  hint: it registers OpenWebUI's key (OPENWEBUI_LITELLM_KEY) in LiteLLM's database; its log above says why it failed." ;;
    open-webui) log "  hint: the first start can take minutes; 'docker compose logs open-webui' shows progress." ;;
    *) ;;
  esac
}

wait_healthy() {
  local deadline=$(( $(date +%s) + $1 )); shift
  local services=("$@") svc state line all
  while :; do
    all=1
    line=""
    for svc in "${services[@]}"; do
      state="$(container_state "$svc")"
      line+=" $svc=$state"
      case "$state" in
        healthy|completed) ;;
        unhealthy|exited|dead|missing)
          printf '\n'
          fail "$svc is $state. Its last log lines:"
          compose logs --tail 40 "$svc" 2>&1 | sed 's/^/    /' >&2 || true
          hint_for "$svc"
          return 1 ;;
        *) all=0 ;;
      esac
    done
    printf '\r  waiting:%s   ' "$line"
    if (( all )); then printf '\n'; return 0; fi
    if (( $(date +%s) >= deadline )); then
      printf '\n'
      fail "timed out waiting for:${line}"
      for svc in "${services[@]}"; do
        [[ "$(container_state "$svc")" == healthy ]] && continue
        log "  last log lines of $svc:"
        compose logs --tail 40 "$svc" 2>&1 | sed 's/^/    /' || true
        hint_for "$svc"
      done
      return 1
    fi
    sleep "${STRATUM_POLL_SECONDS:-5}"
  done
}

start_stage() {
  local title=$1; shift
  info "$title"
  run compose up -d "$@"
  if [[ "$DRY_RUN" == 0 ]]; then
    wait_healthy "$WAIT" "$@" || die "the stack did not come up (see above). Fix it, then run scripts/start.sh again; scripts/stop.sh stops everything."
  fi
}

main() {
  log "${C_BOLD}Stratum${C_OFF}: Gemma 4 on one GPU, in two tiers behind an adaptive router"
  prepare_env
  WAIT="${TIMEOUT:-${START_TIMEOUT:-1800}}"
  check_docker
  check_gpu
  check_memory_and_disk
  check_ports
  if (( PROBLEMS > 0 )); then
    die "$PROBLEMS problem(s) found above; nothing was started."
  fi
  check_models
  if [[ "$DRY_RUN" == 0 ]]; then
    info "Building the router image"
    compose build router
  else
    log "  would run: compose build router"
  fi
  # vLLM first: its memory share is a fraction of the whole card, taken while the card is free.
  start_stage "Starting monitoring and the router" prometheus grafana router
  start_stage "Starting tier_low (vLLM, Gemma 4 E4B) - loading takes minutes" vllm
  start_stage "Starting tier_high (llama-server, Gemma 4 26B-A4B)" llama-cpp
  start_stage "Starting LiteLLM (with its database) and OpenWebUI" postgres litellm litellm-keys open-webui
  if [[ "$DRY_RUN" == 1 ]]; then
    info "Dry run: nothing was changed or started."
    return 0
  fi
  local bind="${BIND_ADDRESS:-127.0.0.1}"
  info "Stratum is up"
  log "  Chat (OpenWebUI):  http://localhost:${WEBUI_PORT:-3000}   models: gemma4-fast (routed), gemma4-smart (26B)"
  log "  Router (OpenAI):   http://${bind}:${ROUTER_PORT:-9000}/v1"
  log "  LiteLLM gateway:   http://${bind}:${LITELLM_PORT:-4000}/v1   key: LITELLM_MASTER_KEY in .env"
  log "  Grafana:           http://${bind}:${GRAFANA_PORT:-3001}   user admin, password GRAFANA_ADMIN_PASSWORD in .env"
  log "  Prometheus:        http://${bind}:${PROMETHEUS_PORT:-9090}"
  log ""
  log "  Try it:"
  log "    curl -s http://${bind}:${ROUTER_PORT:-9000}/v1/chat/completions -H 'content-type: application/json' \\"
  log "      -d '{\"model\": \"gemma4-fast\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'"
  log "  Check it: bash scripts/health-check.sh     Stop it: bash scripts/stop.sh"
}

main
