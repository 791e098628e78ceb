"""`decide_artifact` (validation, location, lifecycle) and `run_artifacts` (a run's reported artifacts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.conditions import format_time
from jangar.controllers.artifact import decide_artifact
from jangar.scheduler.artifacts import artifact_uri, run_artifacts

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DIGEST = "a" * 64


def artifact(*, created_days_ago: float = 1, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Artifact",
        "metadata": {
            "name": "run-logs",
            "namespace": "agents",
            "generation": 1,
            "uid": "uid-a",
            "creationTimestamp": format_time(NOW - timedelta(days=created_days_ago)),
        },
        "spec": spec,
    }


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("spec", "uri"),
    [
        ({"storageRef": {"name": "default-storage"}}, "storage://default-storage"),
        ({"storageRef": {"name": "s3"}, "key": "runs/1/log"}, "storage://s3/runs/1/log"),
        ({}, "artifact://agents/run-logs"),
        ({"uri": "pvc://shared/out/patch", "storageRef": {"name": "s3"}}, "pvc://shared/out/patch"),
    ],
)
def test_the_uri_says_where_the_content_is(spec: dict[str, Any], uri: str) -> None:
    plan = decide_artifact(artifact(**spec), NOW)
    assert plan.phase == "Ready" and plan.status is not None
    assert plan.status["uri"] == uri
    assert conds(plan.status)["Ready"] == ("True", "Recorded")
    assert "does not copy or upload" in plan.message and "uploaded" not in plan.reason.lower()


def test_checksum_and_size_are_reported() -> None:
    plan = decide_artifact(artifact(checksum=f"sha256:{DIGEST}", sizeBytes=12), NOW)
    assert plan.status is not None
    assert plan.status["checksum"] == f"sha256:{DIGEST}" and plan.status["sizeBytes"] == 12


@pytest.mark.parametrize(
    ("spec", "reason"),
    [({"checksum": "md5:abc"}, "InvalidChecksum"), ({"storageRef": {}}, "MissingStorageName")],
)
def test_invalid_artifacts(spec: dict[str, Any], reason: str) -> None:
    plan = decide_artifact(artifact(**spec), NOW)
    assert plan.phase == "Invalid" and plan.status is not None
    assert conds(plan.status)["InvalidSpec"] == ("True", reason)
    assert conds(plan.status)["Ready"] == ("False", reason)


def test_ttl_days_requeue_until_expiry_then_delete() -> None:
    live = decide_artifact(artifact(created_days_ago=6.99, lifecycle={"ttlDays": 7}), NOW)
    assert not live.delete and live.requeue_after is not None and live.requeue_after <= 3600
    assert live.status is not None and live.status["expiresAt"]
    expired = decide_artifact(artifact(created_days_ago=7, lifecycle={"ttlDays": 7}), NOW)
    assert expired.delete and expired.status is None


def test_without_ttl_an_artifact_is_kept_and_not_requeued() -> None:
    plan = decide_artifact(artifact(lifecycle={"ttlDays": 0}), NOW)
    assert not plan.delete and plan.requeue_after is None


# -- a run's artifacts ---------------------------------------------------------------------------------


def finished_run(workspace: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if workspace:
        spec["workspaceRef"] = {"name": workspace}
    return {"metadata": {"name": "run-1", "namespace": "agents", "uid": "uid-run"}, "spec": spec}


@pytest.mark.parametrize(
    ("entry", "workspace", "uri"),
    [
        ({"path": "/workspace/shared/out/a.patch"}, "shared", "pvc://shared/out/a.patch"),
        ({"path": "/workspace/shared/out/a.patch"}, None, "/workspace/shared/out/a.patch"),
        ({"path": "/workspace/other/a", "url": "https://x/a"}, "shared", "https://x/a"),
        ({"path": "/workspace/shared"}, "shared", "/workspace/shared"),
        ({}, "shared", None),
    ],
)
def test_artifact_uri(entry: dict[str, Any], workspace: str | None, uri: str | None) -> None:
    assert artifact_uri(entry, workspace) == uri


def test_run_artifacts_are_owned_labelled_and_carry_size_and_checksum() -> None:
    reported = [
        {"name": "patch", "path": "/workspace/shared/a.patch", "present": True, "size": 3, "sha256": DIGEST},
        {"name": "absent", "path": "/workspace/b", "present": False},
        {"name": "short-digest", "path": "/tmp/c", "sha256": "ab"},
        {"path": "nameless"},
    ]
    result = run_artifacts(finished_run("shared"), reported, limit=10, ttl_days=3)
    assert [e["name"] for e in result.entries] == ["patch", "absent", "short-digest"]
    assert result.reported == 3 and not result.truncated
    names = [o["metadata"]["name"] for o in result.objects]
    assert names == ["run-1-patch", "run-1-short-digest"]  # an absent file is not recorded
    first = result.objects[0]
    assert first["metadata"]["ownerReferences"][0]["uid"] == "uid-run"
    assert first["metadata"]["labels"] == {"agents.proompteng.ai/agent-run": "run-1"}
    assert first["spec"] == {
        "runRef": {"name": "run-1"},
        "uri": "pvc://shared/a.patch",
        "path": "/workspace/shared/a.patch",
        "sizeBytes": 3,
        "checksum": f"sha256:{DIGEST}",
        "lifecycle": {"ttlDays": 3},
    }
    assert "checksum" not in result.objects[1]["spec"]  # not a sha256 digest


def test_run_artifacts_are_capped_and_say_so() -> None:
    reported = [{"name": f"a{i}", "path": f"/tmp/{i}"} for i in range(5)]
    result = run_artifacts(finished_run(), reported, limit=2)
    assert len(result.entries) == 2 and len(result.objects) == 2
    assert result.reported == 5 and result.truncated


def test_names_that_collide_after_sanitising_stay_distinct() -> None:
    reported = [{"name": "A_b", "path": "/tmp/1"}, {"name": "a-b", "path": "/tmp/2"}]
    names = [o["metadata"]["name"] for o in run_artifacts(finished_run(), reported, limit=5).objects]
    assert len(set(names)) == 2
