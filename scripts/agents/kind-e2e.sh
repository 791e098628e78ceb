#!/usr/bin/env bash
# Kind quickstart, end to end: create a kind cluster, build and load the jangar image, start Postgres,
# install the agents chart, run the smoke AgentRun and wait until it has Succeeded.
#
# Usage: scripts/agents/kind-e2e.sh [--dry-run]
#   --dry-run (or DRY_RUN=1) prints every command instead of running it.
#
# Environment (defaults in brackets):
#   CLUSTER_NAME [agents]  NAMESPACE [agents]  POSTGRES_RELEASE [agents-postgres]
#   POSTGRES_USER [agents]  POSTGRES_PASSWORD [agents]  POSTGRES_DB [agents]
#   POSTGRES_IMAGE [postgres:17-alpine]
#   CHART_PATH [charts/agents]  VALUES_FILE [charts/agents/values-kind.yaml]
#   SECRET_NAME [jangar-db-app]  SECRET_KEY [uri]  KUBECTL_CONTEXT [kind-<cluster>]
#   IMAGE_REPOSITORY [jangar-local]  IMAGE_TAG [kind]  BUILD_IMAGE [1; 0 skips the docker build]
#   CODEX_AUTH_PATH [~/.codex/auth.json; when the file exists it becomes Secret codex-auth for runner pods]
#   RELEASE_NAME [agents]  HELM_TEST [1; 0 skips `helm test`]
#   WORK_DIR [a temporary directory; where the Postgres and database Secret manifests are written]
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

DRY_RUN="${DRY_RUN:-0}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      echo "unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

CLUSTER_NAME="${CLUSTER_NAME:-agents}"
NAMESPACE="${NAMESPACE:-agents}"
RELEASE_NAME="${RELEASE_NAME:-agents}"
POSTGRES_RELEASE="${POSTGRES_RELEASE:-agents-postgres}"
POSTGRES_USER="${POSTGRES_USER:-agents}"
POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-agents}"
POSTGRES_DB="${POSTGRES_DB:-agents}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-postgres:17-alpine}"
CHART_PATH="${CHART_PATH:-${REPO_ROOT}/charts/agents}"
VALUES_FILE="${VALUES_FILE:-${CHART_PATH}/values-kind.yaml}"
SECRET_NAME="${SECRET_NAME:-jangar-db-app}"
SECRET_KEY="${SECRET_KEY:-uri}"
KUBECTL_CONTEXT="${KUBECTL_CONTEXT:-kind-${CLUSTER_NAME}}"
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-jangar-local}"
IMAGE_TAG="${IMAGE_TAG:-kind}"
BUILD_IMAGE="${BUILD_IMAGE:-1}"
CODEX_AUTH_PATH="${CODEX_AUTH_PATH:-${HOME}/.codex/auth.json}"
HELM_TEST="${HELM_TEST:-1}"
IMAGE="${IMAGE_REPOSITORY}:${IMAGE_TAG}"
EXAMPLES="${CHART_PATH}/examples"

log() { printf '==> %s\n' "$*" >&2; }

# run CMD...: print it; execute it unless this is a dry run.
run() {
  printf '+ %s\n' "$*"
  if [[ "$DRY_RUN" != "1" ]]; then
    "$@"
  fi
}

# probe CMD...: a read-only check. In a dry run it is not executed and counts as "no" (exit 1).
probe() {
  if [[ "$DRY_RUN" == "1" ]]; then
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# Generated manifests go to WORK_DIR (a temporary directory removed on exit unless WORK_DIR is given).
if [[ -n "${WORK_DIR:-}" ]]; then
  mkdir -p "$WORK_DIR"
else
  WORK_DIR="$(mktemp -d)"
  trap 'rm -rf "$WORK_DIR"' EXIT
fi

# --- 1. tools -------------------------------------------------------------------------------------
required=(kind kubectl helm git)
if [[ "$BUILD_IMAGE" == "1" ]]; then
  required+=(docker)
fi
for tool in "${required[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [[ "$DRY_RUN" == "1" ]]; then
      log "note: $tool is not on PATH (ignored in a dry run)"
    else
      echo "error: $tool is required but not on PATH" >&2
      exit 1
    fi
  fi
done

# --- 2. cluster -----------------------------------------------------------------------------------
log "kind cluster ${CLUSTER_NAME}"
if probe kind get kubeconfig --name "$CLUSTER_NAME"; then
  log "cluster ${CLUSTER_NAME} already exists"
else
  run kind create cluster --name "$CLUSTER_NAME" --wait 120s
fi
run kubectl config use-context "$KUBECTL_CONTEXT"
if probe kubectl get namespace "$NAMESPACE"; then
  log "namespace ${NAMESPACE} already exists"
else
  run kubectl create namespace "$NAMESPACE"
fi

# --- 3. image -------------------------------------------------------------------------------------
if [[ "$BUILD_IMAGE" == "1" ]]; then
  version="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo dev)"
  commit="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
  log "building ${IMAGE} (${version})"
  run docker build --file "${REPO_ROOT}/deploy/Dockerfile" --tag "$IMAGE" \
    --build-arg "JANGAR_VERSION=${version}" --build-arg "JANGAR_COMMIT=${commit}" "$REPO_ROOT"
else
  log "BUILD_IMAGE=${BUILD_IMAGE}: using the existing ${IMAGE}"
fi
run kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

# --- 4. Postgres ----------------------------------------------------------------------------------
log "Postgres ${POSTGRES_RELEASE} (${POSTGRES_IMAGE})"
postgres_manifest="${WORK_DIR}/postgres.yaml"
cat >"$postgres_manifest" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: ${POSTGRES_RELEASE}
stringData:
  POSTGRES_USER: "${POSTGRES_USER}"
  POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}"
  POSTGRES_DB: "${POSTGRES_DB}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${POSTGRES_RELEASE}
  labels: {app.kubernetes.io/name: ${POSTGRES_RELEASE}}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/name: ${POSTGRES_RELEASE}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: ${POSTGRES_RELEASE}}
    spec:
      containers:
        - name: postgres
          image: ${POSTGRES_IMAGE}
          envFrom: [{secretRef: {name: ${POSTGRES_RELEASE}}}]
          env: [{name: PGDATA, value: /var/lib/postgresql/data/pgdata}]
          ports: [{name: postgres, containerPort: 5432}]
          readinessProbe:
            exec: {command: [pg_isready, -U, "${POSTGRES_USER}", -d, "${POSTGRES_DB}"]}
            periodSeconds: 2
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata:
  name: ${POSTGRES_RELEASE}
