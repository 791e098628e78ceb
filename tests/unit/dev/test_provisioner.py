"""The local storage provisioner (`jangar.dev.provisioner`): its manifests and decisions (pure), and its two
controllers against the in-memory API server (no PV controller there: the tests play its part)."""

from __future__ import annotations

import asyncio
import copy
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jangar.dev.cluster import stop_cluster
from jangar.dev.processes import ProcessGroup, pid_alive
from jangar.dev.provisioner import (
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_DEFAULT_CLASS,
    ANN_PROVISIONED_BY,
    ANN_STORAGE_PROVISIONER,
    PROVISIONER,
    STORAGE_CLASS,
    claim_uid_of,
    decide_claim,
    decide_volume,
    install,
    make_dir,
    remove_dir,
    storage_class_manifest,
    volume_manifest,
)
from jangar.runtime import Client, Manager, ManagerOptions
from jangar.runtime.metrics import RuntimeMetrics
from tests.fakes.apiserver import FakeApiServer, fake_apiserver
from tests.support.waiting import eventually

UID = "0b7c1f3e-2a4d-4e5f-8a9b-1c2d3e4f5a6b"
VOLUMES = Path("/work/cluster/volumes")


def claim(uid: str = UID, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "2Gi"}},
        "storageClassName": STORAGE_CLASS,
    }
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "shared",
            "namespace": "team",
            "uid": uid,
            "annotations": {ANN_STORAGE_PROVISIONER: PROVISIONER},
        },
        "spec": {k: v for k, v in body.items() if v is not None},
        "status": {"phase": "Pending"},
    }


def volume(phase: str = "Bound", policy: str = "Delete", uid: str = UID, ours: bool = True) -> dict[str, Any]:
    pv = volume_manifest(claim(uid), VOLUMES, reclaim_policy=policy)
    if not ours:
        pv["metadata"]["annotations"] = {ANN_PROVISIONED_BY: "ebs.csi.aws.com"}
    pv["status"] = {"phase": phase}
    return pv


OUR_CLASS = storage_class_manifest()


# -- manifests ------------------------------------------------------------------------------------


def test_the_storage_class_is_the_immediate_default_class_of_our_provisioner() -> None:
    sc = storage_class_manifest()
    assert sc["metadata"] == {"name": "jangar-local", "annotations": {ANN_DEFAULT_CLASS: "true"}}
    assert sc["provisioner"] == "local.jangar.dev/hostpath"
    assert sc["volumeBindingMode"] == "Immediate"
    assert sc["reclaimPolicy"] == "Delete"


def test_the_volume_is_a_hostpath_dir_named_by_the_claim_uid_and_pre_bound_to_the_claim() -> None:
    pv = volume_manifest(claim(), VOLUMES)
    assert pv["metadata"]["name"] == f"pvc-{UID}"
    assert pv["metadata"]["annotations"] == {ANN_PROVISIONED_BY: PROVISIONER}
    spec = pv["spec"]
    assert spec["hostPath"] == {"path": f"/work/cluster/volumes/{UID}", "type": "Directory"}
    assert spec["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "team",
        "name": "shared",
        "uid": UID,
    }
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["storageClassName"] == STORAGE_CLASS
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["volumeMode"] == "Filesystem"
    assert "nodeAffinity" not in spec


def test_the_volume_defaults_access_modes_and_takes_the_class_policy_and_the_node() -> None:
    pv = volume_manifest(claim(accessModes=None), VOLUMES, reclaim_policy="Retain", node_name="jangar-node")
    assert pv["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    (term,) = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert term == {
        "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["jangar-node"]}]
    }


def test_only_a_uid_names_a_volume_directory() -> None:
    assert claim_uid_of(f"pvc-{UID}") == UID
    for name in ("pvc-../../etc", "pvc-", UID, f"pv-{UID}", f"pvc-{UID}/x", "pvc-ABC"):
        assert claim_uid_of(name) is None, name
    with pytest.raises(ValueError):
        volume_manifest(claim(uid="../../etc"), VOLUMES)


# -- decide_claim ---------------------------------------------------------------------------------


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return out


