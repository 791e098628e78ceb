{{/* vim: set filetype=mustache: */}}

{{- define "agents.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agents.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "agents.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agents.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "agents.labels" -}}
helm.sh/chart: {{ include "agents.chart" . }}
{{ include "agents.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agents
{{- end -}}

{{- define "agents.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agents.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agents.controllersName" -}}
{{- printf "%s-controllers" (include "agents.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agents.controllersSelectorLabels" -}}
app.kubernetes.io/name: {{ include "agents.controllersName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the controllers Deployment: same as agents.labels but named after the controllers. */}}
{{- define "agents.controllersLabels" -}}
helm.sh/chart: {{ include "agents.chart" . }}
{{ include "agents.controllersSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agents
{{- end -}}

{{- define "agents.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-sa" (include "agents.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "agents.runnerServiceAccountName" -}}
{{- if .Values.runnerServiceAccount.name -}}
{{- .Values.runnerServiceAccount.name -}}
{{- else if .Values.runnerServiceAccount.create -}}
{{- printf "%s-runner" (include "agents.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped RBAC objects carry the namespace so two releases with one name never collide. */}}
{{- define "agents.clusterRoleName" -}}
{{- printf "%s-%s" (include "agents.namespace" .) (include "agents.fullname" .) -}}
{{- end -}}

{{- define "agents.databaseSecretName" -}}
{{- if .Values.database.createSecret.enabled -}}
{{- default (printf "%s-db" (include "agents.fullname" .)) .Values.database.createSecret.name -}}
{{- else -}}
{{- .Values.database.secretRef.name -}}
{{- end -}}
{{- end -}}

{{- define "agents.databaseSecretKey" -}}
{{- if .Values.database.createSecret.enabled -}}
url
{{- else -}}
{{- default "url" .Values.database.secretRef.key -}}
{{- end -}}
{{- end -}}

{{/* A namespace list joined with ",", an empty list meaning the release namespace. */}}
{{- define "agents.joinNamespaces" -}}
{{- $list := .list | default list -}}
{{- if $list -}}
{{- join "," $list -}}
{{- else -}}
{{- include "agents.namespace" .root -}}
{{- end -}}
{{- end -}}

{{- define "agents.controllerNamespaces" -}}
{{- include "agents.joinNamespaces" (dict "root" . "list" .Values.controller.namespaces) -}}
{{- end -}}
{{- define "agents.orchestrationNamespaces" -}}
{{- include "agents.joinNamespaces" (dict "root" . "list" .Values.orchestrationController.namespaces) -}}
{{- end -}}
{{- define "agents.supportingNamespaces" -}}
{{- include "agents.joinNamespaces" (dict "root" . "list" .Values.supportingController.namespaces) -}}
{{- end -}}

{{/*
Every namespace a controller watches, as a JSON array (deduplicated, sorted). Used for the per-namespace
Roles in namespaced mode.
*/}}
{{- define "agents.watchedNamespaces" -}}
{{- $all := list -}}
{{- range $csv := list (include "agents.controllerNamespaces" .) (include "agents.orchestrationNamespaces" .) (include "agents.supportingNamespaces" .) -}}
{{- range (splitList "," $csv) -}}
{{- $all = append $all . -}}
{{- end -}}
{{- end -}}
{{- $all | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* An image reference "repo:tag[@digest]" from a component image dict with the top-level image as fallback. */}}
{{- define "agents.imageRef" -}}
{{- $c := .component | default dict -}}
{{- $g := .root.Values.image -}}
{{- $repo := default $g.repository $c.repository -}}
{{- $tag := default (default .root.Chart.AppVersion $g.tag) $c.tag -}}
{{- $digest := default $g.digest $c.digest -}}
{{- if $digest -}}
{{- printf "%s:%s@%s" $repo (toString $tag) $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (toString $tag) -}}
{{- end -}}
{{- end -}}

{{- define "agents.runnerImage" -}}
{{- $r := .Values.runner.image -}}
{{- if .Values.runtime.agentRunnerImage -}}
{{- .Values.runtime.agentRunnerImage -}}
{{- else if $r.repository -}}
{{- if $r.digest -}}
{{- printf "%s:%s@%s" $r.repository (toString (default "latest" $r.tag)) $r.digest -}}
{{- else -}}
{{- printf "%s:%s" $r.repository (toString (default "latest" $r.tag)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "agents.leaseName" -}}
{{- $le := include "agents.leaderElection" . | fromJson -}}
{{- default (printf "%s-controller" (include "agents.fullname" .)) $le.leaseName | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Integer rendering that never falls into float notation (2592000, not 2.592e+06). */}}
{{- define "agents.int" -}}
{{- if kindIs "string" . -}}{{ . }}{{- else -}}{{ int64 . }}{{- end -}}
{{- end -}}

{{/* Seconds (a number > 0): integral values as integers, fractions as decimals (0.5). */}}
{{- define "agents.seconds" -}}
{{- if kindIs "string" . -}}{{ . }}{{- else if eq (float64 .) (float64 (int64 .)) -}}{{ int64 . }}{{- else -}}{{ float64 . }}{{- end -}}
{{- end -}}

{{- define "agents.bool" -}}
{{- if . -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{- define "agents.flag" -}}
{{- if . -}}1{{- else -}}0{{- end -}}
{{- end -}}

{{/*
The env list of a jangar container. Arguments: root (the chart context) and component ("main" or
"controllers"). Entries are built in order, then user-provided env (env.vars merged with the component's
env.vars, env.secrets, env.config, env.extra) replaces a chart-computed entry of the same name, so no
name appears twice.
*/}}
{{- define "agents.env" -}}
{{- $root := .root -}}
{{- $V := $root.Values -}}
{{- $main := eq .component "main" -}}
{{- $split := $V.controllers.enabled -}}
{{- $runsControllers := or (not $main) (not $split) -}}
{{- $env := list -}}

{{- /* Database */ -}}
{{- if or $V.database.createSecret.enabled $V.database.secretRef.name -}}
{{- $env = append $env (dict "name" "DATABASE_URL" "valueFrom" (dict "secretKeyRef" (dict "name" (include "agents.databaseSecretName" $root) "key" (include "agents.databaseSecretKey" $root)))) -}}
{{- else if $V.database.url -}}
{{- $env = append $env (dict "name" "DATABASE_URL" "value" $V.database.url) -}}
{{- end -}}
{{- if $V.database.caSecret.name -}}
{{- $env = append $env (dict "name" "PGSSLROOTCERT" "value" (printf "/etc/jangar/ca/%s" (default "ca.crt" $V.database.caSecret.key))) -}}
{{- end -}}

{{- /* Native workflow runtime */ -}}
{{- $wr := include "agents.nativeRuntime" $root | fromJson -}}
{{- range $pair := list (list "JANGAR_CODEX_RERUN_ORCHESTRATION" $wr.rerunOrchestration) (list "JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE" $wr.rerunOrchestrationNamespace) (list "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION" $wr.systemImprovementOrchestration) (list "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE" $wr.systemImprovementOrchestrationNamespace) (list "JANGAR_AGENT_IMAGE" $V.runtime.agentImage) (list "JANGAR_SCHEDULE_RUNNER_IMAGE" $V.runtime.scheduleRunnerImage) (list "JANGAR_SCHEDULE_SERVICE_ACCOUNT" $V.runtime.scheduleServiceAccount) -}}
{{- if index $pair 1 -}}
{{- $env = append $env (dict "name" (index $pair 0) "value" (toString (index $pair 1))) -}}
{{- end -}}
{{- end -}}

{{- /* Images and runner defaults */ -}}
{{- $component := ternary $V.controlPlane.image $V.controllers.image $main -}}
{{- $env = append $env (dict "name" "JANGAR_IMAGE" "value" (include "agents.imageRef" (dict "root" $root "component" $component))) -}}
{{- $runnerImage := include "agents.runnerImage" $root -}}
{{- if $runnerImage -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_IMAGE" "value" $runnerImage) -}}
{{- end -}}
{{- if $V.runner.image.pullPolicy -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY" "value" $V.runner.image.pullPolicy) -}}
{{- end -}}
{{- $ttl := $V.controller.jobTtlSecondsAfterFinished -}}
{{- if not (kindIs "invalid" $V.controller.jobTtlSeconds) -}}
{{- $ttl = $V.controller.jobTtlSeconds -}}
{{- end -}}
{{- if not (kindIs "invalid" $ttl) -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS" "value" (include "agents.int" $ttl)) -}}
{{- end -}}
{{- if not (kindIs "invalid" $V.controller.logRetentionSeconds) -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS" "value" (include "agents.int" $V.controller.logRetentionSeconds)) -}}
{{- end -}}
{{- $env = append $env (dict "name" "JANGAR_SERVICE_ACCOUNT_NAME" "value" (include "agents.serviceAccountName" $root)) -}}
{{- $dw := $V.controller.defaultWorkload -}}
{{- $runnerSA := "" -}}
{{- if $dw.serviceAccountName -}}
{{- $runnerSA = $dw.serviceAccountName -}}
{{- else if $V.runnerServiceAccount.setAsDefault -}}
{{- $runnerSA = include "agents.runnerServiceAccountName" $root -}}
{{- end -}}
{{- if $runnerSA -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT" "value" $runnerSA) -}}
{{- end -}}
{{- /* issue 12: the controller creates the runner SA in a run's namespace when it is missing (all namespaces under "*") */ -}}
{{- if and $V.runnerServiceAccount.create (eq $runnerSA (include "agents.runnerServiceAccountName" $root)) -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE" "value" "true") -}}
{{- with $V.runnerServiceAccount.annotations -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_ANNOTATIONS" "value" (toJson .)) -}}
{{- end -}}
{{- if include "agents.runnerBinder" $root -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_CLUSTER_ROLE" "value" (printf "%s-runner" (include "agents.clusterRoleName" $root))) -}}
{{- end -}}
{{- end -}}
{{- if $dw.nodeSelector -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_NODE_SELECTOR" "value" (toJson $dw.nodeSelector)) -}}
{{- end -}}
{{- if $dw.tolerations -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_TOLERATIONS" "value" (toJson $dw.tolerations)) -}}
{{- end -}}
{{- if $dw.topologySpreadConstraints -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_TOPOLOGY_SPREAD_CONSTRAINTS" "value" (toJson $dw.topologySpreadConstraints)) -}}
{{- end -}}
{{- if $dw.affinity -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_AFFINITY" "value" (toJson $dw.affinity)) -}}
{{- end -}}
{{- if $dw.podSecurityContext -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_POD_SECURITY_CONTEXT" "value" (toJson $dw.podSecurityContext)) -}}
{{- end -}}
{{- $pullSecrets := concat ($dw.imagePullSecrets | default list) ($V.runner.image.pullSecrets | default list) | uniq -}}
{{- if $pullSecrets -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_IMAGE_PULL_SECRETS" "value" (toJson $pullSecrets)) -}}
{{- end -}}
{{- if $dw.priorityClassName -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_PRIORITY_CLASS" "value" $dw.priorityClassName) -}}
{{- end -}}
{{- if $dw.schedulerName -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_SCHEDULER_NAME" "value" $dw.schedulerName) -}}
{{- end -}}

{{- /* Process */ -}}
{{- if $V.kubernetesApi.host -}}
{{- $env = append $env (dict "name" "KUBERNETES_SERVICE_HOST" "value" $V.kubernetesApi.host) -}}
{{- end -}}
{{- if $V.kubernetesApi.port -}}
{{- $env = append $env (dict "name" "KUBERNETES_SERVICE_PORT" "value" (toString $V.kubernetesApi.port)) -}}
{{- end -}}
{{- $env = append $env (dict "name" "JANGAR_POD_NAMESPACE" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.namespace"))) -}}
{{- $env = append $env (dict "name" "JANGAR_POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name"))) -}}
{{- $env = append $env (dict "name" "JANGAR_HTTP_PORT" "value" "8080") -}}
{{- $env = append $env (dict "name" "JANGAR_LOG_LEVEL" "value" (default "info" $V.logging.level)) -}}
{{- $env = append $env (dict "name" "JANGAR_PROMETHEUS_METRICS_ENABLED" "value" (include "agents.bool" $V.metrics.enabled)) -}}
{{- $env = append $env (dict "name" "JANGAR_PROMETHEUS_METRICS_PATH" "value" (default "/metrics" $V.metrics.path)) -}}
{{- $env = append $env (dict "name" "JANGAR_RBAC_CLUSTER_SCOPED" "value" (include "agents.bool" $V.rbac.clusterScoped)) -}}
{{- $env = append $env (dict "name" "JANGAR_PRIMITIVES_NAMESPACES" "value" (include "agents.controllerNamespaces" $root)) -}}
{{- if and $main $split -}}
{{- $env = append $env (dict "name" "JANGAR_PRIMITIVES_RECONCILER" "value" "0") -}}
{{- end -}}

{{- /* Leader election (only where controllers run; off on the API-only Deployment of split mode) */ -}}
{{- $le := include "agents.leaderElection" $root | fromJson -}}
{{- $env = append $env (dict "name" "JANGAR_LEADER_ELECTION_ENABLED" "value" (include "agents.bool" (and $runsControllers $le.enabled))) -}}
{{- if and $runsControllers $le.enabled -}}
{{- $env = append $env (dict "name" "JANGAR_LEADER_ELECTION_LEASE_NAME" "value" (include "agents.leaseName" $root)) -}}
{{- $env = append $env (dict "name" "JANGAR_LEADER_ELECTION_NAMESPACE" "value" (include "agents.leaseNamespace" $root)) -}}
{{- $env = append $env (dict "name" "JANGAR_LEADER_ELECTION_LEASE_DURATION_SECONDS" "value" (include "agents.int" $le.leaseDurationSeconds)) -}}
{{- $env = append $env (dict "name" "JANGAR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS" "value" (include "agents.int" $le.renewDeadlineSeconds)) -}}
{{- $env = append $env (dict "name" "JANGAR_LEADER_ELECTION_RETRY_PERIOD_SECONDS" "value" (include "agents.int" $le.retryPeriodSeconds)) -}}
{{- end -}}

{{- /* Controller runtime knobs: only where controllers run; a key set to null leaves jangar's default. */ -}}
{{- if $runsControllers -}}
{{- $cw := $V.controller.workers | default dict -}}
{{- $gp := $V.controller.gracePeriods | default dict -}}
{{- range $pair := list (list "JANGAR_AGENTRUN_WORKERS" $cw.agentRun) (list "JANGAR_SUPPORTING_CONTROLLER_WORKERS" $cw.supporting) -}}
{{- if not (kindIs "invalid" (index $pair 1)) -}}
{{- $env = append $env (dict "name" (index $pair 0) "value" (include "agents.int" (index $pair 1))) -}}
{{- end -}}
{{- end -}}
{{- range $pair := list (list "JANGAR_RECONCILE_TIMEOUT_SECONDS" $V.controller.reconcileTimeoutSeconds) (list "JANGAR_REFERENCE_GRACE_SECONDS" $gp.referenceSeconds) (list "JANGAR_IMAGE_PULL_GRACE_SECONDS" $gp.imagePullSeconds) (list "JANGAR_SCHEDULING_GRACE_SECONDS" $gp.schedulingSeconds) (list "JANGAR_MISSING_JOB_GRACE_SECONDS" $gp.missingJobSeconds) -}}
{{- if not (kindIs "invalid" (index $pair 1)) -}}
{{- $env = append $env (dict "name" (index $pair 0) "value" (include "agents.seconds" (index $pair 1))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Artifacts recorded for runs (issue 11): only where controllers run; null leaves jangar's default. */ -}}
{{- if $runsControllers -}}
{{- $art := $V.controller.artifacts | default dict -}}
{{- /* chart 0.9.29's controller.agentRunArtifacts.max is the same cap: it wins when set */ -}}
{{- $max := $art.maxPerRun -}}
{{- with $V.controller.agentRunArtifacts -}}{{- if not (kindIs "invalid" .max) -}}{{- $max = .max -}}{{- end -}}{{- end -}}
{{- range $pair := list (list "JANGAR_ARTIFACTS_MAX_PER_RUN" $max) (list "JANGAR_ARTIFACTS_DEFAULT_TTL_DAYS" $art.defaultTtlDays) -}}
{{- if not (kindIs "invalid" (index $pair 1)) -}}
{{- $env = append $env (dict "name" (index $pair 0) "value" (include "agents.int" (index $pair 1))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* Agents controller */ -}}
{{- $c := $V.controller -}}
{{- $agentsOn := and $runsControllers $c.enabled -}}
{{- $env = append $env (dict "name" "JANGAR_AGENTS_CONTROLLER_ENABLED" "value" (include "agents.flag" $agentsOn)) -}}
{{- /* Emitted even where the controller is off: the API side (REST admission, the run cache) of the
     split-mode control plane reads the same namespaces, queue and rate settings. */ -}}
{{- with "JANGAR_AGENTS_CONTROLLER_" -}}
{{- $p := . -}}
{{- $env = append $env (dict "name" (print $p "NAMESPACES") "value" (include "agents.controllerNamespaces" $root)) -}}
{{- $nums := list
    (list "CONCURRENCY_NAMESPACE" $c.concurrency.perNamespace)
    (list "CONCURRENCY_AGENT" $c.concurrency.perAgent)
    (list "CONCURRENCY_CLUSTER" $c.concurrency.cluster)
    (list "REPO_CONCURRENCY_DEFAULT" $c.repoConcurrency.default)
    (list "QUEUE_NAMESPACE" $c.queue.perNamespace)
    (list "QUEUE_REPO" $c.queue.perRepo)
    (list "QUEUE_CLUSTER" $c.queue.cluster)
    (list "RATE_WINDOW_SECONDS" $c.rate.windowSeconds)
    (list "RATE_NAMESPACE" $c.rate.perNamespace)
    (list "RATE_REPO" $c.rate.perRepo)
    (list "RATE_CLUSTER" $c.rate.cluster)
    (list "WEBHOOK_QUEUE_SIZE" $c.webhook.queueSize)
    (list "WEBHOOK_RETRY_BASE_DELAY_SECONDS" $c.webhook.retry.baseDelaySeconds)
    (list "WEBHOOK_RETRY_MAX_DELAY_SECONDS" $c.webhook.retry.maxDelaySeconds)
    (list "WEBHOOK_RETRY_MAX_ATTEMPTS" $c.webhook.retry.maxAttempts)
    (list "AGENTRUN_RETENTION_SECONDS" $c.agentRunRetentionSeconds) -}}
{{- $env = append $env (dict "name" (print $p "REPO_CONCURRENCY_ENABLED") "value" (include "agents.bool" $c.repoConcurrency.enabled)) -}}
{{- range $nums -}}
{{- if not (kindIs "invalid" (index . 1)) -}}
{{- $env = append $env (dict "name" (print $p (index . 0)) "value" (include "agents.int" (index . 1))) -}}
{{- end -}}
{{- end -}}
{{- if $c.repoConcurrency.overrides -}}
{{- $env = append $env (dict "name" (print $p "REPO_CONCURRENCY_OVERRIDES") "value" (toJson $c.repoConcurrency.overrides)) -}}
{{- end -}}
{{- $ap := $c.admissionPolicy -}}
{{- range $pair := list (list "LABELS_REQUIRED" $ap.labels.required) (list "LABELS_ALLOWED" $ap.labels.allowed) (list "LABELS_DENIED" $ap.labels.denied) (list "IMAGES_ALLOWED" $ap.images.allowed) (list "IMAGES_DENIED" $ap.images.denied) (list "BLOCKED_SECRETS" $ap.secrets.blocked) -}}
{{- if index $pair 1 -}}
{{- $env = append $env (dict "name" (print $p (index $pair 0)) "value" (toJson (index $pair 1))) -}}
{{- end -}}
{{- end -}}
{{- $env = append $env (dict "name" (print $p "VCS_PROVIDERS_ENABLED") "value" (include "agents.bool" $c.vcsProviders.enabled)) -}}
{{- if not (kindIs "invalid" $c.vcsProviders.deprecatedTokenTypes) -}}
{{- $env = append $env (dict "name" (print $p "VCS_DEPRECATED_TOKEN_TYPES") "value" (toJson $c.vcsProviders.deprecatedTokenTypes)) -}}
{{- end -}}
{{- if $c.vcsProviders.prRateLimits -}}
{{- $env = append $env (dict "name" (print $p "VCS_PR_RATE_LIMITS") "value" (toJson $c.vcsProviders.prRateLimits)) -}}
{{- end -}}
{{- end -}}
{{- if $c.authSecret.name -}}
{{- $p := "JANGAR_AGENTS_CONTROLLER_" -}}
{{- $mount := default "/root/.codex" $c.authSecret.mountPath | trimSuffix "/" -}}
{{- $env = append $env (dict "name" (print $p "AUTH_SECRET_NAME") "value" $c.authSecret.name) -}}
{{- $env = append $env (dict "name" (print $p "AUTH_SECRET_KEY") "value" (default "auth.json" $c.authSecret.key)) -}}
{{- $env = append $env (dict "name" (print $p "AUTH_SECRET_MOUNT_PATH") "value" $mount) -}}
{{- $env = append $env (dict "name" "CODEX_HOME" "value" $mount) -}}
{{- $env = append $env (dict "name" "CODEX_AUTH" "value" (printf "%s/auth.json" $mount)) -}}
{{- end -}}

{{- /* Orchestration and supporting controllers */ -}}
{{- $orchOn := and $runsControllers $V.orchestrationController.enabled -}}
{{- $env = append $env (dict "name" "JANGAR_ORCHESTRATION_CONTROLLER_ENABLED" "value" (include "agents.flag" $orchOn)) -}}
{{- $env = append $env (dict "name" "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES" "value" (include "agents.orchestrationNamespaces" $root)) -}}
{{- $supOn := and $runsControllers $V.supportingController.enabled -}}
{{- $env = append $env (dict "name" "JANGAR_SUPPORTING_CONTROLLER_ENABLED" "value" (include "agents.flag" $supOn)) -}}
{{- $env = append $env (dict "name" "JANGAR_SUPPORTING_CONTROLLER_NAMESPACES" "value" (include "agents.supportingNamespaces" $root)) -}}

{{- /* gRPC: the main Deployment serves it, and the controllers one too when controllers.service.enabled (0.9.29) */ -}}
{{- $grpcOn := ternary $V.grpc.enabled (not (empty (include "agents.controllersGrpc" $root))) $main -}}
{{- /* 0.9.29 grpc.manageEnvVar=false: the user's env (AGENTS_GRPC_* / JANGAR_GRPC_*) says whether and where
     gRPC listens; the chart still renders the port, the Services and the token from grpc.token(Secret). */ -}}
{{- $manageGrpc := ne (toString $V.grpc.manageEnvVar) "false" -}}
{{- if $manageGrpc -}}
{{- $env = append $env (dict "name" "JANGAR_GRPC_ENABLED" "value" (include "agents.bool" $grpcOn)) -}}
{{- end -}}
{{- if $grpcOn -}}
{{- if $manageGrpc -}}
{{- $env = append $env (dict "name" "JANGAR_GRPC_HOST" "value" "0.0.0.0") -}}
{{- $env = append $env (dict "name" "JANGAR_GRPC_PORT" "value" (include "agents.int" $V.grpc.port)) -}}
{{- end -}}
{{- if $V.grpc.tokenSecret.name -}}
{{- $env = append $env (dict "name" "JANGAR_GRPC_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" $V.grpc.tokenSecret.name "key" (default "token" $V.grpc.tokenSecret.key)))) -}}
{{- else if $V.grpc.token -}}
{{- $env = append $env (dict "name" "JANGAR_GRPC_TOKEN" "value" $V.grpc.token) -}}
{{- end -}}
{{- end -}}
{{- if not $main -}}
{{- $env = append $env (dict "name" "JANGAR_CONTROL_PLANE_CACHE_ENABLED" "value" "0") -}}
{{- end -}}

{{- /* Agent comms (NATS) */ -}}
{{- $commsOn := and $runsControllers $V.agentComms.enabled -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED" "value" (include "agents.bool" (not $commsOn))) -}}
{{- if $commsOn -}}
{{- $nats := $V.agentComms.nats -}}
{{- $env = append $env (dict "name" "NATS_URL" "value" (default "nats://nats.nats.svc.cluster.local:4222" $nats.url)) -}}
{{- if $nats.userSecret.name -}}
{{- $env = append $env (dict "name" "NATS_USER" "valueFrom" (dict "secretKeyRef" (dict "name" $nats.userSecret.name "key" (default "username" $nats.userSecret.usernameKey)))) -}}
{{- $env = append $env (dict "name" "NATS_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" $nats.userSecret.name "key" (default "password" $nats.userSecret.passwordKey)))) -}}
{{- else -}}
{{- if $nats.user -}}
{{- $env = append $env (dict "name" "NATS_USER" "value" $nats.user) -}}
{{- end -}}
{{- if $nats.password -}}
{{- $env = append $env (dict "name" "NATS_PASSWORD" "value" $nats.password) -}}
{{- end -}}
{{- end -}}
{{- if $V.agentComms.subjects -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_COMMS_SUBJECTS" "value" (join "," $V.agentComms.subjects)) -}}
{{- end -}}
{{- end -}}

{{- /* issue 13 item 2: the env of the 0.9.29 values keys */ -}}
{{- $env = concat $env (include "agents.env0929" (dict "root" $root "main" $main "runsControllers" $runsControllers) | fromJsonArray) -}}

{{- if not .managedOnly -}}
{{- /* User env: component vars win over env.vars, which win over chart-computed entries. */ -}}
{{- $componentVars := ternary $V.controlPlane.env.vars $V.controllers.env.vars $main | default dict -}}
{{- $forced := dict -}}
{{- if not $main -}}
{{- $forced = dict "JANGAR_MIGRATIONS" "skip" -}}
{{- end -}}
{{- $vars := merge (deepCopy $componentVars) $forced (deepCopy ($V.env.vars | default dict)) -}}
{{- /* 0.9.29 spells the migrations switch AGENTS_MIGRATIONS: the chart default JANGAR_MIGRATIONS=auto
     yields to it (a set JANGAR_* name would win over its AGENTS_* alias in jangar). */ -}}
{{- if and (hasKey $vars "AGENTS_MIGRATIONS") (eq (toString (get $vars "JANGAR_MIGRATIONS")) "auto") -}}
{{- $vars = omit $vars "JANGAR_MIGRATIONS" -}}
{{- end -}}
{{- range $k := keys $vars | sortAlpha -}}
{{- $env = append $env (dict "name" $k "value" (toString (get $vars $k))) -}}
{{- end -}}
{{- range $V.env.secrets -}}
{{- $env = append $env (dict "name" .name "valueFrom" (dict "secretKeyRef" (dict "name" .secretName "key" (default "value" .key)))) -}}
{{- end -}}
{{- range $V.env.config -}}
{{- $env = append $env (dict "name" .name "valueFrom" (dict "configMapKeyRef" (dict "name" .configMapName "key" (default .name .key)))) -}}
{{- end -}}
{{- range $V.env.extra -}}
{{- $env = append $env (dict "name" .name "value" (toString .value)) -}}
{{- end -}}
{{- end -}}

{{- /* Deduplicate: the last entry of a name wins, at the position of its first occurrence. */ -}}
{{- $byName := dict -}}
{{- $order := list -}}
{{- range $env -}}
{{- if not (hasKey $byName .name) -}}
{{- $order = append $order .name -}}
{{- end -}}
{{- $_ := set $byName .name . -}}
{{- end -}}
{{- $out := list -}}
{{- range $order -}}
{{- $out = append $out (get $byName .) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* envFrom of both Deployments; an entry is a name or {name, optional} (0.9.29). */}}
{{- define "agents.envFrom" -}}
{{- range .Values.envFromSecretRefs }}
{{- include "agents.envFromEntry" (dict "kind" "secretRef" "ref" .) }}
{{- end }}
{{- range .Values.envFromConfigMapRefs }}
{{- include "agents.envFromEntry" (dict "kind" "configMapRef" "ref" .) }}
{{- end }}
{{- end -}}

{{/* Volumes shared by both Deployments. */}}
{{- define "agents.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.database.caSecret.name }}
- name: db-ca-cert
  secret:
    secretName: {{ .Values.database.caSecret.name }}
    items:
      - key: {{ default "ca.crt" .Values.database.caSecret.key }}
        path: {{ default "ca.crt" .Values.database.caSecret.key }}
{{- end }}
{{- if .Values.controller.authSecret.name }}
- name: codex-home
  emptyDir: {}
- name: codex-auth
  secret:
    secretName: {{ .Values.controller.authSecret.name }}
    items:
      - key: {{ default "auth.json" .Values.controller.authSecret.key }}
        path: auth.json
{{- end }}
{{- range .Values.extraVolumes }}
- name: {{ .name }}
{{- toYaml .volume | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "agents.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.database.caSecret.name }}
- name: db-ca-cert
  mountPath: /etc/jangar/ca
  readOnly: true
{{- end }}
{{- if .Values.controller.authSecret.name }}
{{- $mount := default "/root/.codex" .Values.controller.authSecret.mountPath | trimSuffix "/" }}
- name: codex-home
  mountPath: {{ $mount }}
- name: codex-auth
  mountPath: {{ printf "%s/auth.json" $mount }}
  subPath: auth.json
  readOnly: true
{{- end }}
{{- range .Values.extraVolumeMounts }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
{{- if .subPath }}
  subPath: {{ .subPath }}
{{- end }}
{{- if .readOnly }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level fields shared by both Deployments. */}}
{{- define "agents.podSpecCommon" -}}
serviceAccountName: {{ include "agents.serviceAccountName" . }}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Namespaces that get the runner ServiceAccount: every explicitly watched namespace plus the release one. */}}
{{- define "agents.runnerNamespaces" -}}
{{- $all := list (include "agents.namespace" .) -}}
{{- range include "agents.watchedNamespaces" . | fromJsonArray -}}
{{- if ne . "*" -}}
{{- $all = append $all . -}}
{{- end -}}
{{- end -}}
{{- $all | uniq | sortAlpha | toJson -}}
{{- end -}}

{{- /* issue 12: "true" when the controller binds the runner ClusterRole in the namespaces it creates the
runner ServiceAccount in (all namespaces, cluster-scoped, runner SA and its RBAC created by the chart). */ -}}
{{- define "agents.runnerBinder" -}}
{{- $V := .Values -}}
{{- if and $V.rbac.clusterScoped (has "*" ($V.controller.namespaces | default list)) $V.runnerServiceAccount.create $V.runnerServiceAccount.rbac.create -}}
true
{{- end -}}
{{- end -}}
