{{- /*
issue 13 item 2: the 0.9.29 values keys jangar honours (docs/compatibility.md "values keys"). Each helper
resolves a 0.9.29 key together with its 0.9.1 twin, so the templates read one effective value; the conflicts
they cannot resolve fail in validation-0.9.29.yaml, naming both keys.
*/ -}}

{{- /* The chart defaults of leaderElection.* (values.yaml): a top-level key still at its default yields to
controller.leaderElection; a top-level key changed by the user and a different controller.leaderElection
value is a conflict (agents.leaderElectionConflicts). */ -}}
{{- define "agents.leaderElectionDefaults" -}}
{{- dict "enabled" true "leaseName" "" "leaseNamespace" "" "leaseDurationSeconds" 15 "renewDeadlineSeconds" 10 "retryPeriodSeconds" 2 | toJson -}}
{{- end -}}

{{/* Effective leader election (JSON): leaderElection.* with the keys set in controller.leaderElection. */}}
{{- define "agents.leaderElection" -}}
{{- $top := .Values.leaderElection | default dict -}}
{{- $alias := .Values.controller.leaderElection | default dict -}}
{{- $out := deepCopy $top -}}
{{- range $k, $v := $alias -}}
{{- if not (or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v ""))) -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/* "leaderElection.X (a) and controller.leaderElection.X (b)" for every key set differently in both. */}}
{{- define "agents.leaderElectionConflicts" -}}
{{- $defaults := include "agents.leaderElectionDefaults" . | fromJson -}}
{{- $top := .Values.leaderElection | default dict -}}
{{- $alias := .Values.controller.leaderElection | default dict -}}
{{- $out := list -}}
{{- range $k := keys $alias | sortAlpha -}}
{{- $v := get $alias $k -}}
{{- $t := get $top $k -}}
{{- $set := not (or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v ""))) -}}
{{- $topChanged := and (hasKey $top $k) (ne (toJson $t) (toJson (get $defaults $k))) -}}
{{- if and $set $topChanged (ne (toJson $t) (toJson $v)) -}}
{{- $out = append $out (printf "leaderElection.%s (%v) and controller.leaderElection.%s (%v) are both set to different values: keep one (controller.leaderElection is the 0.9.29 name)" $k $t $k $v) -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{- define "agents.leaseNamespace" -}}
{{- $le := include "agents.leaderElection" . | fromJson -}}
{{- default (include "agents.namespace" .) $le.leaseNamespace -}}
{{- end -}}

{{/* Effective native runtime (JSON): workflowRuntime.native with agentRuntime.native (0.9.29) filling in. */}}
{{- define "agents.nativeRuntime" -}}
{{- $old := (.Values.workflowRuntime | default dict).native | default dict -}}
{{- $new := (.Values.agentRuntime | default dict).native | default dict -}}
{{- $out := dict -}}
{{- range $k := list "rerunOrchestration" "rerunOrchestrationNamespace" "systemImprovementOrchestration" "systemImprovementOrchestrationNamespace" -}}
{{- $_ := set $out $k (default (get $new $k | default "") (get $old $k)) -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/*
A component's effective value of a 0.9.29 rollout key (JSON {"set": bool, "value": v}): controlPlane.<key> /
controllers.<key> when set, else the top-level <key>. Arguments: root, component ("main"|"controllers"), key.
*/}}
{{- define "agents.componentValue" -}}
{{- $V := .root.Values -}}
{{- $c := ternary $V.controlPlane $V.controllers (eq .component "main") -}}
{{- $own := include "agents.setValue" (dict "map" $c "key" .key) | fromJson -}}
{{- if and (eq .key "deploymentStrategy") (not $own.set) -}}
{{- $own = include "agents.setValue" (dict "map" $c "key" "strategy") | fromJson -}}
{{- end -}}
{{- if not $own.set -}}
{{- $own = include "agents.setValue" (dict "map" $V "key" .key) | fromJson -}}
{{- end -}}
{{- $own | toJson -}}
{{- end -}}

{{/* {"set": bool, "value": v}: the key is present and neither null, "" nor {} (helm drops null keys, and
`get` answers "" for a missing one). */}}
{{- define "agents.setValue" -}}
{{- $v := "" -}}
{{- $set := false -}}
{{- if hasKey .map .key -}}
{{- $v = get .map .key -}}
{{- $set = not (or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v "")) (and (kindIs "map" $v) (not $v))) -}}
{{- end -}}
{{- dict "set" $set "value" $v | toJson -}}
{{- end -}}

