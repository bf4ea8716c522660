#!/usr/bin/env bash
# Create the Secret the Kubernetes manifests read (stratum-secrets), never committed to git.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: bash scripts/kubernetes-secrets.sh [--namespace NS] [--from-env FILE] [--print]

Creates the Secret "stratum-secrets" that deploy/kubernetes/ reads, with:
  LITELLM_MASTER_KEY      the gateway's admin key (clients get their own: scripts/team-keys.sh)
  OPENWEBUI_LITELLM_KEY   OpenWebUI's own LiteLLM key (registered by its init container)
  POSTGRES_PASSWORD       LiteLLM's database (hex: safe in its DATABASE_URL)
  ROUTER_API_KEY          what the router asks of LiteLLM (the router's Service is cluster-wide)
  WEBUI_SECRET_KEY        signs OpenWebUI's sessions
  HF_TOKEN                only when set in --from-env (Gemma 4 is not gated)
Each value comes from --from-env (a compose .env, to move a running stack) or is generated.
An existing stratum-secrets is left alone: changing POSTGRES_PASSWORD after the database was
created locks LiteLLM out of it. To rotate a key, edit the Secret and restart what reads it.

  --namespace NS    the namespace (default: stratum, as in deploy/kubernetes/base)
  --from-env FILE   take the values set in FILE (e.g. .env); generate the rest
  --print           print the Secret as YAML instead of creating it (for a sealed or external
                    secrets workflow); needs no cluster
  -h, --help        this text
TXT
}

NAMESPACE=stratum
FROM_ENV=""
PRINT=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --namespace)
      [[ $# -ge 2 && -n "$2" ]] || die "--namespace needs a name"
      NAMESPACE=$2; shift ;;
    --from-env)
      [[ $# -ge 2 && -f "$2" ]] || die "--from-env needs an existing file (e.g. .env)"
      FROM_ENV=$2; shift ;;
    --print) PRINT=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

have kubectl || die "kubectl is needed: https://kubernetes.io/docs/tasks/tools/"

if [[ "$PRINT" == 0 ]]; then
  if kubectl get secret stratum-secrets --namespace "$NAMESPACE" >/dev/null 2>&1; then
    ok "stratum-secrets already exists in namespace $NAMESPACE: left as it is"
    exit 0
  fi
  kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 \
    || kubectl create namespace "$NAMESPACE" >/dev/null \
    || die "cannot create namespace $NAMESPACE (is kubectl pointed at the right cluster? kubectl config current-context)"
fi

# value KEY: the value from --from-env, or a new random one.
value() {
  local key=$1 found=""
  [[ -n "$FROM_ENV" ]] && found="$(env_get "$FROM_ENV" "$key")"
  if [[ -n "$found" ]]; then
    printf '%s' "$found"
  elif [[ "$key" == *_KEY && "$key" != WEBUI_SECRET_KEY ]]; then
    printf 'sk-%s' "$(random_secret 24)"
  else
    random_secret 24
  fi
}

# The values go to kubectl in a private file, not on its command line (where `ps` shows them).
values_file="$(umask 077 && mktemp)"
trap 'rm -f "$values_file"' EXIT
for key in LITELLM_MASTER_KEY OPENWEBUI_LITELLM_KEY POSTGRES_PASSWORD ROUTER_API_KEY WEBUI_SECRET_KEY; do
  printf '%s=%s\n' "$key" "$(value "$key")" >>"$values_file"
done
if [[ -n "$FROM_ENV" && -n "$(env_get "$FROM_ENV" HF_TOKEN)" ]]; then
  printf 'HF_TOKEN=%s\n' "$(env_get "$FROM_ENV" HF_TOKEN)" >>"$values_file"
fi

if [[ "$PRINT" == 1 ]]; then
  kubectl create secret generic stratum-secrets --namespace "$NAMESPACE" \
    --from-env-file "$values_file" --dry-run=client --output yaml
  exit 0
fi
kubectl create secret generic stratum-secrets --namespace "$NAMESPACE" \
  --from-env-file "$values_file" >/dev/null \
  || die "kubectl could not create the Secret (see above)"
ok "created stratum-secrets in namespace $NAMESPACE"
log "  Next: kubectl apply -k deploy/kubernetes/overlays/single-gpu   (docs/DEPLOY-KUBERNETES.md)"
