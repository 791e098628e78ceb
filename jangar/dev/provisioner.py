"""A local storage provisioner for the kwok and node shapes: a hostPath PersistentVolume per claim.

The local cluster has no cloud disks and no CSI driver, so without this a PersistentVolumeClaim (a
Workspace's) stays `Pending` forever. `LocalCluster` starts it as a process of its own
(`python -m jangar.dev.provisioner`, in the cluster's `ProcessGroup` like etcd) once
kube-controller-manager runs, so `jangar dev cluster up` keeps it running after the command exits and
`jangar dev cluster down` stops it like every other component.

It follows the external-provisioner protocol, so kube-controller-manager's PV controller does the binding:

* At start it creates the StorageClass `jangar-local` (`STORAGE_CLASS`): the cluster's default class
  (a claim without `storageClassName` gets it from the API server's DefaultStorageClass admission, or
  retroactively from the PV controller), `volumeBindingMode: Immediate`, `reclaimPolicy: Delete`,
  provisioner `local.jangar.dev/hostpath` (`PROVISIONER`). An existing class of that name is kept.
* A claim is ours when the PV controller has handed it to this provisioner (annotation
  `volume.kubernetes.io/storage-provisioner: local.jangar.dev/hostpath`, set only when no existing volume
  matches it) and its class names this provisioner. For it the provisioner makes the directory
  `<volumes dir>/<claim uid>` (mode 0777: any container user may write) and creates the PV `pvc-<claim uid>`
  (`volume_manifest`): `hostPath` that directory, the claim's size and access modes, `claimRef` to the
  claim (uid included), the class's reclaim policy, annotation `pv.kubernetes.io/provisioned-by`. On the
  node shape it carries node affinity to the real node (the only host with the directory). The PV
  controller then binds claim and volume. Block-mode claims, claims with a selector or a data source are
  not provisioned (Warning Event `ProvisioningFailed`).
* A PV of ours that is `Released` (its claim deleted) with reclaim policy `Delete` loses its directory,
  then the PV is deleted (uid precondition). `Retain` keeps both. A PV of ours deleted by hand loses its
  directory too.

`decide_claim` and `decide_volume` are pure (unit-tested); `install` wires the two controllers into a
`jangar.runtime.Manager` (caches of claims, volumes and classes; no leader election: one per cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from jangar.runtime import (
    AlreadyExistsError,
    Builder,
    Client,
    JsonObject,
    Manager,
    ManagerOptions,
    NotFoundError,
    Recorder,
    Request,
    ResourceRef,
    Result,
    configure_logging,
)

log = structlog.get_logger("jangar.dev.provisioner")

STORAGE_CLASS = "jangar-local"
PROVISIONER = "local.jangar.dev/hostpath"
VOLUMES_DIR = "volumes"  # under the cluster workdir
PROCESS_NAME = "provisioner"  # in the cluster's ProcessGroup (logs/provisioner.log)
FIELD_MANAGER = "jangar-local-provisioner"

ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
HOSTNAME_LABEL = "kubernetes.io/hostname"

PVCS = ResourceRef("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
PVS = ResourceRef("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False)
STORAGE_CLASSES = ResourceRef("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False)

_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_VOLUME_PREFIX = "pvc-"
DIR_MODE = 0o777


def storage_class_manifest() -> JsonObject:
    """The StorageClass `jangar-local`: the default class, bound as soon as a claim exists."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {ANN_DEFAULT_CLASS: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def volume_name(claim_uid: str) -> str:
    """`pvc-<claim uid>`, the name external provisioners give a claim's volume."""
    return f"{_VOLUME_PREFIX}{claim_uid}"


def claim_uid_of(name: str) -> str | None:
    """The claim uid in a volume name of ours (`pvc-<uid>`), else None: never a path outside the dir."""
    uid = name.removeprefix(_VOLUME_PREFIX)
    return uid if name.startswith(_VOLUME_PREFIX) and _UID.match(uid) else None


def volume_dir(volumes_dir: Path, claim_uid: str) -> Path:
    if not _UID.match(claim_uid):
        raise ValueError(f"not a claim uid: {claim_uid!r}")
    return volumes_dir / claim_uid


def volume_manifest(
    claim: Mapping[str, Any],
    volumes_dir: Path,
    *,
    reclaim_policy: str = "Delete",
    node_name: str | None = None,
) -> JsonObject:
    """The hostPath PV for `claim`, pre-bound to it (`claimRef` with its uid): the PV controller binds them."""
    meta = claim["metadata"]
    spec = claim.get("spec") or {}
    uid = str(meta["uid"])
    pv_spec: JsonObject = {
        "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {})["storage"]},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": reclaim_policy,
        "storageClassName": spec.get("storageClassName") or STORAGE_CLASS,
        "volumeMode": "Filesystem",
        "hostPath": {"path": str(volume_dir(volumes_dir, uid)), "type": "Directory"},
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": uid,
        },
    }
    if node_name:
        term = {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [node_name]}]}
        pv_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [term]}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name(uid), "annotations": {ANN_PROVISIONED_BY: PROVISIONER}},
        "spec": pv_spec,
    }


