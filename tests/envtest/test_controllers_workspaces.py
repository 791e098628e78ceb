"""Workspace and Artifact against a real API server: the chart's samples reconcile truthfully, a claim's
binding becomes the Workspace's phase, an expired Workspace deletes its claim and never creates another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jangar.api.refs import ARTIFACTS, WORKSPACES
from jangar.controllers.kinds import PVCS
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import ControllerProcess, cond, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"


def example(name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["metadata"]["namespace"] = namespace
    return obj


async def phase_of(
    client: Client, ref: Any, ns: str, name: str, phase: str, timeout: float = 60.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(ref, name, ns)
        status = obj.get("status") or {}
        ok = (
            status.get("phase") == phase and status.get("observedGeneration") == obj["metadata"]["generation"]
        )
        return obj if ok else None

    found: dict[str, Any] = await eventually(check, timeout=timeout, what=f"{ref.kind} {name} {phase}")
    return found


async def test_the_workspace_sample_gets_its_claim_and_follows_its_binding(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    ws = await client.create(WORKSPACES, example("workspace-sample.yaml", ns))
    pending = await phase_of(client, WORKSPACES, ns, "shared-workspace", "Pending")
    assert cond(pending, "Ready")["status"] == "False" and cond(pending, "Bound")["status"] == "False"
    assert pending["status"]["claimName"] == "shared-workspace"
    assert pending["status"]["mountPath"] == "/workspace/shared-workspace"
    assert pending["status"]["expiresAt"]
    claim = await client.get(PVCS, "shared-workspace", ns)
    assert claim["metadata"]["labels"]["workspaces.proompteng.ai/workspace"] == "shared-workspace"
    owner = claim["metadata"]["ownerReferences"][0]
    assert owner["uid"] == ws["metadata"]["uid"] and owner["controller"] is True
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # no PV controller here: bind the claim by hand, as kube-controller-manager would
    claim["spec"]["volumeName"] = "pv-shared"
    claim = await client.update(PVCS, claim)
    claim["status"] = {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}
    await client.update_status(PVCS, claim)
    ready = await phase_of(client, WORKSPACES, ns, "shared-workspace", "Ready")
    assert cond(ready, "Ready")["reason"] == "Bound" and cond(ready, "Bound")["status"] == "True"
    assert ready["status"]["volumeName"] == "pv-shared" and ready["status"]["capacity"] == "10Gi"


async def test_an_expired_workspace_deletes_its_claim_and_never_recreates_it(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    ns = namespace
    body = {
        "apiVersion": "workspaces.proompteng.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "brief", "namespace": ns},
        "spec": {"size": "1Gi", "ttlSeconds": 4},
    }
    await client.create(WORKSPACES, body)
    claim = await eventually(lambda: _claim(client, ns, "brief"), timeout=60.0, what="claim created")
    first_uid = claim["metadata"]["uid"]
    expired = await phase_of(client, WORKSPACES, ns, "brief", "Expired")
    assert cond(expired, "Ready")["reason"] == "Expired"

    async def deleted() -> bool | None:
        found = await _claim(client, ns, "brief")
        return True if found is None or found["metadata"].get("deletionTimestamp") else None

    await eventually(deleted, timeout=60.0, what="claim deleted")
    # No PVC-protection controller here: the claim may linger with its finalizer; drop it, then look again.
    found = await _claim(client, ns, "brief")
    if found is not None:
        found["metadata"]["finalizers"] = []
        await client.update(PVCS, found)
    await eventually(lambda: _gone(client, ns, "brief"), timeout=60.0, what="claim gone")
    # an edit (a new generation) wakes the controller: it must still not create a claim
    current = await client.get(WORKSPACES, "brief", ns)
    current["spec"]["size"] = "2Gi"
    await client.update(WORKSPACES, current)
    again = await phase_of(client, WORKSPACES, ns, "brief", "Expired")
    assert again["metadata"]["generation"] == 2
    recreated = await _claim(client, ns, "brief")
    assert recreated is None, f"claim recreated (first uid {first_uid})"


async def test_the_artifact_sample_is_recorded_with_its_location_and_expiry(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(ARTIFACTS, example("artifact-sample.yaml", namespace))
    ready = await phase_of(client, ARTIFACTS, namespace, "run-logs", "Ready")
    assert ready["status"]["uri"] == "storage://default-storage"
    assert cond(ready, "Ready")["reason"] == "Recorded"
    assert "does not copy or upload" in cond(ready, "Ready")["message"]
    assert ready["status"]["expiresAt"]


async def _claim(client: Client, ns: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await client.get(PVCS, name, ns)
        return found
    except NotFoundError:
        return None


async def _gone(client: Client, ns: str, name: str) -> bool | None:
    return True if await _claim(client, ns, name) is None else None
