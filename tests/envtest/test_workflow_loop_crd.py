"""0.9.29 workflow fields on a real API server (issue 13 item 3): `workflow.steps[].loop.*` and
`timeoutSeconds` round-trip through the AgentRun CRD, the loop keeps sub-fields jangar does not type (a
0.9.29 manifest loses nothing), out-of-range values are rejected with the schema's message, and
`status.workflow.steps[].loop.*` written through the status subresource is kept whole."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s

from jangar.api import registry
from jangar.dev.cluster import LocalCluster
from tests.envtest.test_crds import create, rejection

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


@pytest.mark.parametrize(
    "name", ["agentrun-workflow-loop-fixed.yaml", "agentrun-workflow-loop-conditional.yaml"]
)
async def test_the_loop_examples_round_trip(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, name: str
) -> None:
    manifest = _example(name)
    created = await create(kube_client, namespace, copy.deepcopy(manifest))
    assert created["spec"] == manifest["spec"]
    assert registry.parse(created).to_k8s()["spec"] == manifest["spec"]


async def test_unknown_loop_sub_fields_are_kept(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    manifest = _example("agentrun-workflow-loop-conditional.yaml")
    loop = manifest["spec"]["workflow"]["steps"][0]["loop"]
    loop["futureKnob"] = {"nested": [1, 2]}
    loop["condition"]["language"] = "cel"
    loop["condition"]["source"]["volume"] = "shared-workspace"
    created = await create(kube_client, namespace, copy.deepcopy(manifest))
    assert created["spec"]["workflow"]["steps"][0]["loop"] == loop
    assert registry.parse(created).to_k8s()["spec"]["workflow"]["steps"][0]["loop"] == loop


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"maxIterations": 0}, "maxIterations"),
        ({"maxIterations": 1001}, "maxIterations"),
        ({"onMissingControl": "retry"}, "onMissingControl"),
        ({"historyLimit": 0}, "historyLimit"),
    ],
)
async def test_out_of_range_loops_are_rejected(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, change: dict[str, Any], says: str
) -> None:
    manifest = _example("agentrun-workflow-loop-fixed.yaml")
    manifest["spec"]["workflow"]["steps"][0]["loop"].update(change)
    assert says in await rejection(kube_client, namespace, manifest)


async def test_loop_status_is_kept_by_the_status_subresource(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    manifest = _example("agentrun-workflow-loop-fixed.yaml")
    await create(kube_client, namespace, manifest)
    job = {"name": "agents-workflow-loop-fixed-step-1-iter-3-attempt-1", "namespace": namespace, "uid": "u3"}
    status = {
        "phase": "Running",
        "workflow": {
            "phase": "Running",
            "steps": [
                {
                    "name": "refine",
                    "phase": "Succeeded",
                    "attempt": 1,
                    "jobRef": job,
                    "loop": {
                        "iteration": 3,
                        "iterations": [
                            {
                                "index": 3,
                                "phase": "Succeeded",
                                "attempt": 1,
                                "startedAt": "2026-12-01T10:00:00Z",
                                "finishedAt": "2026-12-01T10:01:00Z",
                                "jobRef": job,
                                "reason": "Completed",
                                "message": "done",
                            }
                        ],
                        "stopReason": "MaxIterationsReached",
                        "pruned": 2,
                        "retained": 1,
                    },
                }
            ],
        },
    }
    info = registry.for_object(manifest)
    custom = k8s.CustomObjectsApi(kube_client)
    name = manifest["metadata"]["name"]
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
    assert stored["status"]["workflow"] == status["workflow"], json.dumps(stored["status"])
