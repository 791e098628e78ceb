"""`decide_workspace(workspace, claim, now)`: every row of the Workspace decision table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.conditions import format_time
from jangar.controllers.workspace import FOREIGN_CLAIM_REQUEUE_SECONDS, decide_workspace

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
UID = "uid-ws"


def ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


def workspace(
    *, ttl: int | None = None, created_ago: float = 10, phase: str | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"size": "1Gi"} | spec
    if ttl is not None:
        body["ttlSeconds"] = ttl
    obj: dict[str, Any] = {
        "apiVersion": "workspaces.proompteng.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {
            "name": "shared",
            "namespace": "agents",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": ago(created_ago),
        },
        "spec": {k: v for k, v in body.items() if v is not None},
    }
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def claim(phase: str | None = "Bound", *, owner: str = UID, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "shared",
        "namespace": "agents",
        "ownerReferences": [{"kind": "Workspace", "name": "shared", "uid": owner, "controller": True}],
    }
    if deleting:
        meta["deletionTimestamp"] = ago(1)
    return {
        "metadata": meta,
        "spec": {"volumeName": "pv-1" if phase == "Bound" else None, "storageClassName": "jangar-local"},
        "status": {"phase": phase, "capacity": {"storage": "1Gi"}} if phase else {},
    }


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_no_claim_creates_one_named_like_the_workspace_owned_and_labelled() -> None:
    plan = decide_workspace(workspace(storageClassName="jangar-local"), None, NOW)
    assert plan.create is not None and plan.phase == "Pending" and plan.reason == "Provisioning"
    meta = plan.create["metadata"]
    assert meta["name"] == "shared" and meta["labels"] == {"workspaces.proompteng.ai/workspace": "shared"}
    assert meta["ownerReferences"][0]["uid"] == UID and meta["ownerReferences"][0]["controller"] is True
    assert plan.create["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "jangar-local",
    }
    assert plan.status is not None and plan.status["mountPath"] == "/workspace/shared"


@pytest.mark.parametrize(
    ("claim_phase", "phase", "reason", "ready"),
    [
        ("Bound", "Ready", "Bound", "True"),
        ("Lost", "Failed", "Lost", "False"),
        ("Pending", "Pending", "Pending", "False"),
        (None, "Pending", "Pending", "False"),
    ],
)
def test_the_claims_phase_is_the_workspaces(
    claim_phase: str | None, phase: str, reason: str, ready: str
) -> None:
    plan = decide_workspace(workspace(), claim(claim_phase), NOW)
    assert plan.create is None and plan.delete_claim is None
    assert (plan.phase, plan.reason) == (phase, reason)
    assert plan.status is not None
    assert conds(plan.status)["Ready"] == (ready, reason)
    assert conds(plan.status)["Bound"][0] == ("True" if claim_phase == "Bound" else "False")
    if claim_phase == "Bound":
        assert plan.status["volumeName"] == "pv-1" and plan.status["capacity"] == "1Gi"


def test_an_expired_workspace_deletes_its_claim_and_creates_nothing() -> None:
    plan = decide_workspace(workspace(ttl=60, created_ago=61), claim(), NOW)
    assert plan.delete_claim == "shared" and plan.create is None
    assert plan.phase == "Expired" and plan.status is not None
    assert conds(plan.status)["Ready"] == ("False", "Expired")
    assert plan.status["expiresAt"] == ago(1)
    assert plan.requeue_after is None


def test_an_expired_workspace_without_a_claim_is_never_given_one_again() -> None:
    again = decide_workspace(workspace(ttl=60, created_ago=600, phase="Expired"), None, NOW)
    assert again.create is None and again.delete_claim is None and again.phase == "Expired"


def test_expired_stays_expired_even_when_the_ttl_is_removed() -> None:
    plan = decide_workspace(workspace(phase="Expired"), None, NOW)
    assert plan.create is None and plan.phase == "Expired"


def test_expiry_does_not_delete_a_claim_someone_else_controls() -> None:
    plan = decide_workspace(workspace(ttl=60, created_ago=61), claim(owner="other"), NOW)
    assert plan.delete_claim is None and plan.phase == "Expired"


def test_before_expiry_the_pass_is_requeued_for_the_expiry_moment() -> None:
    plan = decide_workspace(workspace(ttl=100, created_ago=40), claim(), NOW)
    assert plan.phase == "Ready" and plan.requeue_after == pytest.approx(60.0)


def test_a_claim_with_the_name_but_another_owner_is_not_adopted() -> None:
    plan = decide_workspace(workspace(), claim(owner="someone-else"), NOW)
    assert plan.create is None and plan.phase == "Pending" and plan.reason == "ClaimNameTaken"
    assert plan.requeue_after == FOREIGN_CLAIM_REQUEUE_SECONDS


def test_a_claim_being_deleted_is_waited_for() -> None:
    plan = decide_workspace(workspace(), claim(deleting=True), NOW)
    assert plan.create is None and plan.reason == "ClaimDeleting" and plan.requeue_after == 10.0


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"size": None}, "MissingSize"),
        ({"size": "lots"}, "InvalidSize"),
        ({"size": "0"}, "InvalidSize"),
        ({"accessModes": ["ReadWriteSometimes"]}, "InvalidAccessMode"),
    ],
)
def test_an_invalid_spec_creates_nothing(spec: dict[str, Any], reason: str) -> None:
    plan = decide_workspace(workspace(**spec), None, NOW)
    assert plan.create is None and plan.phase == "Invalid" and plan.reason == reason
    assert plan.status is not None and conds(plan.status)["InvalidSpec"] == ("True", reason)


def test_a_deleted_workspace_is_left_to_garbage_collection() -> None:
    ws = workspace()
    ws["metadata"]["deletionTimestamp"] = ago(1)
    plan = decide_workspace(ws, claim(), NOW)
    assert plan.status is None and plan.create is None and plan.delete_claim is None
