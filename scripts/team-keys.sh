#!/usr/bin/env bash
# Team keys on the LiteLLM gateway: create, list, show usage, revoke. Reads .env for the master key.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/team-keys.sh COMMAND [OPTIONS]

One LiteLLM key per person or tool, with a request or token rate limit; usage in tokens.

  create --name NAME [--rpm N] [--tpm N] [--models a,b]   a new key (shown once)
         [--max-budget S --budget-duration 1d]             a budget in 26B-seconds per window
         [--batch]                                         its requests queue after people's
  list                                                     keys by name, with their limits
  usage [--name NAME]                                      requests and tokens per key
  revoke --name NAME                                       its next request gets 401

Examples:
  bash scripts/team-keys.sh create --name alice --rpm 30
  bash scripts/team-keys.sh usage

Keys live in LiteLLM's PostgreSQL database (the stack's postgres service). The master key and
port come from .env; LITELLM_URL overrides the address. Details: python3 scripts/team_keys.py -h
TXT
}

case "${1:-}" in
  ""|-h|--help) usage; exit 0 ;;
esac
for arg in "$@"; do  # a command's own --help needs no .env
  if [[ "$arg" == -h || "$arg" == --help ]]; then exec python3 "$STRATUM_ROOT/scripts/team_keys.py" "$@"; fi
done
load_env "$STRATUM_ROOT/.env"
[[ -n "${LITELLM_MASTER_KEY:-}" ]] || die "LITELLM_MASTER_KEY is not set in .env; run scripts/start.sh first."
have python3 || die "python3 is needed (sudo apt-get install python3)"
exec python3 "$STRATUM_ROOT/scripts/team_keys.py" "$@"
