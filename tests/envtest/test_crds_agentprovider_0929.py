"""The 18 AgentProvider paths chart 0.9.29 added (drift-0.9.29.md row 9) round-trip through the generated CRD
on a real API server, with strict field validation (a dropped field would be an error, not a silent loss);
a 0.9.1 provider is accepted unchanged; an unknown capacityFailurePolicy is refused by the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.api import registry
from jangar.dev.cluster import LocalCluster

#: drift-0.9.29.md, AgentProvider "+18": every new property path of the CRD
NEW_PATHS = (
    "adapter",
    "health",
    "health.capacityFailurePolicy",
    "secretEnv",
    "secretEnv[].name",
    "secretEnv[].secretKeyRef",
    "secretEnv[].secretKeyRef.name",
    "secretEnv[].secretKeyRef.key",
    "workload",
    "workload.image",
    "workload.resources",
    "workload.resources.requests",
    "workload.resources.limits",
    "workload.serviceAccountName",
    "workload.serviceAccountToken",
    "workload.serviceAccountToken.audience",
    "workload.serviceAccountToken.expirationSeconds",
    "workload.serviceAccountToken.path",
)

PROVIDER_0929: dict[str, Any] = {
    "apiVersion": "agents.proompteng.ai/v1alpha1",
    "kind": "AgentProvider",
    "metadata": {"name": "codex-app-server"},
    "spec": {
        "binary": "/usr/local/bin/codex-app-server-runner",
        "adapter": "codex-app-server",
        "health": {"capacityFailurePolicy": "block"},
        "secretEnv": [
            {"name": "OPENAI_API_KEY", "secretKeyRef": {"name": "openai", "key": "api-key"}},
        ],
        "workload": {
            "image": "ghcr.io/proompteng/agents-codex-runner:0.9.29",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
            "serviceAccountName": "codex-runner",
            "serviceAccountToken": {
                "audience": "vault",
                "expirationSeconds": 3600,
                "path": "/var/run/secrets/agents/token",
            },
        },
    },
}

PROVIDER_091: dict[str, Any] = {
    "apiVersion": "agents.proompteng.ai/v1alpha1",
    "kind": "AgentProvider",
    "metadata": {"name": "codex-091"},
    "spec": {
        "binary": "/usr/local/bin/agent-runner",
        "argsTemplate": ["--stage", "{{inputs.stage}}"],
        "envTemplate": {"CODEX_LOG_LEVEL": "info"},
    },
}


def _paths(node: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            found |= _paths(value, path)
    elif isinstance(node, list):
        for item in node:
            found |= _paths(item, f"{prefix}[]")
    return found


async def _create(api: k8s.ApiClient, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    info = registry.for_object(manifest)
    created: dict[str, Any] = await k8s.CustomObjectsApi(api).create_namespaced_custom_object(
        info.group, info.version, namespace, info.plural, manifest, field_validation="Strict"
    )
    return created


def test_the_sample_names_every_new_path() -> None:
    assert set(NEW_PATHS) <= _paths(PROVIDER_0929["spec"])
    assert len(NEW_PATHS) == 18


@pytest.mark.parametrize("manifest", [PROVIDER_0929, PROVIDER_091], ids=["0.9.29", "0.9.1"])
async def test_the_provider_round_trips_unchanged(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, manifest: dict[str, Any]
) -> None:
    created = await _create(kube_client, namespace, manifest)
    assert created["spec"] == manifest["spec"]
    info = registry.for_object(manifest)
    read: dict[str, Any] = await k8s.CustomObjectsApi(kube_client).get_namespaced_custom_object(
        info.group, info.version, namespace, info.plural, manifest["metadata"]["name"]
    )
    assert read["spec"] == manifest["spec"]
    assert registry.parse(read).to_k8s()["spec"] == manifest["spec"]


@pytest.mark.parametrize(
    ("path", "value"),
    [(("health", "capacityFailurePolicy"), "retry"), (("secretEnv",), [{"name": "X"}])],
)
async def test_invalid_new_fields_are_refused(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, path: tuple[str, ...], value: Any
) -> None:
    manifest = json.loads(json.dumps(PROVIDER_0929))
    node = manifest["spec"]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(k8s.ApiException) as caught:
        await _create(kube_client, namespace, manifest)
    assert caught.value.status == 422, caught.value.body
    message = json.loads(caught.value.body or b"{}")["message"]
    assert ("capacityFailurePolicy" in message) or ("secretKeyRef" in message), message
