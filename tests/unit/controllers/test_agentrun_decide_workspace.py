"""AgentRun `spec.workspaceRef` and run artifacts in `decide`: wait, fail, mount, record."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest

from jangar.admission import Admit
from jangar.conditions import format_time
from jangar.controllers.agentrun.decide import decide
from tests.unit.controllers.agentrun_objects import (
    NOW,
    SETTINGS,
    ago,
    conditions,
    ended_pod,
    job,
    run,
    snapshot,
    world,
)

ADMIT = Admit(NOW)
DIGEST = "b" * 64


def workspace(name: str = "shared", *, phase: str = "Ready", ttl: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"size": "1Gi"}
    if ttl is not None:
        spec["ttlSeconds"] = ttl
    return {
        "kind": "Workspace",
        "metadata": {"name": name, "namespace": "agents", "creationTimestamp": ago(120)},
        "spec": spec,
        "status": {"phase": phase},
    }


def pod_spec(plan: Any) -> dict[str, Any]:
    assert plan.create is not None
    spec: dict[str, Any] = plan.create.job["spec"]["template"]["spec"]
    return spec


def test_a_run_with_a_workspace_mounts_its_claim_at_workspace_name() -> None:
    plan = decide(snapshot(run(workspaceRef={"name": "shared"}), lookup=world(workspace())), ADMIT)
    spec = pod_spec(plan)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    mount = mounts["/workspace/shared"]
    assert volumes[mount["name"]]["persistentVolumeClaim"] == {"claimName": "shared"}
    assert "/workspace" in mounts  # the scratch emptyDir stays underneath
    run_json = json.loads(plan.create.configmaps[0]["data"]["run.json"])
    assert run_json["workspace"] == {
        "name": "shared",
        "claimName": "shared",
        "mountPath": "/workspace/shared",
    }


def test_a_pending_workspace_does_not_hold_the_run() -> None:
    plan = decide(
        snapshot(run(workspaceRef={"name": "shared"}), lookup=world(workspace(phase="Pending"))), ADMIT
    )
    assert plan.create is not None


def test_a_missing_workspace_holds_the_run_pending_within_the_grace_then_fails_it() -> None:
    obj = run(created_ago=100, workspaceRef={"name": "shared"})
    plan = decide(snapshot(obj))
    assert plan.status is not None and plan.status.phase == "Pending"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "MissingWorkspace")
    assert plan.requeue_after == pytest.approx(200.0)
    late = decide(snapshot(obj, now=NOW + timedelta(seconds=300)))
    assert late.status is not None and late.status.phase == "Failed"


@pytest.mark.parametrize(
    ("ws", "reason"),
    [
        (workspace(phase="Expired"), "WorkspaceExpired"),
        (workspace(ttl=60), "WorkspaceExpired"),  # past its TTL, even before the Workspace controller saw it
        (workspace(phase="Failed"), "WorkspaceUnavailable"),
    ],
)
def test_an_expired_or_failed_workspace_fails_the_run_at_once(ws: dict[str, Any], reason: str) -> None:
    plan = decide(snapshot(run(created_ago=1, workspaceRef={"name": "shared"}), lookup=world(ws)))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", reason)


def test_a_workload_volume_on_the_workspace_path_is_rejected() -> None:
    volumes = [{"name": "mine", "type": "emptyDir", "mountPath": "/workspace/shared"}]
    obj = run(created_ago=1, workspaceRef={"name": "shared"}, workload={"volumes": volumes})
    plan = decide(snapshot(obj, lookup=world(workspace())))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "InvalidWorkloadVolume")


def submitted(**spec: Any) -> dict[str, Any]:
    return run(
        "Running",
        status={
            "startedAt": ago(5),
            "jobRef": {"name": "run-1-job", "namespace": "agents"},
            "runtimeRef": {"type": "job", "name": "run-1-job", "namespace": "agents"},
        },
        **spec,
    )


def finished(reported: list[dict[str, Any]], settings: Any = SETTINGS, **spec: Any) -> Any:
    message = json.dumps({"outputs": {}, "artifacts": reported})
    pods = {"run-1-job": [ended_pod("run-1-job", exit_code=0, message=message)]}
    obj = submitted(**spec)
    obj["metadata"]["uid"] = "uid-run-1"
    return decide(snapshot(obj, jobs=(job(complete=True),), pods=pods, settings=settings))


def test_a_finished_runs_artifacts_become_artifact_objects_on_its_workspace() -> None:
    reported = [
        {"name": "patch", "path": "/workspace/shared/out.patch", "present": True, "size": 9, "sha256": DIGEST}
    ]
    plan = finished(reported, workspaceRef={"name": "shared"})
    assert plan.status is not None and plan.status.phase == "Succeeded"
    assert [a["spec"]["uri"] for a in plan.artifacts] == ["pvc://shared/out.patch"]
    assert plan.artifacts[0]["metadata"]["ownerReferences"][0]["uid"] == "uid-run-1"
    assert conditions(plan.status.status)["ArtifactsTruncated"] == ("False", "AllRecorded")


def test_more_artifacts_than_the_cap_are_truncated_with_a_condition() -> None:
    settings = dataclasses.replace(SETTINGS, artifacts=dataclasses.replace(SETTINGS.artifacts, max_per_run=2))
    reported = [{"name": f"f{i}", "path": f"/workspace/f{i}", "present": True} for i in range(4)]
    plan = finished(reported, settings=settings)
    assert plan.status is not None
    assert len(plan.status.status["artifacts"]) == 2 and len(plan.artifacts) == 2
    cond = next(c for c in plan.status.status["conditions"] if c["type"] == "ArtifactsTruncated")
    assert (cond["status"], cond["reason"]) == ("True", "TooManyArtifacts")
    assert "2 of 4" in cond["message"]


def _strict(max_per_run: int) -> Any:
    artifacts = dataclasses.replace(SETTINGS.artifacts, max_per_run=max_per_run, strict=True)
    return dataclasses.replace(SETTINGS, artifacts=artifacts)


def test_strict_artifacts_fail_a_run_over_the_cap() -> None:
    """0.9.29's `controller.agentRunArtifacts.strict`: over the cap is an error, not a silent cut."""
    reported = [{"name": f"f{i}", "path": f"/workspace/f{i}", "present": True} for i in range(4)]
    plan = finished(reported, settings=_strict(2))
    assert plan.status is not None and plan.status.phase == "Failed"
    failed = next(c for c in plan.status.status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "ArtifactsLimitExceeded")
    assert "2 of 4" in failed["message"]


