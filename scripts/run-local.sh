#!/usr/bin/env bash
# The main job on a fresh machine: build what is missing, start the local control plane with a real node
# (containerd + kubelet, cluster DNS, kube-proxy) and Postgres, build the images without Docker, install the
# chart with helm (jangar in its pod), check /health through port-forward and helm test, apply the sample
# Agent, AgentProvider, Memory, ImplementationSpec and AgentRun, and follow the run to Succeeded in real
# containers. `scripts/run-local.sh --kwok`: jangar as a local process on kwok fake nodes instead (faster).
# Everything keeps running afterwards; stop it with `scripts/run-local.sh down`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ "${1:-}" == "down" ]]; then
  exec .venv/bin/jangar dev down
fi

bash scripts/bootstrap.sh
exec .venv/bin/jangar dev demo "$@"