spec:
  selector: {app.kubernetes.io/name: ${POSTGRES_RELEASE}}
  ports: [{name: postgres, port: 5432, targetPort: postgres}]
EOF
run kubectl --namespace "$NAMESPACE" apply --filename "$postgres_manifest"
run kubectl --namespace "$NAMESPACE" rollout status "deployment/${POSTGRES_RELEASE}" --timeout=180s

# The chart reads DATABASE_URL from this Secret (values-kind.yaml: database.secretRef).
database_url="postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_RELEASE}.${NAMESPACE}.svc.cluster.local:5432/${POSTGRES_DB}?sslmode=disable"
db_secret_manifest="${WORK_DIR}/db-secret.yaml"
cat >"$db_secret_manifest" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: ${SECRET_NAME}
stringData:
  ${SECRET_KEY}: "${database_url}"
EOF
run kubectl --namespace "$NAMESPACE" apply --filename "$db_secret_manifest"

# --- 5. Codex auth (optional) ---------------------------------------------------------------------
helm_auth_args=()
if [[ -f "$CODEX_AUTH_PATH" ]]; then
  log "Codex auth from ${CODEX_AUTH_PATH} -> Secret codex-auth"
  if probe kubectl --namespace "$NAMESPACE" get secret codex-auth; then
    run kubectl --namespace "$NAMESPACE" delete secret codex-auth
  fi
  run kubectl --namespace "$NAMESPACE" create secret generic codex-auth --from-file="auth.json=${CODEX_AUTH_PATH}"
  helm_auth_args=(--set controller.authSecret.name=codex-auth)
else
  log "no ${CODEX_AUTH_PATH}: runner pods get no Codex auth (the smoke run does not need it)"
fi

# --- 6. chart -------------------------------------------------------------------------------------
log "installing the chart as release ${RELEASE_NAME}"
run helm upgrade --install "$RELEASE_NAME" "$CHART_PATH" --namespace "$NAMESPACE" \
  --values "$VALUES_FILE" --set "image.repository=${IMAGE_REPOSITORY}" --set "image.tag=${IMAGE_TAG}" \
  ${helm_auth_args[@]+"${helm_auth_args[@]}"}
deployment="$RELEASE_NAME"
if [[ "$RELEASE_NAME" != *agents* ]]; then
  deployment="${RELEASE_NAME}-agents"
fi
run kubectl --namespace "$NAMESPACE" rollout status "deployment/${deployment}" --timeout=180s
if [[ "$HELM_TEST" == "1" ]]; then
  run helm test "$RELEASE_NAME" --namespace "$NAMESPACE" --timeout 120s
fi

# --- 7. smoke AgentRun ----------------------------------------------------------------------------
log "smoke AgentRun"
for example in agentprovider-smoke agent-smoke implementationspec-smoke; do
  run kubectl --namespace "$NAMESPACE" apply --filename "${EXAMPLES}/${example}.yaml"
done
if probe kubectl --namespace "$NAMESPACE" get agentrun agents-workflow-smoke; then
  run kubectl --namespace "$NAMESPACE" delete agentrun agents-workflow-smoke --wait=true
fi
run kubectl --namespace "$NAMESPACE" apply --filename "${EXAMPLES}/agentrun-workflow-smoke.yaml"
run kubectl --namespace "$NAMESPACE" wait --for=condition=Succeeded agentrun/agents-workflow-smoke --timeout=300s
run kubectl --namespace "$NAMESPACE" get agentruns agents-workflow-smoke -o wide

if [[ "$DRY_RUN" == "1" ]]; then
  log "dry run: nothing was executed"
  exit 0
fi
cat <<EOF

Smoke AgentRun succeeded on kind cluster ${CLUSTER_NAME} (namespace ${NAMESPACE}).
Next steps:
  kubectl -n ${NAMESPACE} port-forward svc/${deployment} 8080:80 &
  curl -sf http://127.0.0.1:8080/health
  kubectl -n ${NAMESPACE} describe agentrun agents-workflow-smoke
  kubectl -n ${NAMESPACE} get jobs -l agents.proompteng.ai/agent-run=agents-workflow-smoke
Delete everything: kind delete cluster --name ${CLUSTER_NAME}
EOF