def test_strict_artifacts_leave_a_run_within_the_cap_succeeded() -> None:
    reported = [{"name": f"f{i}", "path": f"/workspace/f{i}", "present": True} for i in range(2)]
    plan = finished(reported, settings=_strict(2))
    assert plan.status is not None and plan.status.phase == "Succeeded"


def test_a_run_without_reported_artifacts_creates_none_and_states_no_truncation() -> None:
    plan = finished([])
    assert plan.artifacts == () and plan.status is not None
    assert "ArtifactsTruncated" not in conditions(plan.status.status)


def test_artifacts_are_created_only_at_the_transition_not_on_later_passes() -> None:
    reported = [{"name": "patch", "path": "/workspace/x", "present": True}]
    first = finished(reported)
    assert first.status is not None and first.artifacts
    done = dict(submitted())
    done["status"] = first.status.status
    done["metadata"]["uid"] = "uid-run-1"
    message = json.dumps({"outputs": {}, "artifacts": reported})
    pods = {"run-1-job": [ended_pod("run-1-job", exit_code=0, message=message)]}
    later = decide(snapshot(done, jobs=(job(complete=True),), pods=pods, now=NOW + timedelta(seconds=5)))
    assert later.artifacts == ()  # an expired Artifact is never recreated by its run
    assert format_time(NOW)  # (NOW is the helper's clock)