{{/* Deployment-spec fields: strategy, minReadySeconds, progressDeadlineSeconds, revisionHistoryLimit. */}}
{{- define "agents.deploymentRollout" -}}
{{- $s := (include "agents.componentValue" (dict "root" .root "component" .component "key" "deploymentStrategy") | fromJson).value -}}
{{- if kindIs "map" $s }}
{{- /* rollingUpdate settings without a type mean RollingUpdate (the Kubernetes default type) */}}
{{- $type := $s.type | default (ternary "RollingUpdate" "" (or (hasKey $s "rollingUpdate") (hasKey $s "maxSurge") (hasKey $s "maxUnavailable"))) }}
{{- if $type }}
strategy:
  type: {{ $type }}
  {{- if eq $type "RollingUpdate" }}
  {{- $ru := $s.rollingUpdate | default dict }}
  {{- $surge := ternary $ru.maxSurge $s.maxSurge (hasKey $ru "maxSurge") }}
  {{- $unavail := ternary $ru.maxUnavailable $s.maxUnavailable (hasKey $ru "maxUnavailable") }}
  {{- if or (not (kindIs "invalid" $surge)) (not (kindIs "invalid" $unavail)) }}
  rollingUpdate:
    {{- if not (kindIs "invalid" $surge) }}
    maxSurge: {{ $surge }}
    {{- end }}
    {{- if not (kindIs "invalid" $unavail) }}
    maxUnavailable: {{ $unavail }}
    {{- end }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}
{{- $dl := .root.Values.deploymentLifecycle | default dict }}
{{- range $k := list "minReadySeconds" "progressDeadlineSeconds" "revisionHistoryLimit" }}
{{- $v := include "agents.setValue" (dict "map" $dl "key" $k) | fromJson }}
{{- if $v.set }}
{{ $k }}: {{ include "agents.int" $v.value }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-spec terminationGracePeriodSeconds of a component (nothing when unset). */}}
{{- define "agents.terminationGrace" -}}
{{- $g := include "agents.componentValue" (dict "root" .root "component" .component "key" "terminationGracePeriodSeconds") | fromJson -}}
{{- if $g.set }}
terminationGracePeriodSeconds: {{ include "agents.int" $g.value }}
{{- end }}
{{- end -}}

{{/* Container lifecycle of a component (nothing when unset). */}}
{{- define "agents.lifecycle" -}}
{{- $l := include "agents.componentValue" (dict "root" .root "component" .component "key" "lifecycle") | fromJson -}}
{{- if $l.set }}
lifecycle:
  {{- toYaml $l.value | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The probes of a component, on the named http port: for each of startupProbe, livenessProbe, readinessProbe,
a raw Kubernetes probe given under controlPlane/controllers (it has httpGet, exec, tcpSocket or grpc) is used
as given; otherwise the component's keys are merged over the top-level probe and rendered when enabled.
*/}}
{{- define "agents.probesFor" -}}
{{- $V := .root.Values -}}
{{- $c := ternary $V.controlPlane $V.controllers (eq .component "main") -}}
{{- range $kind := list "livenessProbe" "readinessProbe" "startupProbe" }}
{{- $own := get $c $kind | default dict }}
{{- $top := get $V $kind | default dict }}
{{- if or (hasKey $own "httpGet") (hasKey $own "exec") (hasKey $own "tcpSocket") (hasKey $own "grpc") }}
{{- if ne (toString (get $own "enabled")) "false" }}
{{ $kind }}:
  {{- toYaml (omit $own "enabled") | nindent 2 }}
{{- end }}
{{- else }}
{{- $p := mergeOverwrite (deepCopy $top) $own }}
{{- if $p.enabled }}
{{ $kind }}:
  httpGet:
    path: {{ $p.path }}
    port: http
  initialDelaySeconds: {{ $p.initialDelaySeconds }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
rolloutChecksums: checksum/secret-<name> and checksum/configmap-<name> pod annotations. The value is the
sha256 of the object's data read with lookup, "" when it does not exist (or under `helm template`, where
lookup returns nothing), so a changed Secret rolls the pods on the next upgrade.
*/}}
{{- define "agents.rolloutChecksums" -}}
{{- $rc := .Values.rolloutChecksums | default dict -}}
{{- if $rc.enabled -}}
{{- $ns := include "agents.namespace" . -}}
{{- range $name := $rc.secrets | default list | uniq | sortAlpha }}
{{- $obj := lookup "v1" "Secret" $ns $name }}
checksum/secret-{{ $name }}: {{ ternary "" (toJson ($obj.data | default dict) | sha256sum) (empty $obj) | quote }}
{{- end }}
{{- range $name := $rc.configMaps | default list | uniq | sortAlpha }}
{{- $obj := lookup "v1" "ConfigMap" $ns $name }}
checksum/configmap-{{ $name }}: {{ ternary "" (toJson (dict "data" ($obj.data | default dict) "binaryData" ($obj.binaryData | default dict)) | sha256sum) (empty $obj) | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The pod annotations of both Deployments: podAnnotations plus the rollout checksums. */}}
{{- define "agents.podAnnotations" -}}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- include "agents.rolloutChecksums" . }}
{{- end -}}

