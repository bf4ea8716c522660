#!/usr/bin/env bash
# Bring the whole Stratum stack up: preflight, .env, models, then the services in order.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/start.sh [--profile NAME] [--dry-run | --env-only] [--no-download] [--yes] [--timeout SECONDS]

Checks this machine (Docker, Compose >= 2.20, NVIDIA driver and container toolkit, that every
image can be pulled, the GPU memory plan of .env against the card (scripts/plan_vram.py), compute
capability, driver vs image CUDA, RAM for the MoE offload, disk, free ports), creates .env
from .env.example when missing (generating LITELLM_MASTER_KEY, WEBUI_SECRET_KEY,
GRAFANA_ADMIN_PASSWORD, POSTGRES_PASSWORD, OPENWEBUI_LITELLM_KEY and ROUTER_API_KEY, never
overwriting a value),
makes sure the models are downloaded, then starts vLLM, llama-server, the router, LiteLLM with
its PostgreSQL, OpenWebUI (with its own LiteLLM key), Prometheus and Grafana in order and waits
until every one is healthy. vLLM always starts before llama-server: when vLLM is down and
llama-server is up (after a crash or a restart of vLLM), llama-server is stopped first.

  --profile NAME    16gb (the default), 24gb, 32gb, dual-16gb (one card per engine) or cpu (no
                   GPU at all: small Gemma 4 models on llama.cpp's CPU server). .env records the
                   profile it holds (STRATUM_PROFILE); when it holds another one, start.sh shows
                   what would change and applies it (asking first, or with --yes), keeping the
                   secrets and every other line.
  --dry-run        check and print what would be done; change nothing, start nothing
  --env-only       create or complete .env (profile, secrets, COMPOSE_FILE), then stop: to
                   edit it before the first start
  --no-download    fail instead of downloading missing models
  --yes            apply a --profile change and download missing models without asking
  --timeout N      seconds to wait for the services (default: START_TIMEOUT in .env, 1800)
  -h, --help       this text
TXT
}

DRY_RUN=0
ENV_ONLY=0
DOWNLOAD=ask
YES=0
TIMEOUT=""
PROFILE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile)
      [[ $# -ge 2 && "$2" =~ ^(16gb|24gb|32gb|dual-16gb|cpu)$ ]] \
        || die "--profile is one of 16gb, 24gb, 32gb, dual-16gb, cpu"
      PROFILE=$2; shift ;;
    --dry-run) DRY_RUN=1 ;;
    --env-only) ENV_ONLY=1 ;;
    --no-download) DOWNLOAD=no ;;
    --yes|-y) DOWNLOAD=yes; YES=1 ;;
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
# profile_values NAME: the profile's settings as KEY=VALUE lines (scripts/plan_vram.py).
profile_values() {
  python3 "$STRATUM_ROOT/scripts/plan_vram.py" profile "$1" --settings \
    || die "cannot read the $1 profile (python3 3.10+ is needed: sudo apt install python3)"
}

prepare_env() {
  info ".env"
  local line created=0
  if [[ ! -f "$ENV_FILE" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      log "  would create .env from .env.example${PROFILE:+ with the $PROFILE profile} and generate its secrets"
      if [[ -n "$PROFILE" ]]; then
        while IFS= read -r line; do export "${line?}"; done < <(profile_values "$PROFILE")
      fi
      load_env "$STRATUM_ROOT/.env.example"
      COMPOSE_FILE="$(default_compose_files "$(profile_layout "${STRATUM_PROFILE:-}")" "${RETRIEVAL_DEVICE:-cpu}")"
      export COMPOSE_FILE
      return 0
    fi
    cp "$STRATUM_ROOT/.env.example" "$ENV_FILE"
    chmod 600 "$ENV_FILE"
    created=1
    if [[ -n "$PROFILE" ]]; then
      local lines=()
      while IFS= read -r line; do lines+=("$line"); done < <(profile_values "$PROFILE")
      envfile set "$ENV_FILE" "${lines[@]}" || die "cannot write .env (see above)"
      ok "created .env from .env.example with the $PROFILE profile"
    else
      ok "created .env from .env.example"
    fi
  elif [[ -n "$PROFILE" ]]; then
    refuse_retired_settings
    apply_profile "$PROFILE"
  else
    refuse_retired_settings
  fi
  local key value
  for key in LITELLM_MASTER_KEY WEBUI_SECRET_KEY GRAFANA_ADMIN_PASSWORD POSTGRES_PASSWORD OPENWEBUI_LITELLM_KEY ROUTER_API_KEY; do
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
      LITELLM_MASTER_KEY|OPENWEBUI_LITELLM_KEY|ROUTER_API_KEY) value="sk-$(random_secret 24)" ;;
      *) value="$(random_secret 24)" ;;  # hex: safe in DATABASE_URL too
    esac
    env_set "$ENV_FILE" "$key" "$value"
    ok "generated $key"
  done
  record_compose_files "$created"
  load_env "$ENV_FILE"
}

