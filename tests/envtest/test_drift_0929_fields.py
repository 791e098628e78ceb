"""Every field the 0.9.29 reference added to the CRDs (drift-0.9.29.md, "CRDs" and rows 3-12) round-trips
through jangar's CRDs on a real API server: a 0.9.29 manifest keeps what it says (before these fields
existed, the API server pruned them without a word: a `suspend` or a `goal` was simply lost).

Each row sets one field on the kind's valid sample and reads it back as stored. Status fields are written
through the status subresource. The rows name the field as the 0.9.29 documentation does; where the
reference's sub-field names are not known (the loop object), jangar's documented names are used.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.api import registry
from jangar.dev.cluster import LocalCluster
from tests.unit.api.samples import sample

Path = tuple[str | int, ...]

LOOP = {
    "maxIterations": 3,
    "condition": {"cel": "control.continue == true", "source": {"path": "/workspace/loop.json"}},
    "onMissingControl": "stop",
    "onInvalidControl": "fail",
    "historyLimit": 5,
    "stateVolumes": ["cache"],
}

SPEC_FIELDS: list[tuple[str, Path, Any]] = [
    # Agent (+6): system prompts and the intake policy
    ("Agent", ("spec", "defaults", "systemPrompt"), "You are a careful engineer."),
    (
        "Agent",
        ("spec", "defaults", "systemPromptRef"),
        {"kind": "ConfigMap", "name": "prompts", "key": "sys"},
    ),
    ("Agent", ("spec", "defaults", "systemPromptRef"), {"kind": "Secret", "name": "prompt-secret"}),
    ("Agent", ("spec", "security", "allowedImplementationSourceProviders"), ["github", "linear"]),
    # AgentRun (+47): goal, per-step timeouts, loops
    ("AgentRun", ("spec", "goal"), {"objective": "Ship the fix with tests", "tokenBudget": 200000}),
    ("AgentRun", ("spec", "workflow", "steps", 0, "timeoutSeconds"), 900),
    ("AgentRun", ("spec", "workflow", "steps", 0, "loop"), LOOP),
    ("AgentRun", ("spec", "workflow", "steps", 1, "loop"), {"maxIterations": 2}),
    # AgentProvider (+18): workload defaults, secretEnv, adapter, health
    ("AgentProvider", ("spec", "adapter"), "codex-app-server"),
    ("AgentProvider", ("spec", "health"), {"capacityFailurePolicy": "block"}),
    ("AgentProvider", ("spec", "health"), {"capacityFailurePolicy": "degrade"}),
    (
        "AgentProvider",
        ("spec", "secretEnv"),
        [{"name": "OPENAI_API_KEY", "secretKeyRef": {"name": "openai", "key": "apiKey"}}],
    ),
    (
        "AgentProvider",
        ("spec", "workload"),
        {
            "image": "registry.example/codex-runner:1.2.3",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
            "serviceAccountName": "codex-runner",
            "serviceAccountToken": {
                "audience": "vault",
                "expirationSeconds": 3600,
                "path": "/var/run/vault/token",
            },
        },
    ),
    # Orchestration: step timeouts and an AgentRun step's goal
    ("Orchestration", ("spec", "steps", 0, "timeoutSeconds"), 600),
    ("Orchestration", ("spec", "steps", 0, "goal"), {"objective": "Implement the issue"}),
    # Schedule: suspend
    ("Schedule", ("spec", "suspend"), True),
]

STATUS_FIELDS: list[tuple[str, dict[str, Any]]] = [
    (
        "AgentRun",
        {
            "phase": "Failed",
            "reason": "SpecImmutableViolation",
            "message": "spec.parameters changed after the run was accepted",
            "specHash": "a" * 64,
            "systemPromptHash": "b" * 64,
            "runner": {"exitCode": 0, "model": "gpt-5", "threadId": "thread-1", "artifacts": ["agent-log"]},
            "workflow": {
                "phase": "Running",
                "steps": [
                    {
                        "name": "plan",
                        "phase": "Running",
                        "loop": {
                            "iteration": 2,
                            "iterations": [
                                {"index": 1, "phase": "Succeeded", "attempt": 1},
                                {"index": 2, "phase": "Running", "attempt": 1},
                            ],
                            "stopReason": "ConditionFalse",
                            "pruned": 0,
                            "retained": 2,
                        },
                    }
                ],
            },
        },
    ),
]


def _set(obj: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        obj = obj.setdefault(key, {}) if isinstance(key, str) else obj[key]
    obj[path[-1]] = value


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _custom(api: k8s.ApiClient, kind: str) -> tuple[k8s.CustomObjectsApi, registry.KindInfo]:
    return k8s.CustomObjectsApi(api), registry.by_kind(kind)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    SPEC_FIELDS,
    ids=[f"{kind}:{'.'.join(map(str, path))}" for kind, path, _ in SPEC_FIELDS],
)
async def test_a_0929_spec_field_is_kept(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, kind: str, path: Path, value: Any
) -> None:
    manifest = sample(kind)
    _set(manifest, path, value)
    custom, info = _custom(kube_client, kind)
    created = await custom.create_namespaced_custom_object(
        info.group, info.version, namespace, info.plural, manifest
    )
    assert _get(created, path) == value, (
        f"{kind}: the API server pruned or changed {'.'.join(map(str, path))}"
    )
    # jangar's own model reads it back unchanged too (the controllers see what the user wrote)
    assert _get(registry.parse(created).to_k8s(), path) == value


@pytest.mark.parametrize(("kind", "status"), STATUS_FIELDS, ids=[k for k, _ in STATUS_FIELDS])
async def test_the_0929_status_fields_are_kept(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, kind: str, status: dict[str, Any]
) -> None:
    custom, info = _custom(kube_client, kind)
    manifest = sample(kind)
    name = manifest["metadata"]["name"]
    await custom.create_namespaced_custom_object(info.group, info.version, namespace, info.plural, manifest)
    await custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]  # runtime kwarg
        info.group,
        info.version,
        namespace,
        info.plural,
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )
    stored = await custom.get_namespaced_custom_object(info.group, info.version, namespace, info.plural, name)
    for key, value in status.items():
        assert stored["status"][key] == value, f"status.{key} was pruned or changed"


@pytest.mark.parametrize(
    ("field", "value"),
    [("systemPrompt", "Be brief."), ("systemPromptRef", {"kind": "ConfigMap", "name": "p"})],
)
async def test_a_run_level_system_prompt_is_refused_with_the_reason(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, field: str, value: Any
) -> None:
    """0.9.29's CEL rule: the prompt belongs to the Agent, the task text to the ImplementationSpec."""
    manifest = sample("AgentRun")
    manifest["spec"][field] = value
    custom, info = _custom(kube_client, "AgentRun")
    with pytest.raises(k8s.ApiException) as caught:
        await custom.create_namespaced_custom_object(
            info.group, info.version, namespace, info.plural, manifest
        )
    assert caught.value.status == 422
    assert "system prompt" in json.loads(caught.value.body or b"{}")["message"]
