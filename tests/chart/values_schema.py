"""Source of charts/agents/values.schema.json. Edit here, then run:
    .venv/bin/python -m tests.chart.values_schema > charts/agents/values.schema.json
tests/chart/test_chart_lint.py fails when the committed schema differs from this output."""

from __future__ import annotations

import json
from typing import Any


def obj(props, closed=True, desc=None, **kw):
    d = {"type": "object", "properties": props}
    if closed:
        d["additionalProperties"] = False
    if desc:
        d["description"] = desc
    d.update(kw)
    return d


S = {"type": "string"}
B = {"type": "boolean"}


def Imin(m, mx=None):
    d = {"type": "integer", "minimum": m}
    if mx is not None:
        d["maximum"] = mx
    return d


def Inull(m, mx=None):
    d = {"type": ["integer", "null"], "minimum": m}
    if mx is not None:
        d["maximum"] = mx
    return d


SMAP = {"type": "object", "additionalProperties": {"type": "string"}}
ANYOBJ = {"type": "object"}
SLIST = {"type": "array", "items": {"type": "string"}}
OLIST = {"type": "array", "items": {"type": "object"}}
NSLIST = {
    "type": "array",
    "items": {"type": "string", "pattern": "^([*]|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$"},
    "uniqueItems": True,
}
QMAP = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": 'Quantities must be strings, e.g. cpu: "1".',
}
RES = obj({"requests": QMAP, "limits": QMAP})
PULLPOLICY = {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]}
PULLPOLICY_OPT = {"type": "string", "enum": ["", "Always", "IfNotPresent", "Never"]}
SVCTYPE = {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
SECONDS = {"type": "number", "exclusiveMinimum": 0}
DIGEST = {"type": "string", "pattern": "^$|^[a-z0-9]+:[a-f0-9]{32,}$"}


def image(opt=False):
    return obj(
        {
            "repository": S,
            "tag": {"type": "string"},
            "digest": DIGEST,
            "pullPolicy": PULLPOLICY_OPT if opt else PULLPOLICY,
            "pullSecrets": SLIST,
        }
    )


def envvars():
    return obj(
        {
            "vars": {
                "type": "object",
                "additionalProperties": {"type": ["string"]},
                "description": "Plain env; values must be strings (quote numbers and booleans).",
            }
        }
    )


def probe() -> dict[str, Any]:
    return obj(
        {
            "enabled": B,
            "path": {"type": "string", "pattern": "^/"},
            "initialDelaySeconds": Imin(0),
            "periodSeconds": Imin(1),
            "timeoutSeconds": Imin(1),
            "failureThreshold": Imin(1),
        }
    )


INTSTR = {"type": ["integer", "string", "null"]}
TOKEN_TYPES = {"type": "string", "enum": ["pat", "fine_grained", "api_token", "access_token"]}


def ref() -> dict[str, Any]:
    return obj({"name": S, "key": S})


root = obj(
    {
        "nameOverride": S,
        "fullnameOverride": S,
        "namespaceOverride": S,
        "replicaCount": Imin(1),
        "autoscaling": obj(
            {
                "enabled": B,
                "minReplicas": Imin(1),
                "maxReplicas": Imin(1),
                "targetCPUUtilizationPercentage": Imin(1, 100),
                "targetMemoryUtilizationPercentage": Inull(1, 100),
            }
        ),
        "image": image(),
        "controlPlane": obj(
            {"image": image(True), "replicaCount": Inull(1), "resources": RES, "env": envvars()}
        ),
        "controllers": obj(
            {"enabled": B, "replicaCount": Imin(1), "image": image(True), "resources": RES, "env": envvars()}
        ),
        "runner": obj({"image": image()}),
        "serviceAccount": obj({"create": B, "name": S, "annotations": SMAP}),
        "runnerServiceAccount": obj(
            {
                "create": B,
                "name": S,
                "annotations": SMAP,
                "setAsDefault": B,
                "rbac": obj({"create": B, "extraRules": OLIST}),
            }
        ),
        "rbac": obj({"create": B, "clusterScoped": B, "extraRules": OLIST}),
        "leaderElection": obj(
            {
                "enabled": B,
                "leaseName": S,
                "leaseDurationSeconds": Imin(1),
                "renewDeadlineSeconds": Imin(1),
                "retryPeriodSeconds": Imin(1),
            }
        ),
        "service": obj({"type": SVCTYPE, "port": PORT, "annotations": SMAP, "labels": SMAP}),
        "grpc": obj(
            {
                "enabled": B,
                "port": PORT,
                "servicePort": PORT,
                "serviceType": {"type": "string", "enum": ["ClusterIP"]},
                "token": S,
                "tokenSecret": ref(),
            }
        ),
        "metrics": obj(
            {
                "enabled": B,
                # absolute, and not a path the probes or the API answer (settings._metrics_path)
                "path": {
                    "type": "string",
                    "pattern": "^/",
                    "not": {"pattern": "^/($|(health|ready|healthz|readyz|v1)(/|$))"},
                },
                "service": obj(
                    {"enabled": B, "type": SVCTYPE, "port": PORT, "annotations": SMAP, "labels": SMAP}
                ),
                "serviceMonitor": obj(
                    {
                        "enabled": B,
                        "namespace": S,
                        "interval": S,
                        "scrapeTimeout": S,
                        "honorLabels": B,
                        "labels": SMAP,
                        "annotations": SMAP,
                        "relabelings": OLIST,
                        "metricRelabelings": OLIST,
                    }
                ),
                "dashboards": obj({"enabled": B, "annotations": SMAP, "labels": SMAP}),
            }
        ),
        "resources": RES,
        "resourceQuota": obj(
            {
                "enabled": B,
                "name": S,
                "hard": SMAP,
                "scopes": SLIST,
                "scopeSelector": ANYOBJ,
                "annotations": SMAP,
                "labels": SMAP,
            }
        ),
        "limitRange": obj({"enabled": B, "name": S, "limits": OLIST, "annotations": SMAP, "labels": SMAP}),
        "podAnnotations": SMAP,
        "podLabels": SMAP,
        "securityContext": ANYOBJ,
        "containerSecurityContext": ANYOBJ,
        "nodeSelector": SMAP,
        "affinity": ANYOBJ,
        "tolerations": OLIST,
        "livenessProbe": probe(),
        "readinessProbe": probe(),
        "podDisruptionBudget": obj(
            {"enabled": B, "minAvailable": INTSTR, "maxUnavailable": INTSTR, "annotations": SMAP}
        ),
        "networkPolicy": obj(
            {
                "enabled": B,
                "policyTypes": {"type": "array", "items": {"type": "string", "enum": ["Ingress", "Egress"]}},
                "ingress": OLIST,
                "egress": OLIST,
                "annotations": SMAP,
            }
        ),
        "env": obj(
            {
                "vars": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Plain env; values must be strings (quote numbers and booleans).",
                },
                "extra": {"type": "array", "items": obj({"name": S, "value": S}, required=["name", "value"])},
                "secrets": {
                    "type": "array",
                    "items": obj({"name": S, "secretName": S, "key": S}, required=["name", "secretName"]),
                },
                "config": {
                    "type": "array",
                    "items": obj(
                        {"name": S, "configMapName": S, "key": S}, required=["name", "configMapName"]
                    ),
                },
            }
        ),
        "workflowRuntime": obj(
            {
                "native": obj(
                    {
                        "rerunOrchestration": S,
                        "rerunOrchestrationNamespace": S,
                        "systemImprovementOrchestration": S,
                        "systemImprovementOrchestrationNamespace": S,
                    }
                )
            }
        ),
        "runtime": obj(
            {"agentRunnerImage": S, "agentImage": S, "scheduleRunnerImage": S, "scheduleServiceAccount": S}
        ),
        "envFromSecretRefs": SLIST,
        "envFromConfigMapRefs": SLIST,
        "controller": obj(
            {
                "enabled": B,
                "namespaces": NSLIST,
                "concurrency": obj({"perNamespace": Imin(1), "perAgent": Imin(1), "cluster": Imin(1)}),
                "repoConcurrency": obj(
                    {
                        "enabled": B,
                        "default": Imin(0),
                        "overrides": {"type": "object", "additionalProperties": Imin(0)},
                    }
                ),
                "queue": obj({"perNamespace": Imin(0), "perRepo": Imin(0), "cluster": Imin(0)}),
                "rate": obj(
                    {
                        "windowSeconds": Imin(1),
                        "perNamespace": Imin(0),
                        "perRepo": Imin(0),
                        "cluster": Imin(0),
                    }
                ),
                "webhook": obj(
                    {
                        "queueSize": Imin(1),
                        "retry": obj(
                            {"baseDelaySeconds": Imin(0), "maxDelaySeconds": Imin(0), "maxAttempts": Imin(1)}
                        ),
                    }
                ),
                "workers": obj({"agentRun": Imin(1), "supporting": Imin(1)}),
                "reconcileTimeoutSeconds": SECONDS,
                "gracePeriods": obj(
                    {
                        "referenceSeconds": SECONDS,
                        "imagePullSeconds": SECONDS,
                        "schedulingSeconds": SECONDS,
                        "missingJobSeconds": SECONDS,
                    }
                ),
                "artifacts": obj({"maxPerRun": Inull(0, 1000), "defaultTtlDays": Inull(0)}),
                "agentRunRetentionSeconds": Imin(0),
                "logRetentionSeconds": Imin(0),
                "jobTtlSeconds": Inull(0),
                "jobTtlSecondsAfterFinished": Imin(0),
                "authSecret": obj(
                    {
                        "name": S,
                        "key": {"type": "string", "minLength": 1},
                        "mountPath": {"type": "string", "pattern": "^/"},
                    }
                ),
                "admissionPolicy": obj(
                    {
                        "labels": obj({"required": SLIST, "allowed": SLIST, "denied": SLIST}),
                        "images": obj({"allowed": SLIST, "denied": SLIST}),
                        "secrets": obj({"blocked": SLIST}),
                    }
                ),
                "vcsProviders": obj(
                    {
                        "enabled": B,
                        "deprecatedTokenTypes": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": TOKEN_TYPES},
                        },
                        "prRateLimits": {
                            "type": "object",
                            "additionalProperties": obj(
                                {"windowSeconds": Imin(1), "maxRequests": Imin(1), "backoffSeconds": Imin(0)}
                            ),
                        },
                    }
                ),
                "defaultWorkload": obj(
                    {
                        "serviceAccountName": S,
                        "nodeSelector": SMAP,
                        "tolerations": OLIST,
                        "affinity": ANYOBJ,
                        "topologySpreadConstraints": OLIST,
                        "podSecurityContext": ANYOBJ,
                        "imagePullSecrets": SLIST,
                        "priorityClassName": S,
                        "schedulerName": S,
                    }
                ),
            }
        ),
        "versionControlProvider": obj(
            {
                "enabled": B,
                "name": S,
                "namespace": S,
                "provider": {"type": "string", "enum": ["github", "gitlab", "bitbucket", "gitea", "generic"]},
                "apiBaseUrl": S,
                "cloneBaseUrl": S,
                "webBaseUrl": S,
                "cloneProtocol": {"type": "string", "enum": ["", "https", "ssh"]},
                "sshHost": S,
                "sshUser": S,
                "auth": obj(
                    {
                        "method": {"type": "string", "enum": ["", "token", "app", "ssh", "none"]},
                        "username": S,
                        "token": obj(
                            {
                                "secretRef": ref(),
                                "type": {
                                    "type": "string",
                                    "enum": ["", "pat", "fine_grained", "api_token", "access_token"],
                                },
                            }
                        ),
                        "app": obj(
                            {
                                "appId": {"type": ["string", "integer"]},
                                "installationId": {"type": ["string", "integer"]},
                                "privateKeySecretRef": ref(),
                                "tokenTtlSeconds": Imin(0),
                            }
                        ),
                        "ssh": obj({"privateKeySecretRef": ref(), "knownHostsConfigMapRef": ref()}),
                    }
                ),
                "repositoryPolicy": obj({"allow": SLIST, "deny": SLIST}),
                "capabilities": obj({"read": B, "write": B, "pullRequests": B}),
                "defaults": obj(
                    {
                        "baseBranch": S,
                        "branchTemplate": S,
                        "branchConflictSuffixTemplate": S,
                        "commitAuthorName": S,
                        "commitAuthorEmail": S,
                        "pullRequest": obj({"enabled": B, "draft": B, "titleTemplate": S, "bodyTemplate": S}),
                    }
                ),
            }
        ),
        "orchestrationController": obj({"enabled": B, "namespaces": NSLIST}),
        "supportingController": obj({"enabled": B, "namespaces": NSLIST}),
        "agentComms": obj(
            {
                "enabled": B,
                "subjects": SLIST,
                "nats": obj(
                    {
                        "url": S,
                        "user": S,
                        "password": S,
                        "userSecret": obj({"name": S, "usernameKey": S, "passwordKey": S}),
                    }
                ),
            }
        ),
        "database": obj(
            {
                "url": S,
                "secretRef": ref(),
                "createSecret": obj({"enabled": B, "name": S, "annotations": SMAP}),
                "caSecret": ref(),
            }
        ),
        "extraVolumes": {
            "type": "array",
            "items": obj({"name": S, "volume": ANYOBJ}, required=["name", "volume"]),
        },
        "extraVolumeMounts": {
            "type": "array",
            "items": obj(
                {"name": S, "mountPath": S, "subPath": S, "readOnly": B}, required=["name", "mountPath"]
            ),
        },
        "logging": obj({"level": {"type": "string", "enum": ["debug", "info", "warning", "warn", "error"]}}),
        "podSecurityAdmission": obj({"enabled": B, "createNamespace": B, "labels": SMAP}),
        "kubernetesApi": obj({"host": S, "port": {"type": "string", "pattern": "^$|^[0-9]+$"}}),
        "argocdHooks": obj(
            {
                "enabled": B,
                "serviceAccountName": S,
                "ttlSecondsAfterFinished": Imin(0),
                "syncWaves": obj({"preSync": S, "postSync": S}),
                "image": obj({"repository": S, "tag": S, "pullPolicy": PULLPOLICY}),
                "preSync": obj({"enabled": B}),
                "postSync": obj({"enabled": B, "waitTimeout": S, "cleanup": B}),
                "smoke": obj({"labelSelector": S, "agentRun": ANYOBJ}),
            }
        ),
        "tests": obj({"enabled": B, "image": obj({"repository": S, "tag": S, "pullPolicy": PULLPOLICY})}),
        "global": {"type": "object"},
    }
)