CLAIM_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, str, str]] = [
    # (case, claim, class, existing volume, action, reason)
    ("handed to us", claim(), OUR_CLASS, None, "provision", "ProvisioningSucceeded"),
    (
        "beta annotation",
        _with(claim(), "metadata.annotations", {ANN_BETA_STORAGE_PROVISIONER: PROVISIONER}),
        OUR_CLASS,
        None,
        "provision",
        "ProvisioningSucceeded",
    ),
    (
        "being deleted",
        _with(claim(), "metadata.deletionTimestamp", "2026-01-01T00:00:00Z"),
        OUR_CLASS,
        None,
        "wait",
        "Deleting",
    ),
    ("bound", _with(claim(), "spec.volumeName", "pv-x"), OUR_CLASS, None, "wait", "Bound"),
    ("bound status", _with(claim(), "status.phase", "Bound"), OUR_CLASS, None, "wait", "Bound"),
    # the PV controller has not handed it out (it may still bind an existing volume), or to someone else
    (
        "no annotation yet",
        _with(claim(), "metadata.annotations", {}),
        OUR_CLASS,
        None,
        "wait",
        "NotHandedToUs",
    ),
    (
        "another provisioner",
        _with(claim(), "metadata.annotations", {ANN_STORAGE_PROVISIONER: "ebs.csi.aws.com"}),
        OUR_CLASS,
        None,
        "wait",
        "NotHandedToUs",
    ),
    ("class not cached", claim(), None, None, "wait", "NotOurClass"),
    ("class of another", claim(), _with(OUR_CLASS, "provisioner", "x.io/y"), None, "wait", "NotOurClass"),
    ("already provisioned", claim(), OUR_CLASS, volume("Available"), "wait", "Provisioned"),
    ("block", claim(volumeMode="Block"), OUR_CLASS, None, "unsupported", "ProvisioningFailed"),
    (
        "selector",
        claim(selector={"matchLabels": {"a": "b"}}),
        OUR_CLASS,
        None,
        "unsupported",
        "ProvisioningFailed",
    ),
    (
        "data source",
        claim(dataSource={"kind": "VolumeSnapshot", "name": "s"}),
        OUR_CLASS,
        None,
        "unsupported",
        "ProvisioningFailed",
    ),
    ("no size", claim(resources={}), OUR_CLASS, None, "unsupported", "ProvisioningFailed"),
]


@pytest.mark.parametrize(
    ("pvc", "sc", "existing", "action", "reason"),
    [c[1:] for c in CLAIM_CASES],
    ids=[c[0] for c in CLAIM_CASES],
)
def test_decide_claim(
    pvc: dict[str, Any], sc: dict[str, Any] | None, existing: dict[str, Any] | None, action: str, reason: str
) -> None:
    decision = decide_claim(pvc, sc, existing, VOLUMES)
    assert (decision.action, decision.reason) == (action, reason)
    assert (decision.volume is not None) == (action == "provision")
    if action == "unsupported":
        assert decision.message.startswith(f"{PROVISIONER}: ")


def test_a_provisioned_volume_takes_the_class_reclaim_policy_and_the_node() -> None:
    retain = _with(OUR_CLASS, "reclaimPolicy", "Retain")
    decision = decide_claim(claim(), retain, None, VOLUMES, node_name="jangar-node")
    assert decision.volume is not None
    assert decision.volume == volume_manifest(
        claim(), VOLUMES, reclaim_policy="Retain", node_name="jangar-node"
    )
    assert decision.message == f"Successfully provisioned volume pvc-{UID} (hostPath {VOLUMES / UID})"


# -- decide_volume --------------------------------------------------------------------------------

VOLUME_CASES: list[tuple[str, str, dict[str, Any] | None, str, str]] = [
    # (case, name, volume, action, reason)
    ("released, Delete", f"pvc-{UID}", volume("Released"), "delete", "Released"),
    ("released, Retain", f"pvc-{UID}", volume("Released", "Retain"), "keep", "Retained"),
    ("bound", f"pvc-{UID}", volume("Bound"), "keep", "InUse"),
    ("available", f"pvc-{UID}", volume("Available"), "keep", "InUse"),
    ("another provisioner's", f"pvc-{UID}", volume("Released", ours=False), "keep", "NotOurs"),
    (
        "being deleted",
        f"pvc-{UID}",
        _with(volume("Released"), "metadata.deletionTimestamp", "2026-01-01T00:00:00Z"),
        "keep",
        "Deleting",
    ),
    ("ours, gone", f"pvc-{UID}", None, "remove-dir", "VolumeGone"),
    ("not a claim volume name, gone", "pvc-../../etc", None, "keep", "NotOurs"),
    ("static volume, gone", "my-static-pv", None, "keep", "NotOurs"),
]


