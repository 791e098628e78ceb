#!/usr/bin/env bash
# The main job on a fresh machine: build what is missing, start the local control plane (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kwok with fake nodes) and Postgres, and print
# how to use them. Stop everything with `scripts/run-local.sh down`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
workdir="${JANGAR_DEV_DIR:-$root/.jangar/dev}"
export JANGAR_DEV_DIR="$workdir"

if [[ "${1:-}" == "down" ]]; then
  .venv/bin/jangar dev cluster down
  .venv/bin/jangar dev postgres down
  exit 0
fi

bash scripts/bootstrap.sh
.venv/bin/jangar dev cluster up
.venv/bin/jangar dev postgres up
eval "$(.venv/bin/jangar dev cluster env)"
kubectl get nodes -o wide
echo
echo "Use it:   eval \"\$(.venv/bin/jangar dev cluster env)\" && kubectl get pods -A"
echo "Stop it:  scripts/run-local.sh down"