# apply_profile NAME: make .env hold profile NAME's settings (scripts/plan_vram.py): show each
# line that would change, then change only those (asking first, unless --yes), so the secrets
# and the user's other lines stay. COMPOSE_FILE follows when it is the old profile's default.
apply_profile() {
  local name=$1 line key want have width=0 current retrieval
  local -a keys=() wants=() haves=()
  current="$(env_get "$ENV_FILE" STRATUM_PROFILE)"
  retrieval="$(env_get "$ENV_FILE" RETRIEVAL_DEVICE)"
  while IFS= read -r line; do
    key=${line%%=*}; want=${line#*=}
    have="$(env_get "$ENV_FILE" "$key")"
    [[ "$have" == "$want" ]] && continue
    keys+=("$key"); wants+=("$want"); haves+=("$have")
  done < <(profile_values "$name")
  have="$(env_get "$ENV_FILE" COMPOSE_FILE)"
  want="$(default_compose_files "$(profile_layout "$name")" "${retrieval:-cpu}")"
  if [[ "$have" != "$want" && "$have" == "$(default_compose_files "$(profile_layout "${current:-gpu}")" "${retrieval:-cpu}")" ]]; then
    keys+=(COMPOSE_FILE); wants+=("$want"); haves+=("$have")
  fi
  if (( ${#keys[@]} == 0 )); then
    ok ".env holds the $name profile"
    return 0
  fi
  for key in "${keys[@]}"; do (( ${#key} > width )) && width=${#key}; done
  if [[ "${current:-}" == "$name" ]]; then
    log "  .env is set up for the $name profile, with lines changed since; --profile $name sets them back:"
  else
    log "  .env holds the ${current:-gpu} profile, not $name; --profile $name changes:"
  fi
  local i
  for i in "${!keys[@]}"; do
    printf '    %-*s  %s  ->  %s\n' "$width" "${keys[i]}" "${haves[i]:-(empty)}" "${wants[i]:-(empty)}"
  done
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would apply these ${#keys[@]} changes to .env (secrets and other lines kept)"
    for i in "${!keys[@]}"; do export "${keys[i]}=${wants[i]}"; done
    return 0
  fi
  if [[ "$YES" != 1 ]]; then
    [[ -t 0 ]] || die "not changed. Run again with --yes to apply the $name profile to .env, or edit .env yourself."
    local answer
    read -r -p "  Apply these changes to .env (secrets and your other lines are kept)? [y/N] " answer
    [[ "$answer" =~ ^[Yy] ]] || die "not changed: .env keeps the ${current:-gpu} profile. Start without --profile to use it."
  fi
  local pairs=()
  for i in "${!keys[@]}"; do pairs+=("${keys[i]}=${wants[i]}"); done
  envfile set "$ENV_FILE" "${pairs[@]}" || die "cannot write .env (see above)"
  ok "applied the $name profile to .env (${#keys[@]} settings changed)"
}

# refuse_retired_settings: a setting .env may still have that no longer does anything, and
# what replaces it. Starting anyway would publish the services other than the user meant.
refuse_retired_settings() {
  local key
  for key in BIND_ADDRESS WEBUI_BIND_ADDRESS; do
    grep -Eq "^[[:space:]]*(export[[:space:]]+)?${key}[[:space:]]*[=:]" "$ENV_FILE" || continue
    die "$key in .env is no longer read: the services are published in two groups now.
  TEAM_BIND_ADDRESS      OpenWebUI, LiteLLM's API and Grafana, each behind its own login or keys
                         (default 0.0.0.0: the team's machines reach them)
  INTERNAL_BIND_ADDRESS  the router, the engines and Prometheus, which have no login of their own
                         (default 127.0.0.1: this machine only)
Replace the line $key=$(env_get "$ENV_FILE" "$key") in .env with the ones you want, e.g.
TEAM_BIND_ADDRESS=127.0.0.1 to keep everything on this machine (docs/HANDOVER.md, Network)."
  done
}

# record_compose_files CREATED: COMPOSE_FILE in .env names the profile's compose files, so that
# every `docker compose ...` run in this folder (the docs' commands) sees the same stack.
record_compose_files() {
  local profile files want retrieval
  profile="$(profile_layout "$(env_get "$ENV_FILE" STRATUM_PROFILE)")"
  retrieval="$(env_get "$ENV_FILE" RETRIEVAL_DEVICE)"
  case "${retrieval:-cpu}" in
    cpu) ;;
    gpu) [[ "${profile:-gpu}" != cpu ]] || die "RETRIEVAL_DEVICE=gpu, but the cpu profile has no GPU; set RETRIEVAL_DEVICE=cpu in .env" ;;
    *) die "RETRIEVAL_DEVICE=$retrieval in .env: cpu (the default) or gpu" ;;
  esac
  want="$(default_compose_files "${profile:-gpu}" "${retrieval:-cpu}")"
  files="$(env_get "$ENV_FILE" COMPOSE_FILE)"
  if [[ "$1" == 1 || -z "$files" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      log "  would set COMPOSE_FILE=$want"
      return 0
    fi
    env_set "$ENV_FILE" COMPOSE_FILE "$want"
    ok "COMPOSE_FILE=$want (docker compose commands in this folder use these files)"
  elif [[ "${profile:-gpu}" == cpu && ":$files:" != *":docker-compose.cpu.yml:"* ]]; then
    die "the cpu profile needs docker-compose.cpu.yml in COMPOSE_FILE (.env has COMPOSE_FILE=$files); set COMPOSE_FILE=$want"
  elif [[ "${profile:-gpu}" != cpu && ":$files:" == *":docker-compose.cpu.yml:"* ]]; then
    die ".env's COMPOSE_FILE=$files includes docker-compose.cpu.yml, but its profile is ${profile:-gpu}; set COMPOSE_FILE=$want"
  elif [[ "${retrieval:-cpu}" == gpu && ":$files:" != *":docker-compose.retrieval-gpu.yml:"* ]]; then
    die "RETRIEVAL_DEVICE=gpu needs docker-compose.retrieval-gpu.yml in COMPOSE_FILE (.env has COMPOSE_FILE=$files); set COMPOSE_FILE=$want"
  elif [[ "${retrieval:-cpu}" != gpu && ":$files:" == *":docker-compose.retrieval-gpu.yml:"* ]]; then
    die ".env's COMPOSE_FILE=$files puts the retrieval engines on the GPU, but RETRIEVAL_DEVICE is ${retrieval:-cpu}; set RETRIEVAL_DEVICE=gpu (the memory plan counts them then) or COMPOSE_FILE=$want"
  else
    ok "COMPOSE_FILE=$files"
  fi
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
  if [[ "$MODE" == cpu ]]; then
    ok "cpu profile: no GPU and no NVIDIA Container Toolkit needed (answers come slower than on a GPU)"
  elif docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia || have nvidia-ctk; then
    ok "NVIDIA Container Toolkit present"
  else
    problem "the NVIDIA Container Toolkit is not configured for Docker: containers cannot see the GPU. Run: sudo bash scripts/install-cuda-linux.sh"
  fi
}

check_gpu() {
  info "GPU"
  if [[ "$MODE" == cpu ]]; then
    ok "cpu profile: no GPU needed"
    return
  fi
  if ! have nvidia-smi; then
    problem "no NVIDIA driver found (nvidia-smi is missing). Stratum needs an NVIDIA GPU with 16 GB (or: bash scripts/start.sh --profile cpu, with no GPU at all); install the driver with: sudo bash scripts/install-cuda-linux.sh"
    return
  fi
  local lines
  lines="$(nvidia-smi --query-gpu=index,name,memory.total,memory.used,compute_cap,driver_version --format=csv,noheader,nounits 2>/dev/null || true)"
  if [[ -z "$lines" ]]; then
    problem "nvidia-smi finds no GPU (or the driver is not loaded). Check 'nvidia-smi' and reboot after a driver install."
    return
  fi
  GPU_TOTALS=""; GPU_USED=""
  local index name mem used cap driver wanted=" ${VLLM_GPU_DEVICE_ID:-0} ${LLAMA_GPU_DEVICE_ID:-0} "
  while IFS=',' read -r index name mem used cap driver; do
    index="$(echo "$index" | xargs)"; name="$(echo "$name" | xargs)"; mem="$(echo "$mem" | xargs)"
    used="$(echo "$used" | xargs)"; cap="$(echo "$cap" | xargs)"; driver="$(echo "$driver" | xargs)"
    GPU_TOTALS+="${GPU_TOTALS:+,}$(awk -v m="$mem" 'BEGIN { printf "%.3f", m / 1024 }')"
    GPU_USED+="${GPU_USED:+,}$(awk -v m="${used:-0}" 'BEGIN { printf "%.3f", m / 1024 }')"
    [[ "$wanted" == *" $index "* ]] || continue
    ok "GPU $index: $name, ${mem} MiB, compute capability $cap, driver $driver"
    if [[ -n "$cap" ]] && ! version_ge "$cap" 8.9; then
      if [[ "$index" == "${VLLM_GPU_DEVICE_ID:-0}" && "${VLLM_KV_CACHE_DTYPE:-fp8}" == fp8* ]]; then
        problem "compute capability $cap < 8.9: vLLM refuses an FP8 KV cache on this GPU (its Triton attention backend needs SM 8.9). Set VLLM_KV_CACHE_DTYPE=auto in .env (the plan then counts 2 bytes per value)."
      fi
      if [[ "${VLLM_QUANTIZATION_ARGS:-}" == *fp8* ]]; then
        warn "compute capability $cap < 8.9: --quantization fp8 runs as weight-only FP8 (slower); a pre-quantized checkpoint is better here"
      fi
    fi
    DRIVER="$driver"
  done <<<"$lines"
  if [[ -z "${DRIVER:-}" ]]; then
    problem "no GPU with index ${VLLM_GPU_DEVICE_ID:-0} / ${LLAMA_GPU_DEVICE_ID:-0} (VLLM_GPU_DEVICE_ID, LLAMA_GPU_DEVICE_ID in .env); nvidia-smi lists: $(echo "$lines" | cut -d, -f1,2 | tr '\n' ';')"
    return
  fi
  local image="${VLLM_IMAGE:-vllm/vllm-openai:v0.31.0}" need
  if [[ "$image" == *-cu129* ]]; then need=575.57; else need=580.65.06; fi
  if ! version_ge "$DRIVER" "$need"; then
    problem "driver $DRIVER is too old for $image (needs >= $need). Update the driver, or use the CUDA 12.9 image (VLLM_IMAGE=vllm/vllm-openai:v0.31.0-cu129, driver >= 575.57)."
  fi
  if ! version_ge "$DRIVER" 570.124; then
    problem "driver $DRIVER is too old for the llama.cpp CUDA 12.8 image (needs >= 570.124)."
  fi
}

# The memory plan of .env against this machine (scripts/plan_vram.py): refuse one that cannot fit.
check_plan() {
  info "Memory plan"
  if ! have python3 || ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    problem "python3 3.10 or newer is needed on this machine (for scripts/plan_vram.py and the model download). Install it: sudo apt install python3"
    return
  fi
  local env_file="$ENV_FILE" args
  [[ -f "$env_file" ]] || env_file="$STRATUM_ROOT/.env.example"
  if [[ "$MODE" == cpu ]]; then
    local avail_kb
    avail_kb="$(awk '/^MemAvailable:/ {print $2}' "${STRATUM_MEMINFO:-/proc/meminfo}" 2>/dev/null || echo 0)"
    args=(--ram-gb "$(awk -v k="${avail_kb:-0}" 'BEGIN { printf "%.3f", k / 1024 / 1024 }')")
  else
    if [[ -z "${GPU_TOTALS:-}" ]]; then
      warn "no GPU reading: the memory plan was not checked"
      return
    fi
    args=(--gpu-gb "$GPU_TOTALS")
    if [[ "$(container_state vllm)" == missing && "$(container_state llama-cpp)" == missing ]]; then
      # Memory other processes hold now (a desktop session, another model server) counts too.
      args+=(--gpu-used-gb "$GPU_USED")
    fi
  fi
  local out rc=0 what="GPU memory" where="this card"
  [[ "$MODE" == dual-gpu ]] && where="these cards"
  [[ "$MODE" == cpu ]] && what="RAM" && where="this machine's free memory"
  out="$(python3 "$STRATUM_ROOT/scripts/plan_vram.py" check --env "$env_file" "${args[@]}" 2>&1)" || rc=$?
  printf '%s\n' "$out" | sed 's/^/    /'
  case "$rc" in
    0) ok "the plan fits $where" ;;
    1) problem "the $what plan in $(basename "$env_file") does not fit $where (see above). The profiles for 16, 24 and 32 GB, two cards and no GPU are at the end of .env.example; docs/VRAM-REALITY-CHECK.md explains each number." ;;
    *) problem "the memory plan could not be checked: fix the setting named above in $(basename "$env_file")." ;;
  esac
}

# The .env variable that sets each image, and where to find its valid tags.
IMAGE_VARS=(
  "VLLM_IMAGE|https://hub.docker.com/r/vllm/vllm-openai/tags (vX.Y.Z, or vX.Y.Z-cu129 for CUDA 12.9)"
  "LLAMA_CPP_IMAGE|https://github.com/ggml-org/llama.cpp/pkgs/container/llama.cpp (server-cuda-bNNNN: only the builds the daily image job published)"
  "LITELLM_IMAGE|https://github.com/BerriAI/litellm/pkgs/container/litellm (vX.Y.Z, as each release note says)"
  "OPEN_WEBUI_IMAGE|https://github.com/open-webui/open-webui/pkgs/container/open-webui (vX.Y.Z)"
  "POSTGRES_IMAGE|https://hub.docker.com/_/postgres/tags"
  "PROMETHEUS_IMAGE|https://hub.docker.com/r/prom/prometheus/tags"
  "GRAFANA_IMAGE|https://hub.docker.com/r/grafana/grafana/tags"
)

# image_for VAR: the image .env sets, or the compose files' default for it.
image_for() {
  local var=$1
  if [[ -n "${!var:-}" ]]; then
    printf '%s' "${!var}"
    return
  fi
  sed -n "s/.*\${${var}:-\([^}]*\)}.*/\1/p" "$STRATUM_ROOT/docker-compose.yml" \
    "$STRATUM_ROOT/docker-compose.cpu.yml" | head -n 1
}

# Every image must be present here or pullable, before anything starts.
check_images() {
  info "Images"
  local entry var where image missing=0
  local t=()
  have timeout && t=(timeout 60)
  local entries=()
  if [[ "$MODE" == cpu ]]; then
    # Both tiers run llama.cpp's CPU image (docker-compose.cpu.yml) instead of the CUDA ones.
    entries=("LLAMA_CPP_CPU_IMAGE|https://github.com/ggml-org/llama.cpp/pkgs/container/llama.cpp (server-bNNNN)")
    for entry in "${IMAGE_VARS[@]}"; do
      case "${entry%%|*}" in
        VLLM_IMAGE|LLAMA_CPP_IMAGE) ;;
        *) entries+=("$entry") ;;
      esac
    done
  else
    entries=("${IMAGE_VARS[@]}")
  fi
  for entry in "${entries[@]}"; do
    var="${entry%%|*}"; where="${entry#*|}"
    image="$(image_for "$var")"
    if docker image inspect "$image" >/dev/null 2>&1; then
      continue
    fi
    if ! "${t[@]}" docker manifest inspect "$image" >/dev/null 2>&1; then
      problem "the image $image cannot be pulled (no such tag, or the registry cannot be reached). Set $var in .env to a tag that exists: $where; check one with: docker manifest inspect <image>"
      missing=1
    fi
  done
  (( missing )) || ok "every image is present or can be pulled"
}

check_memory_and_disk() {
  info "RAM and disk"
  local mem_kb
  mem_kb="$(awk '/^MemTotal:/ {print $2}' "${STRATUM_MEMINFO:-/proc/meminfo}" 2>/dev/null || echo 0)"
  local mem_gb=$(( mem_kb / 1024 / 1024 ))
  if [[ "$MODE" == cpu ]]; then
    ok "${mem_gb} GB of RAM (the memory plan above counts what the models need)"
  elif [[ "${LLAMA_N_CPU_MOE:-27}" != 0 ]] && (( mem_gb < 30 )); then
    warn "${mem_gb} GB of RAM: the 26B's experts live in system RAM (LLAMA_N_CPU_MOE=${LLAMA_N_CPU_MOE:-27}); 32 GB or more is needed or llama-server will swap or be killed."
  else
    ok "${mem_gb} GB of RAM"
  fi
  local models_dir="$STRATUM_ROOT/docker/llama-cpp/models" free_gb need_gb=0
  if [[ "$MODE" == cpu ]]; then
    [[ -f "$models_dir/$(cpu_model_file LOW)" ]] || need_gb=$((need_gb + 3))
    [[ -f "$models_dir/$(cpu_model_file HIGH)" ]] || need_gb=$((need_gb + 5))
  else
    [[ -f "$models_dir/${LLAMA_MODEL_FILE:-gemma-4-26B_q4_0-it.gguf}" ]] || need_gb=$((need_gb + 18))
    hf_model_present || need_gb=$((need_gb + 17))  # the largest vLLM checkpoint (BF16); 4-bit: ~5
  fi
  [[ -f "$models_dir/$(retrieval_model_file EMBED)" && -f "$models_dir/$(retrieval_model_file RERANK)" ]] \
    || need_gb=$((need_gb + 1))
  free_gb="$(df -Pk "$STRATUM_ROOT" | awk 'NR == 2 {print int($4 / 1024 / 1024)}')"
  if (( need_gb > 0 && free_gb < need_gb + 5 )); then
    problem "${free_gb} GB free on $(df -P "$STRATUM_ROOT" | awk 'NR == 2 {print $6}'); the missing models need about ${need_gb} GB plus room for images."
  else
    ok "${free_gb} GB of disk free"
  fi
}

# check_exposure: what TEAM_BIND_ADDRESS publishes must ask who is there.
check_exposure() {
  info "Network"
  local team="${TEAM_BIND_ADDRESS:-0.0.0.0}" internal="${INTERNAL_BIND_ADDRESS:-127.0.0.1}"
  if [[ "$team" != 127.0.0.1 && "${WEBUI_AUTH:-true}" =~ ^([Ff]alse|0|no)$ ]]; then
    problem "WEBUI_AUTH=false in .env with TEAM_BIND_ADDRESS=$team: anyone who reaches this machine would chat as the admin, without a login. Set WEBUI_AUTH=true, or TEAM_BIND_ADDRESS=127.0.0.1."
  fi
  ok "OpenWebUI, LiteLLM and Grafana on $team (each asks for a login or a key)"
  if [[ "$internal" == 127.0.0.1 ]]; then
    ok "router, engines and Prometheus on 127.0.0.1 (this machine only)"
  else
    warn "router, engines and Prometheus on $internal (INTERNAL_BIND_ADDRESS): the engines and Prometheus ask for no login; keep this behind a firewall"
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
              "embeddings:${EMBED_PORT:-8081}" "reranker:${RERANK_PORT:-8082}" \
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
  local repo="${VLLM_MODEL:-xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4}" cache="${HF_CACHE_DIR:-./.cache/huggingface}"
  [[ "$cache" == /* ]] || cache="$STRATUM_ROOT/${cache#./}"
  compgen -G "$cache/hub/models--${repo//\//--}/snapshots/*/config.json" >/dev/null
}

# cpu_model_file LOW|HIGH: the GGUF each tier runs in the cpu profile (docker-compose.cpu.yml).
cpu_model_file() {
  if [[ "$1" == LOW ]]; then
    printf '%s' "${CPU_TIER_LOW_MODEL_FILE:-gemma-4-E2B-it-Q4_K_M.gguf}"
  else
    printf '%s' "${CPU_TIER_HIGH_MODEL_FILE:-gemma-4-E4B-it-Q4_K_M.gguf}"
  fi
}

# retrieval_model_file EMBED|RERANK: the GGUF of a retrieval engine (docker-compose.yml).
retrieval_model_file() {
  if [[ "$1" == EMBED ]]; then
    printf '%s' "${EMBED_MODEL_FILE:-embeddinggemma-300M-qat-Q4_0.gguf}"
  else
    printf '%s' "${RERANK_MODEL_FILE:-bge-reranker-v2-m3-Q4_K_M.gguf}"
  fi
}

# need_gguf WHO FILE: FILE in docker/llama-cpp/models is ok, else WHO's GGUF joins the caller's
# "missing" list.
need_gguf() {
  if [[ -f "$STRATUM_ROOT/docker/llama-cpp/models/$2" ]]; then
    ok "$1: $(basename "$2")"
  else
    missing+=("$1 GGUF $(basename "$2")")
  fi
}

check_models() {
  info "Models"
  local missing=() tier engine
  if [[ "$MODE" == cpu ]]; then
    for tier in LOW HIGH; do need_gguf "tier_${tier,,}" "$(cpu_model_file "$tier")"; done
  else
    check_gpu_models
  fi
  for engine in EMBED RERANK; do need_gguf "${engine,,}" "$(retrieval_model_file "$engine")"; done
  (( ${#missing[@]} == 0 )) && return 0
  warn "missing: ${missing[*]}"
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would run: bash scripts/download-models.sh"
    return 0
  fi
  local size="16 GB plan: about 21 GB; up to 33 GB for a BF16 E4B"
  [[ "$MODE" == cpu ]] && size="about 9 GB"
  case "$DOWNLOAD" in
    no) die "models are missing and --no-download was given. Run: bash scripts/download-models.sh" ;;
    ask)
      if [[ -t 0 ]]; then
        local answer
        read -r -p "  Download them now ($size)? [Y/n] " answer
        [[ -z "$answer" || "$answer" =~ ^[Yy] ]] || die "not downloading. Run bash scripts/download-models.sh when ready."
      else
        die "models are missing. Run: bash scripts/download-models.sh (or start.sh --yes to download now)"
      fi ;;
  esac
  bash "$STRATUM_ROOT/scripts/download-models.sh" || die "the download failed (see above); start.sh can be run again, downloads resume."
}

# check_gpu_models: the 26B GGUF (and its projector) and vLLM's checkpoint; adds to `missing`.
check_gpu_models() {
  need_gguf tier_high "${LLAMA_MODEL_FILE:-gemma-4-26B_q4_0-it.gguf}"
  # The projector llama-server loads (LLAMA_MMPROJ_ARGS; set but empty = none, as in compose).
  local mmproj_args="${LLAMA_MMPROJ_ARGS---mmproj /models/gemma-4-26B-it-mmproj.gguf}" mmproj
  if [[ -n "$mmproj_args" ]]; then
    mmproj="$STRATUM_ROOT/docker/llama-cpp/models/$(basename "${mmproj_args##* }")"
    if [[ -f "$mmproj" ]]; then ok "tier_high projector: $(basename "$mmproj")"; else missing+=("tier_high projector $(basename "$mmproj") (LLAMA_MMPROJ_FILE)"); fi
  fi
  local repo="${VLLM_MODEL:-xbill9/gemma-4-E4B-it-qat-q4_0-w4a16-ct-text-emb4}"
  if hf_model_present; then ok "tier_low: $repo"; else missing+=("tier_low $repo"); fi
}

# --- start and wait ---------------------------------------------------------------------------
hint_for() {
  case "$1" in
    vllm) log "  hint: 'No available memory for the cache blocks': its share is too small for its weights: RAISE VLLM_GPU_MEMORY_UTILIZATION (giving llama-server less: raise LLAMA_N_CPU_MOE) or lower VLLM_MAX_MODEL_LEN."
          log "        'Free memory on device ... is less than desired': something else holds the GPU (llama-server started first, another program: nvidia-smi). bash scripts/stop.sh --engines, then start.sh again."
          log "        Check a change before starting: python3 scripts/plan_vram.py check --env .env --gpu-gb <GiB>" ;;
    llama-cpp) log "  hint: check the GGUF file in docker/llama-cpp/models and LLAMA_MODEL_FILE. 'CUDA out of memory' / 'failed to allocate': raise LLAMA_N_CPU_MOE (each layer moves ~0.46 GiB of experts to RAM), lower LLAMA_CTX_SIZE, or drop LLAMA_MMPROJ_ARGS."
               log "        Killed (exit 137): not enough system RAM for the experts in RAM: add RAM, or lower LLAMA_N_CPU_MOE if the plan has VRAM to spare." ;;
    router) log "  hint: a config error names the key; see docker/router/router_config.yaml and ROUTER_* in .env." ;;
    litellm) log "  hint: check docker/litellm/config.yaml, LITELLM_MASTER_KEY in .env and the database: docker compose logs postgres." ;;
    postgres) log "  hint: a password changed after the first start? POSTGRES_PASSWORD only applies to a new volume (docker volume ls | grep postgres)." ;;
    litellm-keys) log "  hint: it registers OpenWebUI's key (OPENWEBUI_LITELLM_KEY) in LiteLLM's database; its log above says why it failed." ;;
    open-webui) log "  hint: the first start can take minutes; 'docker compose logs open-webui' shows progress." ;;
    embed|rerank) log "  hint: check the GGUF in docker/llama-cpp/models (EMBED_MODEL_FILE, RERANK_MODEL_FILE; bash scripts/download-models.sh --only retrieval). 'Killed' (exit 137): not enough RAM (python3 scripts/plan_vram.py check --env .env --gpu-gb <GiB>, or --ram-gb <GiB> for the cpu profile)." ;;
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
  local failed="the stack did not come up (see above). Fix it, then run scripts/start.sh again; scripts/stop.sh stops everything."
  info "$title"
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would run: compose up -d $*"
    return 0
  fi
  if ! compose up -d "$@"; then
    # Compose gives up when a service another one depends on is unhealthy or exits: show
    # which, with its log and what to check, instead of compose's one line.
    wait_healthy 0 "$@" || true
    die "$failed"
  fi
  wait_healthy "$WAIT" "$@" || die "$failed"
}

