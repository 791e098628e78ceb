"""`plan_debris`: finished runner Pods whose Job is gone (issue 13, drift-0.9.29.md row 19)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.conditions import format_time
from jangar.scheduler.debris import DebrisPlan, finished_at, plan_debris
from jangar.scheduler.retention import ObjectKey
from jangar.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUNNER = {"agents.proompteng.ai/agent-run": "r", "app.kubernetes.io/managed-by": "jangar"}


def settings(mode: str = "delete", cap: int = 2) -> Settings:
    return Settings.from_env(
        {
            "JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE": mode,
            "JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS": "600",
            "JANGAR_RUNTIME_DEBRIS_CLEANUP_MAX_DELETES_PER_NAMESPACE": str(cap),
        }
    )


def pod(
    name: str,
    *,
    ns: str = "a",
    job: str | None = "j",
    owner_uid: str | None = None,
    ended_ago: float = 900,
    phase: str = "Succeeded",
    labels: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{name}",
        "labels": dict(RUNNER if labels is None else labels),
        "creationTimestamp": format_time(NOW - timedelta(seconds=ended_ago + 60)),
    }
    if job is not None:
        meta["labels"]["job-name"] = job
        if owner_uid is not None:
            meta["ownerReferences"] = [{"kind": "Job", "name": job, "uid": owner_uid, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    ended = format_time(NOW - timedelta(seconds=ended_ago))
    return {
        "metadata": meta,
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "agent", "state": {"terminated": {"finishedAt": ended}}}],
        },
    }


def job(name: str = "j", ns: str = "a", uid: str = "job-uid") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": uid}}


def key(name: str, ns: str = "a") -> ObjectKey:
    return ObjectKey(ns, name, f"uid-{name}")


CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], Settings, DebrisPlan]] = [
    (
        "orphaned (owner reference dropped by --cascade=orphan): found and deleted",
        [pod("p")],
        [],
        settings(),
        DebrisPlan(found=(key("p"),), deletes=(key("p"),)),
    ),
    ("its Job is there: not debris", [pod("p", owner_uid="job-uid")], [job()], settings(), DebrisPlan()),
    (
        "its Job was recreated under the same name (another uid): debris",
        [pod("p", owner_uid="old-uid")],
        [job()],
        settings(),
        DebrisPlan(found=(key("p"),), deletes=(key("p"),)),
    ),
    (
        "a Job of that name in another namespace does not count",
        [pod("p")],
        [job(ns="b")],
        settings(),
        DebrisPlan(found=(key("p"),), deletes=(key("p"),)),
    ),
    (
        "still running, too young, being deleted: not debris",
        [pod("run", phase="Running"), pod("young", ended_ago=599), pod("going", deleting=True)],
        [],
        settings(),
        DebrisPlan(),
    ),
    (
        "not a runner pod (no run label, or not managed by jangar), or no Job at all: left alone",
        [
            pod("user", labels={"app": "x"}),
            pod("foreign", labels={"agents.proompteng.ai/agent-run": "r"}),
            pod("bare", job=None),
        ],
        [],
        settings(),
        DebrisPlan(),
    ),
    (
        "failed pods count too; cap 2 per namespace, oldest first",
        [pod("p1", ended_ago=1000), pod("p2", ended_ago=3000, phase="Failed"), pod("p3", ended_ago=2000)],
        [],
        settings(),
        DebrisPlan(found=(key("p2"), key("p3"), key("p1")), deletes=(key("p2"), key("p3"))),
    ),
    (
        "cap 0 is no cap, and the cap is per namespace",
        [pod("p1"), pod("p2"), pod("q1", ns="b")],
        [],
        settings(cap=0),
        DebrisPlan(
            found=(key("p1"), key("p2"), key("q1", "b")), deletes=(key("p1"), key("p2"), key("q1", "b"))
        ),
    ),
    (
        "mode report: found, never deleted",
        [pod("p")],
        [],
        settings("report"),
        DebrisPlan(found=(key("p"),)),
    ),
    ("mode disabled: nothing", [pod("p")], [], settings("disabled"), DebrisPlan()),
]


@pytest.mark.parametrize(
    ("pods", "jobs", "config", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_debris(
    pods: list[dict[str, Any]], jobs: list[dict[str, Any]], config: Settings, expected: DebrisPlan
) -> None:
    assert plan_debris(pods, jobs, NOW, config) == expected


def test_finished_at_is_the_last_container_end_else_the_start_else_the_creation() -> None:
    p = pod("p", ended_ago=100)
    p["status"]["initContainerStatuses"] = [
        {"state": {"terminated": {"finishedAt": format_time(NOW - timedelta(seconds=500))}}}
    ]
    assert finished_at(p) == NOW - timedelta(seconds=100)
    p["status"] = {"phase": "Failed", "startTime": format_time(NOW - timedelta(seconds=50))}
    assert finished_at(p) == NOW - timedelta(seconds=50)
    p["status"] = {"phase": "Failed"}
    assert finished_at(p) == NOW - timedelta(seconds=160)


def test_the_default_mode_is_report_and_the_0_9_29_names_are_read() -> None:
    assert Settings().runtime_debris.mode == "report"
    config = Settings.from_env({"AGENTS_RUNTIME_DEBRIS_CLEANUP_MODE": "delete"})
    assert config.runtime_debris.mode == "delete"
