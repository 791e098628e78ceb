"""Workspaces on the kwok cluster: the local provisioner (`jangar.dev.provisioner`) provisions the claim, the
real PV controller binds it, a run using the Workspace gets the claim in its pod and succeeds; an expired
Workspace's claim is deleted (its volume and directory with it) and never created again."""

from __future__ import annotations

from typing import Any

from jangar.api.refs import WORKSPACES
from jangar.controllers.kinds import AGENTRUNS, JOBS, PODS, PVCS
from jangar.dev.cluster import LocalCluster
from jangar.dev.provisioner import ANN_PROVISIONED_BY, PROVISIONER, PVS, STORAGE_CLASS
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)


def workspace(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    # no storageClassName: the cluster's default class, jangar-local
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"size": "1Gi", **spec}}


async def _get(client: Client, ref: Any, name: str, ns: str | None = None) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await client.get(ref, name, ns)
        return found
    except NotFoundError:
        return None


async def _ready(client: Client, ns: str, name: str, phase: str) -> dict[str, Any] | None:
    ws = await _get(client, WORKSPACES, name, ns)
    if ws is None:
        return None
    status = ws.get("status") or {}
    return (
        ws
        if status.get("phase") == phase and status.get("observedGeneration") == ws["metadata"]["generation"]
        else None
    )


async def test_a_workspace_binds_through_the_provisioner_and_a_run_mounts_it(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(WORKSPACES, workspace(ns, "shared"))
        ready = await eventually(
            lambda: _ready(client, ns, "shared", "Ready"), timeout=90, what="Workspace shared Ready"
        )
        assert cond(ready, "Ready")["reason"] == "Bound" and cond(ready, "Bound")["status"] == "True"
        claim = await client.get(PVCS, "shared", ns)
        uid = claim["metadata"]["uid"]
        assert claim["spec"]["storageClassName"] == STORAGE_CLASS  # defaulted: jangar-local is the default
        assert claim["status"]["phase"] == "Bound"
        assert ready["status"]["volumeName"] == claim["spec"]["volumeName"] == f"pvc-{uid}"
        assert ready["status"]["capacity"] == "1Gi"
        pv = await client.get(PVS, f"pvc-{uid}")
        assert pv["metadata"]["annotations"][ANN_PROVISIONED_BY] == PROVISIONER
        assert pv["spec"]["hostPath"]["path"] == str(kwok_cluster.volumes_dir / uid)
        assert pv["spec"]["claimRef"]["uid"] == uid and pv["status"]["phase"] == "Bound"
        assert (kwok_cluster.volumes_dir / uid).is_dir()

        await client.create(AGENTRUNS, run(ns, "uses-ws", workspaceRef={"name": "shared"}))
        done = await wait_phase(client, ns, "uses-ws", "Succeeded", "Failed", timeout=90)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        job = await client.get(JOBS, "uses-ws-job", ns)
        pods = (await client.list(PODS, ns, label_selector=f"job-name={job['metadata']['name']}")).items
        assert pods, "the Job's pod"
        for spec in (job["spec"]["template"]["spec"], pods[0]["spec"]):
            claims = {
                v["name"]: v["persistentVolumeClaim"]["claimName"]
                for v in spec["volumes"]
                if "persistentVolumeClaim" in v
            }
            assert list(claims.values()) == ["shared"], spec["volumes"]
            (volume_name,) = claims
            mounts = [
                m for c in spec["containers"] for m in c.get("volumeMounts") or [] if m["name"] == volume_name
            ]
            assert [m["mountPath"] for m in mounts] == ["/workspace/shared"]
        assert pods[0]["status"]["phase"] == "Succeeded" and pods[0]["spec"]["nodeName"].startswith(
            "kwok-node-"
        )

        # PVC protection keeps a claim while a pod naming it exists, even a finished one: deleting the run
        # (its Job and pod go with it) and the Workspace (its claim goes with it) lets the claim go; the
        # provisioner then deletes the volume and its directory (reclaim policy Delete).
        await client.delete(AGENTRUNS, "uses-ws", ns)
        await client.delete(WORKSPACES, "shared", ns)

        async def reclaimed() -> bool:
            return (
                await _get(client, PVS, f"pvc-{uid}") is None
                and not (kwok_cluster.volumes_dir / uid).exists()
            )

        await eventually(reclaimed, timeout=90, interval=0.5, what="volume and directory reclaimed")


async def test_an_expired_workspace_loses_its_volume_and_is_never_recreated(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await client.create(WORKSPACES, workspace(ns, "brief", ttlSeconds=25))

        async def bound() -> dict[str, Any] | None:
            claim = await _get(client, PVCS, "brief", ns)
            return claim if claim and (claim.get("status") or {}).get("phase") == "Bound" else None

        claim = await eventually(bound, timeout=20, what="claim bound through the provisioner")
        uid = claim["metadata"]["uid"]
        assert (kwok_cluster.volumes_dir / uid).is_dir()
        expired = await eventually(
            lambda: _ready(client, ns, "brief", "Expired"), timeout=90, what="Workspace brief Expired"
        )
        assert cond(expired, "Ready")["reason"] == "Expired"

        # The real PVC-protection controller lets the unused claim go; the PV controller releases the
        # volume; the provisioner deletes it and its directory.
        async def all_gone() -> bool:
            return (
                await _get(client, PVCS, "brief", ns) is None
                and await _get(client, PVS, f"pvc-{uid}") is None
                and not (kwok_cluster.volumes_dir / uid).exists()
            )

        await eventually(all_gone, timeout=90, interval=0.5, what="claim, volume and directory gone")
        # A new generation wakes the controller: still Expired, still no claim.
        current = await client.get(WORKSPACES, "brief", ns)
        current["spec"]["size"] = "2Gi"
        await client.update(WORKSPACES, current)
        again = await eventually(
            lambda: _ready(client, ns, "brief", "Expired"), timeout=60, what="Expired at generation 2"
        )
        assert again["metadata"]["generation"] == 2
        assert (await client.list(PVCS, ns)).items == []
        assert not [
            p
            for p in (await client.list(PVS)).items
            if (p["spec"].get("claimRef") or {}).get("namespace") == ns
        ], "a volume for a claim of this namespace"
