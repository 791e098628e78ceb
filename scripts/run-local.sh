#!/usr/bin/env bash
# The main job on a fresh machine: build what is missing, start the local control plane (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kwok with fake nodes) and Postgres, install the
# chart's CRDs and RBAC with helm, run jangar as a local process, apply the sample Agent, AgentProvider,
# Memory, ImplementationSpec and AgentRun, and follow the run to Succeeded.
# Everything keeps running afterwards; stop it with `scripts/run-local.sh down`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ "${1:-}" == "down" ]]; then
  exec .venv/bin/jangar dev down
fi

bash scripts/bootstrap.sh
exec .venv/bin/jangar dev demo "$@"