# --- issue 13 item 2: the 0.9.29 values keys jangar honours (docs/compatibility.md "values keys") -------------
# Names the reference's 0.9.29 chart uses literally (drift-0.9.29.md rows 11, 16, 18, 19, 22, 28, 30) are typed
# and closed. Sections whose sub-key names are Kubernetes/Helm-conventional guesses are typed for the keys
# jangar knows but stay open (TOLERANT), so a real 0.9.29 file with a sub-key jangar did not guess still
# renders. The add-ons jangar does not ship are open objects here; validation-0.9.29.yaml refuses them when on.


def tolerant(props, **kw):
    return obj(props, closed=False, **kw)


def component_probe() -> dict[str, Any]:
    """A per-component probe: jangar's probe keys merged over the top-level probe, or a raw Kubernetes
    probe (httpGet/exec/tcpSocket/grpc) rendered as given."""
    return tolerant(probe()["properties"])


STRATEGY = tolerant(
    {
        "type": {"type": "string", "enum": ["", "RollingUpdate", "Recreate"]},
        "rollingUpdate": tolerant({"maxSurge": INTSTR, "maxUnavailable": INTSTR}),
        "maxSurge": INTSTR,
        "maxUnavailable": INTSTR,
    }
)
LIFECYCLE = {"type": "object", "description": "A Kubernetes container lifecycle (postStart/preStop)."}
GRACE = Inull(0)
ADDON = {"type": "object", "description": "A 0.9.29 add-on jangar does not ship: only enabled=false renders."}
SECRET_OR_NAME = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        obj({"name": {"type": "string", "minLength": 1}, "optional": B}, required=["name"]),
    ]
}


