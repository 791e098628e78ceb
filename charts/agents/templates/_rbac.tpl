{{/*
The rules the jangar controllers and API server use. Every CRD kind is managed in full (the REST/gRPC API
applies and deletes every primitive kind), with its status and finalizers subresources.
*/}}
{{- define "agents.crdResources" -}}
agents.proompteng.ai: [agents, agentruns, agentproviders, implementationspecs, implementationsources, versioncontrolproviders, memories]
orchestration.proompteng.ai: [orchestrations, orchestrationruns]
tools.proompteng.ai: [tools, toolruns]
signals.proompteng.ai: [signals, signaldeliveries]
schedules.proompteng.ai: [schedules]
artifacts.proompteng.ai: [artifacts]
workspaces.proompteng.ai: [workspaces]
approvals.proompteng.ai: [approvalpolicies]
budgets.proompteng.ai: [budgets]
security.proompteng.ai: [secretbindings]
{{- end -}}

{{- define "agents.controllerRules" -}}
{{- $groups := include "agents.crdResources" . | fromYaml -}}
{{- range $group := keys $groups | sortAlpha }}
{{- $resources := get $groups $group }}
- apiGroups: [{{ $group | quote }}]
  resources: {{ toJson $resources }}
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [{{ $group | quote }}]
  resources:
    {{- range $resources }}
    - {{ . }}/status
    - {{ . }}/finalizers
    {{- end }}
  verbs: [get, update, patch]
{{- end }}
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [batch]
  resources: [jobs/status, cronjobs/status]
  verbs: [get]
- apiGroups: [""]
  resources: [persistentvolumeclaims, configmaps]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [serviceaccounts]
  {{- if .Values.runnerServiceAccount.create }}
  verbs: [get, list, watch, create]
  {{- else }}
  verbs: [get, list, watch]
  {{- end }}
- apiGroups: [""]
  resources: [events]
  verbs: [get, list, watch, create, update, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [get, list, watch, create, update, patch]
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "agents.runnerRules" -}}
- apiGroups: [""]
  resources: [pods, pods/log, configmaps, events]
  verbs: [get, list, watch]
{{- with .Values.runnerServiceAccount.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end -}}


{{/*
GitHub App installation tokens are minted into a `<run>-vcs-token` Secret owned by the run (never into Job
env); garbage collection deletes it with the run, so there is no delete verb. Granted only in the watched
namespaces, and only with VCS providers on.
*/}}
{{- define "agents.secretWriteRules" -}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, patch]
{{- end -}}
