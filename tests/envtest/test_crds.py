"""The generated CRDs on a real API server: they install and become Established, accept a valid object
of every kind, reject invalid ones with the schema's or CEL rule's message, keep every status field the
controller writes (no pruning), and make `kubectl get proompteng` list everything."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.api import registry
from jangar.dev.cluster import LocalCluster, kubectl_env
from tests.support.crds import install_crds
from tests.unit.api.samples import agentrun_status, kinds, sample
from tests.unit.api.schema_sim import populated


async def create(api: k8s.ApiClient, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    info = registry.for_object(manifest)
    created: dict[str, Any] = await k8s.CustomObjectsApi(api).create_namespaced_custom_object(
        info.group, info.version, namespace, info.plural, manifest
    )
    return created


async def rejection(api: k8s.ApiClient, namespace: str, manifest: dict[str, Any]) -> str:
    """The API server's message for a create that must fail validation."""
    with pytest.raises(k8s.ApiException) as caught:
        await create(api, namespace, manifest)
    assert caught.value.status == 422, caught.value.body
    message: str = json.loads(caught.value.body or b"{}")["message"]
    return message


async def test_every_crd_becomes_established(
    envtest: LocalCluster, kubectl_bin: Path, kube_client: k8s.ApiClient
) -> None:
    # The installation under test is the shared one every other tier uses (idempotent, server side).
    await asyncio.to_thread(install_crds, envtest.kubeconfig, kubectl_bin)
    ext = k8s.ApiextensionsV1Api(kube_client)
    crds = {crd.metadata.name: crd for crd in (await ext.list_custom_resource_definition()).items}
    assert {info.crd_name for info in registry.KINDS} <= set(crds)
    for info in registry.KINDS:
        conditions = {c.type: c.status for c in (crds[info.crd_name].status.conditions or [])}
        assert conditions.get("Established") == "True", (info.crd_name, conditions)
        assert conditions.get("NamesAccepted") == "True", (info.crd_name, conditions)