@pytest.mark.parametrize(
    ("name", "pv", "action", "reason"), [c[1:] for c in VOLUME_CASES], ids=[c[0] for c in VOLUME_CASES]
)
def test_decide_volume(name: str, pv: dict[str, Any] | None, action: str, reason: str) -> None:
    decision = decide_volume(name, pv, VOLUMES)
    assert (decision.action, decision.reason) == (action, reason)
    assert decision.directory == (VOLUMES / UID if action != "keep" else None)


# -- directories ----------------------------------------------------------------------------------


def test_directories_are_made_writable_and_removed_only_under_the_volumes_dir(tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    target = volumes / UID
    old = os.umask(0o077)
    try:
        make_dir(target, volumes)
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o777
    (target / "sub").mkdir()
    (target / "sub" / "file").write_text("data")
    assert remove_dir(target, volumes) is True
    assert not target.exists() and volumes.is_dir()
    assert remove_dir(target, volumes) is False
    outside = tmp_path / "precious"
    outside.mkdir()
    with pytest.raises(ValueError):
        remove_dir(outside, volumes)
    with pytest.raises(ValueError):
        make_dir(volumes / "a" / "b", volumes)
    # a symlink in place of a volume directory is removed, never followed
    (outside / "keep").write_text("keep")
    target.symlink_to(outside)
    assert remove_dir(target, volumes) is True
    assert (outside / "keep").read_text() == "keep"


# -- the controllers against the in-memory API server ---------------------------------------------

CORE_PVCS = "core/v1/persistentvolumeclaims"
CORE_PVS = "core/v1/persistentvolumes"
CLASSES = "storage.k8s.io/v1/storageclasses"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    async with fake_apiserver() as server:
        yield server


@pytest_asyncio.fixture
async def running(fake: FakeApiServer, tmp_path: Path) -> AsyncIterator[Path]:
    api = fake.api_client()
    client = Client(api, timeout=5, metrics=RuntimeMetrics())
    manager = Manager(client, ManagerOptions(bind_address=None, reporting_instance="test"))
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    install(manager, volumes, node_name="jangar-node")
    fake.put(CLASSES, storage_class_manifest())
    task = asyncio.create_task(manager.start())
    yield volumes
    manager.request_stop()
    await asyncio.wait_for(task, 10)
    await api.close()


def _pv(fake: FakeApiServer, name: str) -> dict[str, Any] | None:
    return fake.objects.get((CORE_PVS, "", name))


def _events(fake: FakeApiServer) -> list[dict[str, Any]]:
    return [o for (col, _, _), o in fake.objects.items() if col.endswith("/events")]


async def test_a_claim_handed_to_it_gets_a_directory_and_a_volume(fake: FakeApiServer, running: Path) -> None:
    fake.put(CORE_PVCS, claim())
    pv = await eventually(lambda: _pv(fake, f"pvc-{UID}"), timeout=10, what="volume created")
    assert pv["spec"]["claimRef"]["uid"] == UID
    assert pv["spec"]["hostPath"]["path"] == str(running / UID)
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0][
        "values"
    ] == ["jangar-node"]
    assert (running / UID).is_dir()
    event = await eventually(
        lambda: next((e for e in _events(fake) if e.get("reason") == "ProvisioningSucceeded"), None),
        timeout=10,
        what="ProvisioningSucceeded event",
    )
    assert event["involvedObject"]["name"] == "shared" and event["type"] == "Normal"
    assert event["reportingComponent"] == PROVISIONER


