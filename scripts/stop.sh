#!/usr/bin/env bash
# Stop the Stratum stack. Data (chats, metrics, dashboards, models) is kept unless --volumes.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/stop.sh [--engines | --volumes [--yes]]

Stops and removes the containers. Downloaded models and the Hugging Face cache are never touched.

  --engines   stop only the two engines, llama-server first, then vLLM; the rest keeps running.
              To restart the engines (after changing their settings in .env): stop.sh --engines,
              then start.sh, which starts vLLM first (it needs its whole share of the card free)
              and llama-server after it. Restarting vLLM alone while llama-server holds the card
              fails (and, with its restart policy, loops).
  --volumes   also delete the named volumes: OpenWebUI chats and users, LiteLLM's database (team
              keys and usage), Prometheus data, Grafana state
  --yes       do not ask before deleting volumes
  -h, --help  this text
TXT
}

VOLUMES=0
YES=0
ENGINES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --engines) ENGINES=1 ;;
    --volumes) VOLUMES=1 ;;
    --yes|-y) YES=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

# .env says which compose files make the stack (STRATUM_PROFILE=cpu adds docker-compose.cpu.yml).
load_env "$STRATUM_ROOT/.env"
have docker || die "docker is not installed; nothing to stop."
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (sudo systemctl start docker)."
if [[ "$ENGINES" == 1 ]]; then
  [[ "$VOLUMES" == 0 ]] || die "--engines and --volumes do not go together."
  info "Stopping the engines: llama-server, then vLLM (the rest keeps running)"
  compose stop llama-cpp
  compose stop vllm
  ok "engines stopped; bash scripts/start.sh starts vLLM, then llama-server"
  exit 0
fi
if [[ "$VOLUMES" == 1 ]]; then
  if [[ "$YES" != 1 ]]; then
    [[ -t 0 ]] || die "--volumes deletes chats and metrics; add --yes to confirm when not interactive."
    read -r -p "Delete OpenWebUI chats/users, LiteLLM keys and usage, Prometheus data and Grafana state? [y/N] " answer
    [[ "$answer" =~ ^[Yy] ]] || die "nothing deleted."
  fi
  info "Stopping Stratum and deleting its volumes"
  compose down --volumes --remove-orphans
else
  info "Stopping Stratum (data kept)"
  compose down --remove-orphans
fi
ok "stopped"
