#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy into a cache directory outside the
# repository, keyed by the pinned versions. A second run is a no-op. Every step prints its duration.
#   kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes through a wrapper module),
#   etcd, kwok, kwokctl, helm, kind, and kwok's default Stage YAMLs.
# Prints the asset directory on its last line of stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.env
source "$here/versions.env"

STAGING_VERSION="v0.${K8S_VERSION#v1.}"
KMINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
KEY="${K8S_VERSION}_${ETCD_VERSION}_${KWOK_VERSION}_${HELM_VERSION}_${KIND_VERSION}"
ASSETS="${JANGAR_ASSETS:-${XDG_CACHE_HOME:-$HOME/.cache}/jangar/k8s-assets/${KEY}}"
BIN="$ASSETS/bin"

step_start=0
step() { step_name="$1"; step_start=$(date +%s); echo ">>> $step_name" >&2; }
done_step() { echo "<<< $step_name: $(( $(date +%s) - step_start ))s" >&2; }

if [[ -f "$ASSETS/.complete" ]]; then
  echo "k8s assets cached: $ASSETS" >&2
  echo "$ASSETS"
  exit 0
fi
mkdir -p "$BIN"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
total_start=$(date +%s)

# --- kube-apiserver / kube-controller-manager / kube-scheduler ---------------------------------------
if [[ ! -x "$BIN/kube-apiserver" || ! -x "$BIN/kube-controller-manager" || ! -x "$BIN/kube-scheduler" ]]; then
  step "k8s wrapper module (k8s.io/kubernetes ${K8S_VERSION}, staging ${STAGING_VERSION})"
  mkdir "$W/k8s" && cd "$W/k8s"
  go mod init local.test/k8sbins >/dev/null 2>&1
  KMOD=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  kgo=$(sed -n 's/^go[[:space:]]\+\([0-9.]*\)$/\1/p' "$KMOD" | head -n1)
  go mod edit -go="$kgo"
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$KMOD"); do
    go mod edit -replace="${m}=${m}@${STAGING_VERSION}"
  done
  # carry k8s' GODEBUG defaults, single-line and block forms
  awk '/^godebug[[:space:]]*\(/{b=1;next} b&&/^\)/{b=0;next} b{print $1; next} /^godebug[[:space:]]+[^(]/{print $2}' "$KMOD" \
    | while read -r kv; do [[ -n "$kv" ]] && go mod edit -godebug="$kv"; done
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  go get "k8s.io/kubernetes@${K8S_VERSION}" >&2
  go mod tidy -e >&2 || true
  done_step
  step "build kube-apiserver, kube-controller-manager, kube-scheduler"
  LD="-s -w"; NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD+=" -X $p.gitVersion=${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${KMINOR}"
    LD+=" -X $p.gitTreeState=clean -X $p.gitCommit=gomod-${K8S_VERSION} -X $p.buildDate=${NOW}"
  done
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$LD" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
  "$BIN/kube-apiserver" --version >&2
  done_step
fi

# --- etcd (its own wrapper module so MVS does not mix its deps with k8s') -----------------------------
if [[ ! -x "$BIN/etcd" ]]; then
  step "build etcd ${ETCD_VERSION}"
  mkdir -p "$W/etcd" && cd "$W/etcd"
  go mod init local.test/etcdbin >/dev/null 2>&1
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
  go mod tidy -e >&2 || true
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  "$BIN/etcd" --version >&2
  done_step
fi

# --- kwok, kwokctl, helm, kind ------------------------------------------------------------------------
if [[ ! -x "$BIN/kwok" || ! -x "$BIN/kwokctl" ]]; then
  step "build kwok + kwokctl ${KWOK_VERSION}"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
  done_step
fi
if [[ ! -x "$BIN/helm" ]]; then
  step "build helm ${HELM_VERSION}"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${KMINOR} \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${KMINOR}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  "$BIN/helm" version >&2
  done_step
fi
if [[ ! -x "$BIN/kind" ]]; then
  step "build kind ${KIND_VERSION}"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@${KIND_VERSION}"
  done_step
fi

# --- kwok's default Stages (standalone kwok has none built in) ----------------------------------------
step "kwok stages"
S="$(go env GOMODCACHE)/sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage"
mkdir -p "$ASSETS/kwok"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cat "$S/$f"; echo '---'
done > "$ASSETS/kwok/stages.yaml"
done_step

touch "$ASSETS/.complete"
echo "k8s assets built in $(( $(date +%s) - total_start ))s: $ASSETS" >&2
echo "$ASSETS"
