#!/usr/bin/env bash
# Helpers shared by the Stratum scripts. Source it; do not run it.
# shellcheck shell=bash

STRATUM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export STRATUM_ROOT

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  C_RED=$'\033[31m'; C_GREEN=$'\033[32m'; C_YELLOW=$'\033[33m'; C_BOLD=$'\033[1m'; C_OFF=$'\033[0m'
else
  C_RED=""; C_GREEN=""; C_YELLOW=""; C_BOLD=""; C_OFF=""
fi

log()  { printf '%s\n' "$*"; }
info() { printf '%s==>%s %s\n' "$C_BOLD" "$C_OFF" "$*"; }
ok()   { printf '  %sok%s    %s\n' "$C_GREEN" "$C_OFF" "$*"; }
warn() { printf '  %swarn%s  %s\n' "$C_YELLOW" "$C_OFF" "$*" >&2; }
fail() { printf '  %sFAIL%s  %s\n' "$C_RED" "$C_OFF" "$*" >&2; }
die()  { printf '%serror:%s %s\n' "$C_RED" "$C_OFF" "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# version_ge A B: true when dotted version A >= B (numeric parts; missing parts count as 0).
version_ge() {
  local IFS=.
  local -a a b
  read -r -a a <<<"$1"
  read -r -a b <<<"$2"
  local i n=$(( ${#a[@]} > ${#b[@]} ? ${#a[@]} : ${#b[@]} ))
  for ((i = 0; i < n; i++)); do
    local xs="${a[i]:-0}" ys="${b[i]:-0}"
    xs="${xs//[^0-9]/}"; ys="${ys//[^0-9]/}"
    local x=$((10#${xs:-0})) y=$((10#${ys:-0}))
    (( x > y )) && return 0
    (( x < y )) && return 1
  done
  return 0
}

# The .env reader: scripts/envfile.py reads a dotenv file exactly as Docker Compose does (quotes,
# `# comments`, `export`, the last line of a key wins), for every script and Python tool alike.
envfile() {
  have python3 || die "python3 is needed to read .env (sudo apt-get install python3)"
  python3 "$STRATUM_ROOT/scripts/envfile.py" "$@"
}

# env_get FILE KEY: the value of KEY in a dotenv file, as Compose reads it ("" when unset).
env_get() {
  [[ -f "$1" ]] || return 0
  envfile get "$1" "$2" || die "cannot read $1 (see above)"
}

# env_set FILE KEY VALUE: give KEY this value on the line Compose reads (its last), or append
# it; the file stays 0600.
env_set() {
  envfile set "$1" "$2=$3" || die "cannot write $2 to $1 (see above)"
}

# random_secret N: N random bytes as hex.
random_secret() {
  local n=${1:-24}
  if have openssl; then
    openssl rand -hex "$n"
  else
    od -An -tx1 -N"$n" /dev/urandom | tr -d ' \n'
  fi
}

# load_env FILE: export the dotenv file's values for the script (compose reads the file itself).
# As for compose, variables already in the environment win, and within the file the last line
# of a key wins (so lines appended to .env override the ones above them).
load_env() {
  local file=$1 lines
  [[ -f "$file" ]] || return 0
  lines="$(envfile export "$file")" || die "cannot read $file (see above)"
  eval "$lines"
}

# profile_layout STRATUM_PROFILE: how a profile uses the hardware: gpu (one card: 16gb, 24gb,
# 32gb, or a layout of your own), dual-gpu (a card per engine: dual-16gb) or cpu (no GPU).
profile_layout() {
  case "${1:-}" in
    cpu) printf cpu ;;
    dual-16gb|dual-gpu) printf dual-gpu ;;
    *) printf gpu ;;
  esac
}

# default_compose_files LAYOUT [RETRIEVAL_DEVICE]: the compose files a profile runs, as
# COMPOSE_FILE lists them (relative to the repository root): the cpu profile adds
# docker-compose.cpu.yml (both tiers on llama.cpp's CPU server, no GPU reservations);
# RETRIEVAL_DEVICE=gpu adds docker-compose.retrieval-gpu.yml (the retrieval engines on the GPU).
default_compose_files() {
  local files=docker-compose.yml
  [[ "${1:-gpu}" == cpu ]] && files+=":docker-compose.cpu.yml"
  [[ "${2:-cpu}" == gpu ]] && files+=":docker-compose.retrieval-gpu.yml"
  printf '%s' "$files"
}

# compose ARGS...: docker compose in the repository root with the files .env names (COMPOSE_FILE,
# which start.sh records, so a plain `docker compose ...` there sees the same stack), or the
# profile's default files when .env names none.
compose() {
  (
    cd "$STRATUM_ROOT" || exit 1
    COMPOSE_FILE="${COMPOSE_FILE:-$(default_compose_files "$(profile_layout "${STRATUM_PROFILE:-}")" "${RETRIEVAL_DEVICE:-cpu}")}" \
      docker compose --project-directory "$STRATUM_ROOT" "$@"
  )
}

# container_state SERVICE: healthy | starting | unhealthy | running | completed (a one-shot
# that exited 0) | exited | missing
container_state() {
  local id
  id="$(compose ps -a -q "$1" 2>/dev/null | head -n 1)"
  if [[ -z "$id" ]]; then
    echo missing
    return 0
  fi
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else if and (eq .State.Status "exited") (eq .State.ExitCode 0)}}completed{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