async def test_a_claim_waits_until_the_pv_controller_hands_it_over(
    fake: FakeApiServer, running: Path
) -> None:
    waiting = claim()
    waiting["metadata"]["annotations"] = {}
    fake.put(CORE_PVCS, waiting)
    # An unrelated claim handed over after it is provisioned: both were seen, only the second acted on.
    other = "9c1f2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
    fake.put(CORE_PVCS, _with(claim(other), "metadata.name", "other"))
    await eventually(lambda: _pv(fake, f"pvc-{other}"), timeout=10, what="the other claim's volume")
    assert _pv(fake, f"pvc-{UID}") is None and not (running / UID).exists()
    fake.put(CORE_PVCS, _with(waiting, "metadata.annotations", {ANN_STORAGE_PROVISIONER: PROVISIONER}))
    await eventually(lambda: _pv(fake, f"pvc-{UID}"), timeout=10, what="volume once handed over")


async def test_an_unsupported_claim_gets_a_warning_and_no_volume(fake: FakeApiServer, running: Path) -> None:
    fake.put(CORE_PVCS, claim(volumeMode="Block"))
    event = await eventually(
        lambda: next((e for e in _events(fake) if e.get("reason") == "ProvisioningFailed"), None),
        timeout=10,
        what="ProvisioningFailed event",
    )
    assert event["type"] == "Warning" and "volumeMode: Block" in event["message"]
    assert _pv(fake, f"pvc-{UID}") is None and not (running / UID).exists()


async def test_a_released_volume_loses_its_directory_then_the_volume(
    fake: FakeApiServer, running: Path
) -> None:
    fake.put(CORE_PVCS, claim())
    pv = await eventually(lambda: _pv(fake, f"pvc-{UID}"), timeout=10, what="volume created")
    (running / UID / "data").write_text("x")
    # the PV controller's part: the claim is deleted, the volume Released
    fake.remove(CORE_PVCS, "team", "shared")
    fake.put(CORE_PVS, {**copy.deepcopy(pv), "status": {"phase": "Released"}})
    await eventually(lambda: _pv(fake, f"pvc-{UID}") is None, timeout=10, what="volume deleted")
    assert not (running / UID).exists()


async def test_a_retained_volume_keeps_its_directory(fake: FakeApiServer, running: Path) -> None:
    fake.put(CLASSES, {**_with(storage_class_manifest(), "metadata.name", "keep"), "reclaimPolicy": "Retain"})
    fake.put(CORE_PVCS, claim(storageClassName="keep"))
    pv = await eventually(lambda: _pv(fake, f"pvc-{UID}"), timeout=10, what="volume created")
    assert (
        pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and pv["spec"]["storageClassName"] == "keep"
    )
    fake.remove(CORE_PVCS, "team", "shared")
    fake.put(CORE_PVS, {**copy.deepcopy(pv), "status": {"phase": "Released"}})
    # a Released volume with Delete after it, on the same queue: once it is gone, ours was looked at
    other = "9c1f2e3d-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
    fake.put(CORE_PVS, volume("Released", uid=other))
    await eventually(lambda: _pv(fake, f"pvc-{other}") is None, timeout=10, what="the other volume deleted")
    assert _pv(fake, f"pvc-{UID}") is not None and (running / UID).is_dir()
    # deleted by hand: its directory goes too
    fake.remove(CORE_PVS, "", f"pvc-{UID}")
    await eventually(lambda: not (running / UID).exists(), timeout=10, what="directory of a deleted volume")


# -- teardown -------------------------------------------------------------------------------------


def test_cluster_down_from_another_process_stops_the_provisioner_and_removes_the_volumes(
    tmp_path: Path,
) -> None:
    """`jangar dev cluster down` (stop_cluster): the provisioner process recorded in the workdir is stopped and
    `<workdir>/volumes` removed; nothing outside the workdir is touched."""
    workdir = tmp_path / "cluster"
    group = ProcessGroup(workdir)
    proc = group.start("provisioner", [sys.executable, "-c", "import time; time.sleep(60)"])
    (workdir / "volumes" / UID).mkdir(parents=True)
    (workdir / "volumes" / UID / "file").write_text("data")
    beside = tmp_path / "beside"
    beside.mkdir()
    assert stop_cluster(workdir) == ["provisioner"]
    proc.popen.wait(timeout=10)  # type: ignore[union-attr]
    assert not pid_alive(proc.pid)
    assert not (workdir / "volumes").exists()
    assert (workdir / "logs" / "provisioner.log").exists() and beside.is_dir()
