#!/usr/bin/env bash
# Prepare an Ubuntu 22.04/24.04 host for Stratum: NVIDIA driver (open modules, >= 580),
# Docker Engine with the compose plugin, NVIDIA Container Toolkit. Skips what is already there.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  cat <<'TXT'
Usage: sudo bash scripts/install-cuda-linux.sh [--dry-run] [--driver-branch 580]

Installs, on Ubuntu 22.04 or 24.04, only what is missing:
  0. python3-venv (scripts/download-models.sh makes a virtual environment for its downloader)
  1. the NVIDIA driver with open kernel modules (nvidia-driver-<branch>-open; Blackwell needs the
     open modules; 580.65.06 or newer runs the CUDA 13 vLLM image)
  2. Docker Engine and the compose plugin (Docker's apt repository)
  3. the NVIDIA Container Toolkit, then `nvidia-ctk runtime configure --runtime=docker`
and finally runs a GPU container (nvidia-smi inside Docker) to prove it works.
A reboot is needed after a driver install; run the script again afterwards to finish.

  --dry-run              print the plan and the commands, change nothing (no root needed)
  --driver-branch N      driver branch to install (default 580)
  -h, --help             this text
TXT
}

DRY_RUN=0
BRANCH=580
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --driver-branch)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--driver-branch needs a number such as 580"
      BRANCH=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would run: $*"
  else
    log "  + $*"
    "$@"
  fi
}

# The CUDA 13 vLLM image needs 580.65.06 on the 580 branch (start.sh checks the same).
MIN_DRIVER="$BRANCH"
[[ "$BRANCH" == 580 ]] && MIN_DRIVER=580.65.06

OS_RELEASE="${STRATUM_OS_RELEASE:-/etc/os-release}"
[[ -r "$OS_RELEASE" ]] || die "cannot read $OS_RELEASE; this script supports Ubuntu 22.04 and 24.04 only."
# shellcheck disable=SC1090
. "$OS_RELEASE"
if [[ "${ID:-}" != ubuntu || ! "${VERSION_ID:-}" =~ ^(22\.04|24\.04)$ ]]; then
  die "this script supports Ubuntu 22.04 and 24.04 (found ${PRETTY_NAME:-unknown}). On other systems install the NVIDIA driver >= $MIN_DRIVER, Docker Engine with compose, the NVIDIA Container Toolkit and python3-venv by hand (without a GPU, for the cpu profile: Docker with compose and python3-venv)."
fi
if [[ "$DRY_RUN" == 0 && "$(id -u)" != 0 ]]; then
  die "run as root: sudo bash scripts/install-cuda-linux.sh (or --dry-run to see the plan)"
fi
export DEBIAN_FRONTEND=noninteractive
REBOOT=0

info "0/3 python3-venv (for scripts/download-models.sh)"
if python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  ok "python3 can make virtual environments: skipping"
else
  run apt-get update
  run apt-get install -y python3-venv
fi

info "1/3 NVIDIA driver (>= $MIN_DRIVER, open kernel modules)"
driver=""
if have nvidia-smi; then
  driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | xargs || true)"
fi
if [[ -n "$driver" ]] && version_ge "$driver" "$MIN_DRIVER"; then
  ok "driver $driver is installed and loaded: skipping"
else
  [[ -n "$driver" ]] && warn "driver $driver is older than $MIN_DRIVER: upgrading"
  run apt-get update
  run apt-get install -y "nvidia-driver-${BRANCH}-open"
  REBOOT=1
fi

info "2/3 Docker Engine and compose plugin"
if have docker && docker compose version >/dev/null 2>&1; then
  ok "$(docker --version), compose $(docker compose version --short): skipping"
else
  run apt-get update
  run apt-get install -y ca-certificates curl
  run install -m 0755 -d /etc/apt/keyrings
  run curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc
  run chmod a+r /etc/apt/keyrings/docker.asc
  repo="deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu ${VERSION_CODENAME} stable"
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would write /etc/apt/sources.list.d/docker.list: $repo"
  else
    echo "$repo" >/etc/apt/sources.list.d/docker.list
  fi
  run apt-get update
  run apt-get install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
  if [[ -n "${SUDO_USER:-}" ]]; then
    run usermod -aG docker "$SUDO_USER"
    log "  $SUDO_USER may use docker after logging in again"
  fi
fi

info "3/3 NVIDIA Container Toolkit"
if have nvidia-ctk; then
  ok "nvidia-ctk $(nvidia-ctk --version 2>/dev/null | head -n 1 | awk '{print $NF}'): skipping install"
else
  run curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey -o /tmp/nvidia-container-toolkit.gpg
  run gpg --batch --yes --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg /tmp/nvidia-container-toolkit.gpg
  list="deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://nvidia.github.io/libnvidia-container/stable/deb/\$(ARCH) /"
  if [[ "$DRY_RUN" == 1 ]]; then
    log "  would write /etc/apt/sources.list.d/nvidia-container-toolkit.list: $list"
  else
    echo "$list" >/etc/apt/sources.list.d/nvidia-container-toolkit.list
  fi
  run apt-get update
  run apt-get install -y nvidia-container-toolkit
fi
if [[ "$DRY_RUN" == 1 ]] || ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia; then
  run nvidia-ctk runtime configure --runtime=docker
  run systemctl restart docker
else
  ok "Docker already knows the nvidia runtime"
fi

if [[ "$REBOOT" == 1 && "$DRY_RUN" == 0 ]]; then
  warn "a new driver was installed: reboot, then run this script again to verify."
  exit 0
fi
info "Verifying: nvidia-smi inside a container"
run docker run --rm --gpus all "${VERIFY_IMAGE:-ubuntu:24.04}" nvidia-smi
if [[ "$DRY_RUN" == 1 ]]; then
  info "Dry run: nothing was changed."
else
  ok "the GPU is visible to containers. Next: bash scripts/start.sh (README: choose a profile)"
fi
