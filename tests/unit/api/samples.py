"""One valid manifest per kind (spec only), shared by the unit tests and the envtest CRD test.

Each exercises the fields most likely to go wrong: enums, int-or-string, free-form objects, inline
implementations, workflow steps, list-map keys.
"""

from __future__ import annotations

import copy
from typing import Any

A = "agents.proompteng.ai/v1alpha1"

_SAMPLES: dict[str, dict[str, Any]] = {
    "Agent": {
        "apiVersion": A,
        "kind": "Agent",
        "metadata": {"name": "codex-agent"},
        "spec": {
            "providerRef": {"name": "codex-runner"},
            "memoryRef": {"name": "default-memory"},
            "config": {"model": "gpt-5", "nested": {"temperature": 0.2, "tags": ["a", 1]}},
            "env": [{"name": "CODEX_MODE", "value": "autonomous"}],
            "defaults": {"timeoutSeconds": 3600, "retryLimit": 1},
            "security": {"allowedSecrets": ["github-token"], "allowedServiceAccounts": ["runner"]},
        },
    },
    "AgentProvider": {
        "apiVersion": A,
        "kind": "AgentProvider",
        "metadata": {"name": "codex-runner"},
        "spec": {
            "binary": "/usr/local/bin/agent-runner",
            "argsTemplate": ["--stage", "{{inputs.stage}}"],
            "envTemplate": {"CODEX_LOG_LEVEL": "info"},
            "inputFiles": [{"path": "/workspace/implementation.txt", "content": "{{implementation.text}}"}],
            "outputArtifacts": [{"name": "agent-log", "path": "/workspace/.agent/runner.log"}],
        },
    },
    "AgentRun": {
        "apiVersion": A,
        "kind": "AgentRun",
        "metadata": {"name": "codex-run-sample"},
        "spec": {
            "agentRef": {"name": "codex-agent"},
            "implementationSpecRef": {"name": "codex-impl-sample"},
            "memoryRef": {"name": "default-memory"},
            "runtime": {
                "type": "workflow",
                "config": {"ttlSecondsAfterFinished": 600, "nodeSelector": {"a": "b"}},
            },
            "parameters": {"repository": "proompteng/lab", "issueNumber": "1"},
            "secrets": ["codex-github-token"],
            "vcsRef": {"name": "github"},
            "vcsPolicy": {"required": True, "mode": "read-write"},
            "workload": {
                "image": "busybox:1.36",
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": 1}},
                "volumes": [
                    {"type": "emptyDir", "name": "scratch", "mountPath": "/scratch", "sizeLimit": "1Gi"},
                    {"type": "pvc", "name": "cache", "mountPath": "/cache", "claimName": "cache"},
                ],
            },
            "workflow": {
                "steps": [
                    {
                        "name": "plan",
                        "parameters": {"stage": "plan"},
                        "retries": 1,
                        "retryBackoffSeconds": 30,
                    },
                    {
                        "name": "implement",
                        "implementation": {"inline": {"text": "Do it.", "summary": "Implement"}},
                        "workload": {"image": "busybox:1.36"},
                    },
                ]
            },
            "idempotencyKey": "key-1",
            "ttlSecondsAfterFinished": 0,
        },
    },
    "ImplementationSpec": {
        "apiVersion": A,
        "kind": "ImplementationSpec",
        "metadata": {"name": "codex-impl-sample"},
        "spec": {
            "source": {
                "provider": "manual",
                "externalId": "proompteng/lab#1",
                "url": "https://example.test/1",
            },
            "contract": {
                "requiredKeys": ["repository", "issueNumber"],
                "mappings": [{"from": "linearRepo", "to": "repository"}],
            },
            "summary": "Sample",
            "text": "Implement the sample.\nWith two lines.",
            "acceptanceCriteria": ["tests pass"],
            "labels": ["codex"],
            "vcsRef": {"name": "github"},
        },
    },
    "ImplementationSource": {
        "apiVersion": A,
        "kind": "ImplementationSource",
        "metadata": {"name": "github-issues"},
        "spec": {
            "provider": "github",
            "auth": {"secretRef": {"name": "github-token", "key": "token"}},
            "webhook": {"enabled": True},
            "scope": {"repository": "proompteng/lab", "labels": ["codex"]},
            "mapping": {"title": "summary"},
        },
    },
    "VersionControlProvider": {
        "apiVersion": A,
        "kind": "VersionControlProvider",
        "metadata": {"name": "github-app"},
        "spec": {
            "provider": "github",
            "apiBaseUrl": "https://api.github.com",
            "cloneBaseUrl": "https://github.com",
            "webBaseUrl": "https://github.com",
            "cloneProtocol": "https",
            "auth": {
                "method": "app",
                "app": {
                    "appId": "12345",
                    "installationId": 67890,
                    "privateKeySecretRef": {"name": "codex-github-app-key", "key": "privateKey"},
                    "tokenTtlSeconds": 1800,
                },
            },
            "repositoryPolicy": {"allow": ["proompteng/*"], "deny": ["proompteng/secret-*"]},
            "capabilities": {"read": True, "write": True, "pullRequests": True},
            "defaults": {
                "baseBranch": "main",
                "branchTemplate": "codex/{{issueNumber}}",
                "branchConflictSuffixTemplate": "-{{agentRun.name}}",
                "commitAuthorName": "codex",
                "commitAuthorEmail": "codex@example.test",
                "pullRequest": {"enabled": True, "draft": False, "titleTemplate": "t", "bodyTemplate": "b"},
            },
        },
    },
    "Memory": {
        "apiVersion": A,
        "kind": "Memory",
        "metadata": {"name": "default-memory"},
        "spec": {
            "type": "postgres",
            "connection": {"secretRef": {"name": "memory-postgres", "key": "url"}},
            "capabilities": ["vector"],
            "default": True,
        },
    },
    "Orchestration": {
        "apiVersion": "orchestration.proompteng.ai/v1alpha1",
        "kind": "Orchestration",
        "metadata": {"name": "sample-orchestration"},
        "spec": {
            "entrypoint": "main",
            "steps": [
                {
                    "name": "implement",
                    "kind": "AgentRun",
                    "agentRef": {"name": "codex-agent"},
                    "implementationSpecRef": {"name": "codex-impl-sample"},
                    "with": {"repository": "proompteng/lab"},
                },
                {
                    "name": "notify",
                    "kind": "ToolRun",
                    "dependsOn": ["implement"],
                    "toolRef": {"name": "echo-tool"},
                    "with": {"message": "done"},
                    "retries": 2,
                },
            ],
            "policies": {"anything": {"goes": True}},
        },
    },
    "OrchestrationRun": {
        "apiVersion": "orchestration.proompteng.ai/v1alpha1",
        "kind": "OrchestrationRun",
        "metadata": {"name": "sample-orchestration-run"},
        "spec": {
            "orchestrationRef": {"name": "sample-orchestration"},
            "parameters": {"message": "hello"},
            "deliveryId": "delivery-1",
        },
    },
    "Tool": {
        "apiVersion": "tools.proompteng.ai/v1alpha1",
        "kind": "Tool",
        "metadata": {"name": "echo-tool"},
        "spec": {
            "image": "alpine:3.20",
            "command": ["/bin/sh", "-c"],
            "args": ["echo {{parameters.message}}"],
            "env": [{"name": "A", "value": "b"}],
            "serviceAccount": "runner",
            "workingDir": "/work",
            "timeoutSeconds": 60,
            "ttlSecondsAfterFinished": 300,
        },
    },
    "ToolRun": {
        "apiVersion": "tools.proompteng.ai/v1alpha1",
        "kind": "ToolRun",
        "metadata": {"name": "lint-run"},
        "spec": {"toolRef": {"name": "echo-tool"}, "parameters": {"path": "."}, "runtime": {"x": {"y": 1}}},
    },
    "Signal": {
        "apiVersion": "signals.proompteng.ai/v1alpha1",
        "kind": "Signal",
        "metadata": {"name": "human-approval"},
        "spec": {"channel": "slack", "description": "Approve", "payload": {"a": [1, 2]}, "extraKey": "kept"},
    },
    "SignalDelivery": {
        "apiVersion": "signals.proompteng.ai/v1alpha1",
        "kind": "SignalDelivery",
        "metadata": {"name": "approval-1"},
        "spec": {
            "signalRef": {"name": "human-approval"},
            "deliveryId": "delivery-001",
            "payload": {"approved": True},
        },
    },
    "Schedule": {
        "apiVersion": "schedules.proompteng.ai/v1alpha1",
        "kind": "Schedule",
        "metadata": {"name": "nightly-impl"},
        "spec": {
            "cron": "0 2 * * *",
            "timezone": "UTC",
            "targetRef": {"kind": "AgentRun", "name": "codex-run-sample"},
        },
    },
    "Artifact": {
        "apiVersion": "artifacts.proompteng.ai/v1alpha1",
        "kind": "Artifact",
        "metadata": {"name": "run-logs"},
        "spec": {"storageRef": {"name": "default-storage"}, "lifecycle": {"ttlDays": 7}},
    },
    "Workspace": {
        "apiVersion": "workspaces.proompteng.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "shared-workspace"},
        "spec": {
            "storageClassName": "standard",
            "size": "10Gi",
            "accessModes": ["ReadWriteOnce"],
            "ttlSeconds": 86400,
        },
    },
    "ApprovalPolicy": {
        "apiVersion": "approvals.proompteng.ai/v1alpha1",
        "kind": "ApprovalPolicy",
        "metadata": {"name": "default-approval"},
        "spec": {
            "mode": "manual",
            "defaultDecision": "deny",
            "subjects": [{"kind": "Orchestration", "name": "codex-autonomous"}],
        },
    },
    "Budget": {
        "apiVersion": "budgets.proompteng.ai/v1alpha1",
        "kind": "Budget",
        "metadata": {"name": "default-budget"},
        "spec": {
            "limits": {"tokens": "100000", "dollars": "50", "cpu": "8", "memory": "16Gi", "custom": "1"}
        },
    },
    "SecretBinding": {
        "apiVersion": "security.proompteng.ai/v1alpha1",
        "kind": "SecretBinding",
        "metadata": {"name": "codex-secrets"},
        "spec": {
            "subjects": [{"kind": "Agent", "name": "codex-agent", "namespace": "agents"}],
            "allowedSecrets": ["github-token"],
        },
    },
}