def component_0929() -> dict[str, Any]:
    return {
        "startupProbe": component_probe(),
        "livenessProbe": component_probe(),
        "readinessProbe": component_probe(),
        "lifecycle": LIFECYCLE,
        "terminationGracePeriodSeconds": GRACE,
        "deploymentStrategy": STRATEGY,
        "strategy": STRATEGY,
    }


TOLERANT = [
    "deploymentStrategy",
    "deploymentStrategy.rollingUpdate",
    "deploymentLifecycle",
    "rolloutChecksums",
    "audit",
    "audit.sink",
    "tests",
    "tests.image",
]
for _component in ("controlPlane", "controllers"):
    for _key in ("startupProbe", "livenessProbe", "readinessProbe", "deploymentStrategy", "strategy"):
        TOLERANT.append(f"{_component}.{_key}")
    TOLERANT += [f"{_component}.deploymentStrategy.rollingUpdate", f"{_component}.strategy.rollingUpdate"]
TOLERANT += ["controllers.autoscaling", "controllers.podDisruptionBudget", "controllers.service"]

_P = root["properties"]
_P.update(
    {
        "startupProbe": probe(),
        "deploymentStrategy": STRATEGY,
        "deploymentLifecycle": tolerant(
            {
                "minReadySeconds": Inull(0),
                "progressDeadlineSeconds": Inull(1),
                "revisionHistoryLimit": Inull(0),
            }
        ),
        "lifecycle": LIFECYCLE,
        "terminationGracePeriodSeconds": GRACE,
        "rolloutChecksums": tolerant({"enabled": B, "secrets": SLIST, "configMaps": SLIST}),
        "imagePolicy": obj({"requireDigest": B}),
        "audit": tolerant(
            {
                "enabled": B,
                "sink": tolerant(
                    {
                        "type": {"type": "string", "enum": ["", "none", "stdout", "http"]},
                        "url": S,
                        "headers": SMAP,
                        "headersSecretRef": ref(),
                        "timeoutMs": Inull(1),
                    }
                ),
            }
        ),
        "cors": obj({"allowedOrigins": {"type": "array", "items": {"type": "string", "minLength": 1}}}),
        "agentRuntime": obj({"native": _P["workflowRuntime"]["properties"]["native"]}),
        "validation": obj({"reservedEnvKeysEnforced": B}),
        "agentsShell": ADDON,
        "linearMcpGateway": ADDON,
        "swarm": ADDON,
        "ui": ADDON,
        "envFromSecretRefs": {"type": "array", "items": SECRET_OR_NAME},
        "envFromConfigMapRefs": {"type": "array", "items": SECRET_OR_NAME},
    }
)
_P["leaderElection"]["properties"]["leaseNamespace"] = S
_P["grpc"]["properties"]["manageEnvVar"] = B
_P["argocdHooks"]["properties"]["image"]["properties"]["digest"] = DIGEST
_P["tests"] = tolerant(
    {
        "enabled": B,
        "image": tolerant({"repository": S, "tag": S, "digest": DIGEST, "pullPolicy": PULLPOLICY}),
        "resources": RES,
        "timeoutSeconds": Inull(1),
    }
)
_P["controlPlane"]["properties"].update({**component_0929(), "ui": ADDON})
_P["controllers"]["properties"].update(
    {
        **component_0929(),
        "autoscaling": tolerant(
            {
                "enabled": B,
                "minReplicas": Imin(1),
                "maxReplicas": Imin(1),
                "targetCPUUtilizationPercentage": Inull(1, 100),
                "targetMemoryUtilizationPercentage": Inull(1, 100),
            }
        ),
        "podDisruptionBudget": tolerant(
            {"enabled": B, "minAvailable": INTSTR, "maxUnavailable": INTSTR, "annotations": SMAP}
        ),
        "service": tolerant(
            {
                "enabled": B,
                "type": {"type": "string", "enum": ["ClusterIP"]},
                "port": PORT,
                "annotations": SMAP,
                "labels": SMAP,
            }
        ),
    }
)
_P["controller"]["properties"].update(
    {
        "leaderElection": obj(
            {
                "enabled": B,
                "leaseName": S,
                "leaseNamespace": S,
                "leaseDurationSeconds": Imin(1),
                "renewDeadlineSeconds": Imin(1),
                "retryPeriodSeconds": Imin(1),
            }
        ),
        "agentRunRetentionMaxDeletesPerNamespace": Inull(0),
        "agentRunRetentionZeroTtlMaxSeconds": Inull(0),
        "agentRunArtifacts": obj({"max": Inull(0), "strict": {"type": ["boolean", "null"]}}),
        "runtimeDebrisCleanup": obj(
            {
                "mode": {"type": "string", "enum": ["", "disabled", "report", "delete"]},
                "minAgeSeconds": Inull(0),
                "maxDeletesPerNamespace": Inull(0),
            }
        ),
    }
)
_P["controller"]["properties"]["defaultWorkload"]["properties"]["resources"] = RES


def ns_rule(path):
    # JSON Schema cannot carry a custom message; an impossible required property named after the problem makes
    # the validator print a sentence: "missing property '<message>'".
    message = (
        f"{path}.namespaces lists several namespaces or the wildcard *, which needs rbac.clusterScoped=true "
        f"(or list a single namespace)"
    )
    return {
        "if": {
            "properties": {
                path: {
                    "properties": {"namespaces": {"anyOf": [{"minItems": 2}, {"contains": {"const": "*"}}]}},
                    "required": ["namespaces"],
                },
                "rbac": {
                    "not": {"properties": {"clusterScoped": {"const": True}}, "required": ["clusterScoped"]}
                },
            },
            "required": [path],
        },
        "then": {"required": [message]},
    }


root["$schema"] = "http://json-schema.org/draft-07/schema#"
root["title"] = "agents chart values"
root["allOf"] = [ns_rule(p) for p in ("controller", "orchestrationController", "supportingController")]
out = {"$schema": root.pop("$schema"), "title": root.pop("title")}
out.update(root)
SCHEMA = out


def render() -> str:
    return json.dumps(SCHEMA, indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