# -- decisions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimDecision:
    """`provision`: create `volume`; `unsupported`: ours but impossible (Warning Event); `wait`: nothing."""

    action: Literal["provision", "unsupported", "wait"]
    reason: str
    message: str = ""
    volume: JsonObject | None = None


def _handed_to(claim: Mapping[str, Any]) -> str | None:
    ann = (claim.get("metadata") or {}).get("annotations") or {}
    found = ann.get(ANN_STORAGE_PROVISIONER) or ann.get(ANN_BETA_STORAGE_PROVISIONER)
    return str(found) if found else None


def decide_claim(
    claim: Mapping[str, Any],
    storage_class: Mapping[str, Any] | None,
    existing_volume: Mapping[str, Any] | None,
    volumes_dir: Path,
    node_name: str | None = None,
) -> ClaimDecision:
    """What to do for one claim, given its StorageClass and the volume `pvc-<uid>` (if they exist)."""
    meta = claim.get("metadata") or {}
    spec = claim.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return ClaimDecision("wait", "Deleting")
    if spec.get("volumeName") or (claim.get("status") or {}).get("phase") == "Bound":
        return ClaimDecision("wait", "Bound")
    if _handed_to(claim) != PROVISIONER:
        return ClaimDecision("wait", "NotHandedToUs")  # another provisioner's, or the PV controller's turn
    if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
        return ClaimDecision("wait", "NotOurClass")
    if existing_volume is not None:
        return ClaimDecision("wait", "Provisioned")
    problem = None
    if spec.get("volumeMode") == "Block":
        problem = "a hostPath volume cannot be a raw block device (volumeMode: Block)"
    elif spec.get("selector"):
        problem = "claims with a selector cannot be dynamically provisioned"
    elif spec.get("dataSource") or spec.get("dataSourceRef"):
        problem = "volume data sources (snapshots, clones) are not supported"
    elif not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        problem = "the claim requests no storage size"
    if problem is not None:
        return ClaimDecision("unsupported", "ProvisioningFailed", f"{PROVISIONER}: {problem}")
    policy = str(storage_class.get("reclaimPolicy") or "Delete")
    volume = volume_manifest(claim, volumes_dir, reclaim_policy=policy, node_name=node_name)
    path = volume["spec"]["hostPath"]["path"]
    return ClaimDecision(
        "provision",
        "ProvisioningSucceeded",
        f"Successfully provisioned volume {volume['metadata']['name']} (hostPath {path})",
        volume,
    )


@dataclass(frozen=True)
class VolumeDecision:
    """`delete`: remove the directory, then the PV; `remove-dir`: the PV is gone, remove its directory."""

    action: Literal["delete", "remove-dir", "keep"]
    reason: str
    directory: Path | None = None


def decide_volume(name: str, volume: Mapping[str, Any] | None, volumes_dir: Path) -> VolumeDecision:
    """What to do for the PV `name` (None: not in the cache any more)."""
    uid = claim_uid_of(name)
    if volume is None:
        if uid is None:
            return VolumeDecision("keep", "NotOurs")
        return VolumeDecision("remove-dir", "VolumeGone", volume_dir(volumes_dir, uid))
    ann = (volume.get("metadata") or {}).get("annotations") or {}
    if ann.get(ANN_PROVISIONED_BY) != PROVISIONER or uid is None:
        return VolumeDecision("keep", "NotOurs")
    if (volume.get("metadata") or {}).get("deletionTimestamp"):
        return VolumeDecision("keep", "Deleting")  # its directory goes when the PV is gone
    spec = volume.get("spec") or {}
    if (volume.get("status") or {}).get("phase") != "Released":
        return VolumeDecision("keep", "InUse")
    if spec.get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
        return VolumeDecision("keep", "Retained")
    return VolumeDecision("delete", "Released", volume_dir(volumes_dir, uid))


# -- the controllers ---------------------------------------------------------------------------------


def _claim_of_volume(volume: JsonObject) -> list[Request]:
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    if ref.get("name") and ref.get("namespace"):
        return [Request(ref["namespace"], ref["name"])]
    return []


def make_dir(directory: Path, volumes_dir: Path) -> None:
    """Create one volume directory, writable by any container user."""
    if directory.parent != volumes_dir:
        raise ValueError(f"{directory} is not a volume directory under {volumes_dir}")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)


def remove_dir(directory: Path, volumes_dir: Path) -> bool:
    """Remove one volume directory (never anything outside `volumes_dir`); True if it existed."""
    if directory.parent != volumes_dir:
        raise ValueError(f"{directory} is not a volume directory under {volumes_dir}")
    if not directory.exists() and not directory.is_symlink():
        return False
    if directory.is_symlink() or not directory.is_dir():
        directory.unlink()
    else:
        shutil.rmtree(directory)
    return True