def sample(kind: str) -> dict[str, Any]:
    """A fresh deep copy of the sample manifest of `kind`, safe to mutate."""
    return copy.deepcopy(_SAMPLES[kind])


def kinds() -> list[str]:
    return sorted(_SAMPLES)


def agentrun_status() -> dict[str, Any]:
    """A status with every field the controller writes, including the ones the reference lost."""
    return {
        "phase": "Running",
        "observedGeneration": 1,
        "updatedAt": "2026-01-01T00:00:05Z",
        "startedAt": "2026-01-01T00:00:00Z",
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Submitted",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            },
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "Running",
                "message": "step plan is running",
                "lastTransitionTime": "2026-01-01T00:00:01Z",
            },
        ],
        "runtimeRef": {"type": "workflow", "name": "codex-run-sample-step-1-attempt-1", "jobObservedAt": "x"},
        "jobRef": {"name": "codex-run-sample-step-1-attempt-1", "namespace": "agents", "uid": "u-1"},
        "vcs": {
            "provider": "github",
            "repository": "proompteng/lab",
            "baseBranch": "main",
            "headBranch": "codex/1",
            "mode": "read-write",
            "writeEnabled": True,
            "pullRequestsEnabled": False,
        },
        "contract": {"requiredKeys": ["repository"], "missingKeys": []},
        "artifacts": [{"name": "agent-log", "path": "/workspace/.agent/runner.log"}],
        "workflow": {
            "phase": "Running",
            "lastTransitionTime": "2026-01-01T00:00:01Z",
            "steps": [
                {
                    "name": "plan",
                    "phase": "Retrying",
                    "reason": "JobFailed",
                    "message": "attempt 1 failed",
                    "attempt": 1,
                    "startedAt": "2026-01-01T00:00:01Z",
                    "finishedAt": "2026-01-01T00:00:03Z",
                    "lastTransitionTime": "2026-01-01T00:00:03Z",
                    "nextRetryAt": "2026-01-01T00:00:33.250000Z",
                    "jobRef": {
                        "name": "codex-run-sample-step-1-attempt-1",
                        "namespace": "agents",
                        "uid": "u-1",
                    },
                    "jobObservedAt": "2026-01-01T00:00:02Z",
                }
            ],
        },
        "queue": {
            "position": 3,
            "scope": "namespace",
            "key": "agents",
            "limit": 10,
            "enqueuedAt": "2026-01-01T00:00:00Z",
            "admittedAt": "2026-01-01T00:00:01Z",
        },
    }