# vLLM refuses to start unless its whole share is free, so it must (re)start before llama-server
# takes its memory: if vLLM is not up but llama-server is, stop llama-server first.
free_the_card_for_vllm() {
  local vllm llama
  vllm="$(container_state vllm)"
  llama="$(container_state llama-cpp)"
  if [[ "$vllm" != healthy && "$llama" =~ ^(healthy|starting|unhealthy|running|restarting)$ ]]; then
    info "vLLM is $vllm while llama-server ($llama) holds GPU memory: stopping llama-server first"
    run compose stop llama-cpp
  fi
}

main() {
  log "${C_BOLD}Stratum${C_OFF}: Gemma 4 on one GPU, in two tiers behind an adaptive router"
  prepare_env
  if [[ "$ENV_ONLY" == 1 ]]; then
    ok ".env is ready; edit it, then run: bash scripts/start.sh"
    return 0
  fi
  MODE="$(profile_layout "${STRATUM_PROFILE:-}")"
  WAIT="${TIMEOUT:-${START_TIMEOUT:-1800}}"
  check_docker
  (( PROBLEMS == 0 )) && check_images
  check_gpu
  check_plan
  check_memory_and_disk
  check_exposure
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
  if [[ "$MODE" == cpu ]]; then
    start_stage "Starting tier_low (llama.cpp on CPU, Gemma 4 E2B)" vllm
    start_stage "Starting tier_high (llama.cpp on CPU, Gemma 4 E4B)" llama-cpp
  else
    free_the_card_for_vllm
    start_stage "Starting tier_low (vLLM, Gemma 4 E4B) - loading takes minutes" vllm
    start_stage "Starting tier_high (llama-server, Gemma 4 26B-A4B)" llama-cpp
  fi
  start_stage "Starting the retrieval engines (embeddings, reranking; on the CPU)" embed rerank
  start_stage "Starting LiteLLM (with its database) and OpenWebUI" postgres litellm litellm-keys open-webui
  if [[ "$DRY_RUN" == 1 ]]; then
    info "Dry run: nothing was changed or started."
    return 0
  fi
  local here="127.0.0.1" team="localhost" address
  if [[ "${TEAM_BIND_ADDRESS:-0.0.0.0}" == 0.0.0.0 ]]; then
    address="$(hostname -I 2>/dev/null | awk '{print $1}' || true)"
    team="${address:-<this-machine>}"
  elif [[ "${TEAM_BIND_ADDRESS}" != 127.0.0.1 ]]; then
    team="$TEAM_BIND_ADDRESS"
  fi
  info "Stratum is up"
  local smart="26B"
  [[ "$MODE" == cpu ]] && smart="E4B on CPU"
  log "  For the team (TEAM_BIND_ADDRESS=${TEAM_BIND_ADDRESS:-0.0.0.0}):"
  log "    Chat (OpenWebUI):  http://${team}:${WEBUI_PORT:-3000}   the first account made there is the admin"
  log "                       models: gemma4-fast (routed), gemma4-smart ($smart)"
  log "    API (LiteLLM):     http://${team}:${LITELLM_PORT:-4000}/v1   a key each: bash scripts/team-keys.sh create --name NAME"
  log "    Grafana:           http://${team}:${GRAFANA_PORT:-3001}   user admin, password: GRAFANA_ADMIN_PASSWORD in .env"
  log "  On this machine only (INTERNAL_BIND_ADDRESS=${INTERNAL_BIND_ADDRESS:-127.0.0.1}):"
  log "    Router:            http://${here}:${ROUTER_PORT:-9000}/v1   key: ROUTER_API_KEY in .env"
  log "    Prometheus:        http://${here}:${PROMETHEUS_PORT:-9090}"
  log ""
  log "  Try it (the master key is LITELLM_MASTER_KEY in .env):"
  log "    curl -s http://${here}:${LITELLM_PORT:-4000}/v1/chat/completions -H \"Authorization: Bearer \$LITELLM_MASTER_KEY\" \\"
  log "      -H 'content-type: application/json' -d '{\"model\": \"gemma4-fast\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'"
  log "  Check it: bash scripts/health-check.sh     Stop it: bash scripts/stop.sh"
}

main