async def test_a_valid_object_of_every_kind_is_accepted_unchanged(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    for kind in kinds():
        manifest = sample(kind)
        created = await create(kube_client, namespace, manifest)
        assert created["spec"] == manifest["spec"], f"{kind}: the API server pruned or changed the spec"
        assert registry.parse(created).to_k8s()["spec"] == manifest["spec"]


def _without(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(manifest: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = manifest
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(manifest: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = manifest
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[leaf] = value

    return mutate


def _no_implementation(manifest: dict[str, Any]) -> None:
    del manifest["spec"]["implementationSpecRef"]
    for step in manifest["spec"]["workflow"]["steps"]:
        step.pop("implementation", None)


INVALID = [
    ("AgentRun", _no_implementation, "spec.implementationSpecRef or spec.implementation is required"),
    (
        "AgentRun",
        _set("spec.workflow", {"steps": []}),
        "needs at least one step when spec.runtime.type is workflow",
    ),
    ("AgentRun", _set("spec.runtime.type", "lambda"), 'Unsupported value: "lambda"'),
    ("AgentRun", _without("spec.agentRef"), "spec.agentRef: Required value"),
    ("AgentRun", _set("spec.parameters", {f"k{i}": "v" for i in range(101)}), "must have at most 100 items"),
    ("AgentRun", _set("spec.parameters", {"n": 1}), "must be of type string"),
    ("AgentRun", _set("spec.ttlSecondsAfterFinished", -1), "should be greater than or equal to 0"),
    (
        "AgentRun",
        _set("spec.workflow", {"steps": [{"name": "a"}, {"name": "a"}]}),
        "Duplicate value",
    ),
    (
        "AgentRun",
        _set("spec.workload.volumes", [{"type": "pvc", "name": "v", "mountPath": "/v"}]),
        "a pvc volume needs claimName",
    ),
    ("ImplementationSpec", _set("spec.text", "x" * 131073), "may not be more than 131072"),
    ("ImplementationSpec", _set("spec.source.provider", "jira"), 'Unsupported value: "jira"'),
    ("VersionControlProvider", _without("spec.auth.app.appId"), "auth.method app needs auth.app.appId"),
    (
        "VersionControlProvider",
        _set("spec.repositoryPolicy.allow", ["x"] * 201),
        "must have at most 200 items",
    ),
    ("Memory", _set("spec.type", "sqlite"), 'Unsupported value: "sqlite"'),
    ("Orchestration", _set("spec.steps.0.kind", "Shell"), 'Unsupported value: "Shell"'),
    (
        "Schedule",
        _set("spec.targetRef.kind", "Pod"),
        "spec.targetRef.kind must be AgentRun or OrchestrationRun",
    ),
]


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"), INVALID, ids=[f"{k}-{e[:40]}" for k, _, e in INVALID]
)
async def test_invalid_objects_are_rejected_with_a_clear_message(
    envtest_crds: LocalCluster,
    kube_client: k8s.ApiClient,
    namespace: str,
    kind: str,
    mutate: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    manifest = sample(kind)
    mutate(manifest)
    assert expected in await rejection(kube_client, namespace, manifest)


async def _write_status(
    api: k8s.ApiClient, namespace: str, kind: str, status: dict[str, Any]
) -> dict[str, Any]:
    info = registry.by_kind(kind)
    custom = k8s.CustomObjectsApi(api)
    name = sample(kind)["metadata"]["name"]
    await custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]  # runtime kwarg
        info.group,
        info.version,
        namespace,
        info.plural,
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )
    stored: dict[str, Any] = await custom.get_namespaced_custom_object(
        info.group, info.version, namespace, info.plural, name
    )
    return stored


async def test_agentrun_status_the_controller_writes_survives(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    """The reference lost `workflow.steps[].jobObservedAt` to pruning; here every written field is kept."""
    manifest = sample("AgentRun")
    manifest["status"] = {"phase": "Succeeded"}
    created = await create(kube_client, namespace, manifest)
    assert "status" not in created, "status must only be writable through the status subresource"
    status = agentrun_status()
    stored = await _write_status(kube_client, namespace, "AgentRun", status)
    assert stored["status"] == status
    assert stored["status"]["workflow"]["steps"][0]["jobObservedAt"] == "2026-01-01T00:00:02Z"
    assert registry.parse(stored).to_k8s()["status"] == status


@pytest.mark.parametrize("kind", kinds())
async def test_every_status_field_of_every_kind_survives(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, kind: str
) -> None:
    await create(kube_client, namespace, sample(kind))
    model = registry.by_kind(kind).model
    status_model = next(a for a in model.model_fields["status"].annotation.__args__ if a is not type(None))  # type: ignore[union-attr]
    status = status_model.model_validate(populated(status_model)).to_k8s()
    stored = await _write_status(kube_client, namespace, kind, status)
    assert stored["status"] == status


async def test_conditions_are_keyed_by_type(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    await create(kube_client, namespace, sample("Agent"))
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "ValidSpec",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    with pytest.raises(k8s.ApiException) as caught:
        await _write_status(kube_client, namespace, "Agent", {"conditions": [condition, condition]})
    assert "Duplicate value" in json.loads(caught.value.body or b"{}")["message"]
    bad_reason = condition | {"reason": "not a reason"}
    with pytest.raises(k8s.ApiException) as caught:
        await _write_status(kube_client, namespace, "Agent", {"conditions": [bad_reason]})
    assert "status.conditions[0].reason" in json.loads(caught.value.body or b"{}")["message"]


def _kubectl(kubectl_bin: Path, cluster: LocalCluster, *args: str) -> str:
    done = subprocess.run(
        [str(kubectl_bin), *args],
        env=kubectl_env(cluster),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_kubectl_category_short_names_and_columns(
    kube_client: k8s.ApiClient, namespace: str, envtest_crds: LocalCluster, kubectl_bin: Path
) -> None:
    for kind in kinds():
        await create(kube_client, namespace, sample(kind))
    listed = await asyncio.to_thread(
        _kubectl, kubectl_bin, envtest_crds, "get", registry.CATEGORY, "-n", namespace, "-o", "name"
    )
    assert len(listed.split()) == len(registry.KINDS)
    table = await asyncio.to_thread(_kubectl, kubectl_bin, envtest_crds, "get", "ar", "-n", namespace)
    header = table.splitlines()[0].split()
    assert header == [
        "NAME",
        "PHASE",
        "AGENT",
        "SUCCEEDED",
        "REASON",
        "STARTTIME",
        "COMPLETIONTIME",
        "RUNTIME",
        "AGE",
    ]
    assert "codex-agent" in table and "workflow" in table
