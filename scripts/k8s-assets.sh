#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy into a cache directory outside the
# repository, keyed by the pinned versions. A second run is a no-op. Every step prints its duration.
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy (k8s.io/kubernetes through
#   a wrapper module), etcd, kwok, kwokctl, helm, kind, pause (scripts/pause, our own pod sandbox process),
#   coredns (scripts/coredns: CoreDNS with only the plugins a local cluster's DNS needs), registry (CNCF
#   distribution) and crane (go-containerregistry) for scripts/publish-chart.sh, and kwok's default Stage YAMLs.
# Incremental: only the binaries that are missing are built (existing ones are never rebuilt), so adding a
# binary to an existing cache directory costs only that binary.
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
# Keep in step with jangar/dev/assets.py (ALL_BINARIES).
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
OTHER_BINARIES=(etcd kwok kwokctl helm kind pause coredns registry crane)
PAUSE_SRC="$here/pause"
COREDNS_SRC="$here/coredns"

step_start=0
step() { step_name="$1"; step_start=$(date +%s); echo ">>> $step_name" >&2; }
done_step() { echo "<<< $step_name: $(( $(date +%s) - step_start ))s" >&2; }

# The pause binary is rebuilt when its source changes (a second or two); everything else only when missing.
pause_hash() { cat "$PAUSE_SRC/go.mod" "$PAUSE_SRC/main.go" | sha256sum | cut -d' ' -f1; }
coredns_hash() { cat "$COREDNS_SRC/go.mod" "$COREDNS_SRC/go.sum" "$COREDNS_SRC/main.go" | sha256sum | cut -d' ' -f1; }
all_present() {
  local b
  for b in "${K8S_BINARIES[@]}" "${OTHER_BINARIES[@]}"; do
    [[ -x "$BIN/$b" ]] || return 1
  done
  [[ -f "$ASSETS/kwok/stages.yaml" && "$(cat "$ASSETS/pause.sha256" 2>/dev/null)" == "$(pause_hash)" \
    && "$(cat "$ASSETS/coredns.sha256" 2>/dev/null)" == "$(coredns_hash)" ]]
}

if [[ -f "$ASSETS/.complete" ]] && all_present; then
  echo "k8s assets cached: $ASSETS" >&2
  echo "$ASSETS"
  exit 0
fi
mkdir -p "$BIN"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
W=$(mktemp -d)
# New binaries are built into $PARTIAL (same filesystem) and renamed into $BIN, so a reader polling for
# $BIN/<name> never sees a half-written file.
PARTIAL="$BIN/.partial"
rm -rf "$PARTIAL"
trap 'rm -rf "$W" "$PARTIAL"' EXIT
total_start=$(date +%s)

# --- kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy --------------------
missing_k8s=()
for b in "${K8S_BINARIES[@]}"; do
  [[ -x "$BIN/$b" ]] || missing_k8s+=("$b")
done
if [[ ${#missing_k8s[@]} -gt 0 ]]; then
  step "k8s wrapper module (k8s.io/kubernetes ${K8S_VERSION}, staging ${STAGING_VERSION})"
  mkdir "$W/k8s" && cd "$W/k8s"
  go mod init local.test/k8sbins >/dev/null 2>&1
  KMOD=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  kgo=$(sed -n 's/^go[[:space:]]\+\([0-9.]*\)$/\1/p' "$KMOD" | head -n1)
  go mod edit -go="$kgo"
  while read -r m; do
    go mod edit -replace="${m}=${m}@${STAGING_VERSION}"
  done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$KMOD")
  # carry k8s' GODEBUG defaults, single-line and block forms
  awk '/^godebug[[:space:]]*\(/{b=1;next} b&&/^\)/{b=0;next} b{print $1; next} /^godebug[[:space:]]+[^(]/{print $2}' "$KMOD" \
    | while read -r kv; do [[ -n "$kv" ]] && go mod edit -godebug="$kv"; done
  # every k8s binary is imported, whichever are built, so the module graph is the same on every run
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "${K8S_BINARIES[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } > tools.go
  go get "k8s.io/kubernetes@${K8S_VERSION}" >&2
  go mod tidy -e >&2 || true
  done_step
  step "build ${missing_k8s[*]}"
  LD="-s -w"; NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD+=" -X $p.gitVersion=${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${KMINOR}"
    LD+=" -X $p.gitTreeState=clean -X $p.gitCommit=gomod-${K8S_VERSION} -X $p.buildDate=${NOW}"
  done
  pkgs=()
  for b in "${missing_k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  mkdir -p "$PARTIAL"
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$LD" -o "$PARTIAL/" "${pkgs[@]}"
  for b in "${missing_k8s[@]}"; do
    "$PARTIAL/$b" --version >&2
    mv -f "$PARTIAL/$b" "$BIN/$b"
  done
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

# --- registry + crane: a local OCI registry and an image pusher (scripts/publish-chart.sh) ----------------
if [[ ! -x "$BIN/registry" ]]; then
  step "build registry (distribution ${DISTRIBUTION_VERSION})"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" \
    "github.com/distribution/distribution/v3/cmd/registry@${DISTRIBUTION_VERSION}"
  done_step
fi
if [[ ! -x "$BIN/crane" ]]; then
  step "build crane ${CRANE_VERSION}"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "github.com/google/go-containerregistry/cmd/crane@${CRANE_VERSION}"
  done_step
fi

# --- pause: the pod sandbox's process, static, stdlib only ------------------------------------------
if [[ ! -x "$BIN/pause" || "$(cat "$ASSETS/pause.sha256" 2>/dev/null)" != "$(pause_hash)" ]]; then
  step "build pause (scripts/pause)"
  mkdir -p "$W/pause" "$PARTIAL"
  cp "$PAUSE_SRC/go.mod" "$PAUSE_SRC/main.go" "$W/pause/"
  (cd "$W/pause" && GOWORK=off go build -trimpath -ldflags "-s -w" -o "$PARTIAL/pause" .)
  "$PARTIAL/pause" --version >&2
  mv -f "$PARTIAL/pause" "$BIN/pause"
  pause_hash > "$ASSETS/pause.sha256"
  done_step
fi

# --- coredns: the cluster DNS of the node shape (Services by name from pods), our plugin list -----------
if [[ ! -x "$BIN/coredns" || "$(cat "$ASSETS/coredns.sha256" 2>/dev/null)" != "$(coredns_hash)" ]]; then
  step "build coredns (scripts/coredns)"
  mkdir -p "$W/coredns" "$PARTIAL"
  cp "$COREDNS_SRC/go.mod" "$COREDNS_SRC/go.sum" "$COREDNS_SRC/main.go" "$W/coredns/"
  (cd "$W/coredns" && GOWORK=off GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$PARTIAL/coredns" .)
  "$PARTIAL/coredns" -version >&2
  mv -f "$PARTIAL/coredns" "$BIN/coredns"
  coredns_hash > "$ASSETS/coredns.sha256"
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

all_present || { echo "k8s assets incomplete after the build: $ASSETS" >&2; exit 1; }
touch "$ASSETS/.complete"
echo "k8s assets built in $(( $(date +%s) - total_start ))s: $ASSETS" >&2
echo "$ASSETS"