@dataclass
class HostPathProvisioner:
    client: Client
    cache: Any  # jangar.runtime.Cache (or a FakeCache in tests)
    events: Recorder
    volumes_dir: Path
    node_name: str | None = None

    async def reconcile_claim(self, request: Request) -> Result | None:
        claim = self.cache.get(PVCS, request.name, request.namespace)
        if claim is None:
            return None
        class_name = (claim.get("spec") or {}).get("storageClassName")
        cls = self.cache.get(STORAGE_CLASSES, class_name) if class_name else None
        existing = self.cache.get(PVS, volume_name(claim["metadata"]["uid"]))
        decision = decide_claim(claim, cls, existing, self.volumes_dir, self.node_name)
        if decision.action == "unsupported":
            self.events.warning(claim, decision.reason, decision.message)
            return None
        if decision.action != "provision" or decision.volume is None:
            return None
        path = Path(decision.volume["spec"]["hostPath"]["path"])
        await asyncio.to_thread(make_dir, path, self.volumes_dir)
        try:
            await self.client.create(PVS, decision.volume)
        except AlreadyExistsError:
            return None
        log.info(
            "provisioned", claim=str(request), volume=decision.volume["metadata"]["name"], path=str(path)
        )
        self.events.normal(claim, decision.reason, decision.message)
        return None

    async def reconcile_volume(self, request: Request) -> Result | None:
        volume = self.cache.get(PVS, request.name)
        decision = decide_volume(request.name, volume, self.volumes_dir)
        if decision.directory is None:
            return None
        if decision.action == "remove-dir":
            if await asyncio.to_thread(remove_dir, decision.directory, self.volumes_dir):
                log.info("removed the directory of a deleted volume", volume=request.name)
            return None
        assert volume is not None
        await asyncio.to_thread(remove_dir, decision.directory, self.volumes_dir)
        try:
            await self.client.delete(PVS, request.name, uid=volume["metadata"]["uid"])
        except NotFoundError:
            return None
        log.info("deleted a released volume", volume=request.name, directory=str(decision.directory))
        return None


def install(manager: Manager, volumes_dir: Path, node_name: str | None = None) -> HostPathProvisioner:
    """The claim and volume controllers of the provisioner, on `manager`'s caches."""
    cache = manager.cache
    for ref in (PVCS, PVS, STORAGE_CLASSES):
        cache.informer(ref)
    prov = HostPathProvisioner(
        manager.client, cache, manager.event_recorder(PROVISIONER), volumes_dir.resolve(), node_name
    )

    def claims_of_class(storage_class: JsonObject) -> list[Request]:
        name = storage_class["metadata"]["name"]
        return [
            Request(c["metadata"]["namespace"], c["metadata"]["name"])
            for c in cache.list(PVCS, copy=False)
            if (c.get("spec") or {}).get("storageClassName") == name
        ]

    (
        Builder(manager)
        .for_(PVCS)
        .watches(PVS, _claim_of_volume)
        .watches(STORAGE_CLASSES, claims_of_class)
        .with_options(need_leader_election=False)
        .named("hostpath-claims")
        .complete(prov.reconcile_claim)
    )
    (
        Builder(manager)
        .for_(PVS)
        .with_options(need_leader_election=False)
        .named("hostpath-volumes")
        .complete(prov.reconcile_volume)
    )
    return prov


async def ensure_storage_class(client: Client) -> None:
    """Create `jangar-local`; an existing class of that name (someone else's choice) is left alone."""
    try:
        await client.create(STORAGE_CLASSES, storage_class_manifest())
    except AlreadyExistsError:
        return


async def run(kubeconfig: Path, volumes_dir: Path, node_name: str | None = None) -> None:
    client = await Client.from_kubeconfig(str(kubeconfig), field_manager=FIELD_MANAGER)
    try:
        await asyncio.to_thread(volumes_dir.mkdir, parents=True, exist_ok=True)
        await ensure_storage_class(client)
        manager = Manager(client, ManagerOptions(bind_address=None, reporting_instance=FIELD_MANAGER))
        install(manager, volumes_dir, node_name)
        manager.install_signal_handlers()
        log.info("provisioner started", provisioner=PROVISIONER, volumes=str(volumes_dir), node=node_name)
        await manager.start()
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jangar.dev.provisioner", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--volumes-dir", type=Path, required=True, help="one directory per volume under it")
    parser.add_argument("--node-name", default=None, help="pin the volumes to this node (the node shape)")
    args = parser.parse_args(argv)
    configure_logging(json=False, level=os.environ.get("JANGAR_LOG_LEVEL", "info"))
    asyncio.run(run(args.kubeconfig, args.volumes_dir.resolve(), args.node_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