{{/* The name of an envFrom entry: a string, or {name, optional} (0.9.29). */}}
{{- define "agents.envFromEntry" -}}
{{- if kindIs "string" .ref }}
- {{ .kind }}:
    name: {{ .ref }}
{{- else }}
- {{ .kind }}:
    name: {{ .ref.name }}
    {{- if not (kindIs "invalid" .ref.optional) }}
    optional: {{ .ref.optional }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
The env the 0.9.29 keys add (a JSON list of env entries, appended by agents.env before the user env).
Arguments: root, main (bool), runsControllers (bool). Only what is set is rendered (null / empty leaves
jangar's default).
*/}}
{{- define "agents.env0929" -}}
{{- $V := .root.Values -}}
{{- $c := $V.controller -}}
{{- $env := list -}}
{{- with ($c.defaultWorkload | default dict).resources -}}
{{- $env = append $env (dict "name" "JANGAR_AGENT_RUNNER_RESOURCES" "value" (toJson .)) -}}
{{- end -}}
{{- if .runsControllers -}}
{{- $art := $c.agentRunArtifacts | default dict -}}
{{- $dc := $c.runtimeDebrisCleanup | default dict -}}
{{- range $pair := list (list "JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE" $c.agentRunRetentionMaxDeletesPerNamespace) (list "JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS" $c.agentRunRetentionZeroTtlMaxSeconds) (list "JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS" $dc.minAgeSeconds) (list "JANGAR_RUNTIME_DEBRIS_CLEANUP_MAX_DELETES_PER_NAMESPACE" $dc.maxDeletesPerNamespace) -}}
{{- if not (kindIs "invalid" (index $pair 1)) -}}
{{- $env = append $env (dict "name" (index $pair 0) "value" (include "agents.int" (index $pair 1))) -}}
{{- end -}}
{{- end -}}
{{- if not (kindIs "invalid" $art.strict) -}}
{{- $env = append $env (dict "name" "JANGAR_AGENTRUN_ARTIFACTS_STRICT" "value" (include "agents.bool" $art.strict)) -}}
{{- end -}}
{{- if $dc.mode -}}
{{- $env = append $env (dict "name" "JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE" "value" $dc.mode) -}}
{{- end -}}
{{- end -}}
{{- $sink := ($V.audit | default dict).sink | default dict -}}
{{- if $sink.type -}}
{{- $env = append $env (dict "name" "JANGAR_AUDIT_SINK_TYPE" "value" $sink.type) -}}
{{- end -}}
{{- if $sink.url -}}
{{- $env = append $env (dict "name" "JANGAR_AUDIT_SINK_URL" "value" $sink.url) -}}
{{- end -}}
{{- $hs := $sink.headersSecretRef | default dict -}}
{{- if $hs.name -}}
{{- $env = append $env (dict "name" "JANGAR_AUDIT_SINK_HEADERS" "valueFrom" (dict "secretKeyRef" (dict "name" $hs.name "key" (default "headers" $hs.key)))) -}}
{{- else if $sink.headers -}}
{{- $env = append $env (dict "name" "JANGAR_AUDIT_SINK_HEADERS" "value" (toJson $sink.headers)) -}}
{{- end -}}
{{- if not (kindIs "invalid" $sink.timeoutMs) -}}
{{- $env = append $env (dict "name" "JANGAR_AUDIT_SINK_TIMEOUT_MS" "value" (include "agents.int" $sink.timeoutMs)) -}}
{{- end -}}
{{- $origins := ($V.cors | default dict).allowedOrigins | default list -}}
{{- if and .main $origins -}}
{{- $env = append $env (dict "name" "JANGAR_CORS_ALLOWED_ORIGINS" "value" (join "," $origins)) -}}
{{- end -}}
{{- $env | toJson -}}
{{- end -}}

{{/* "true" when the controllers Deployment serves gRPC behind <fullname>-controllers-grpc (0.9.29). */}}
{{- define "agents.controllersGrpc" -}}
{{- if and .Values.controllers.enabled (.Values.controllers.service | default dict).enabled -}}
true
{{- end -}}
{{- end -}}
