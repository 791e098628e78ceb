"""Builders for AgentRun decision tests: runs in a given state, Jobs and Pods as the cache holds them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP
from jangar.conditions import format_time
from jangar.controllers.agentrun.snapshot import RunSnapshot
from jangar.settings import Settings
from tests.unit.scheduler.objects import agent, agent_run, provider
from tests.unit.validation.test_agentrun import FakeLookup, kinded

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"})
RUN_UID = "uid-run-1"


def tuned(**knobs: float) -> Settings:
    """SETTINGS with some grace periods changed."""
    return dataclasses.replace(SETTINGS, tuning=dataclasses.replace(SETTINGS.tuning, **knobs))


def ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


def impl(name: str = "impl-1", **spec: Any) -> dict[str, Any]:
    return {"kind": "ImplementationSpec", "metadata": {"name": name}, "spec": {"text": "do it"} | spec}


def world(*extra: dict[str, Any], agent_spec: dict[str, Any] | None = None) -> FakeLookup:
    return FakeLookup(
        kinded("Agent", agent(**(agent_spec or {}))), kinded("AgentProvider", provider()), impl(), *extra
    )


def run(
    phase: str | None = None,
    *,
    finalizer: bool = True,
    created_ago: float = 10,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    obj = agent_run(**spec)
    meta = obj["metadata"]
    meta["creationTimestamp"] = ago(created_ago)
    meta["resourceVersion"] = "7"
    if finalizer:
        meta["finalizers"] = [FINALIZER_RUNTIME_CLEANUP]
    if annotations:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = ago(1)
    body = dict(status or {})
    if phase is not None:
        body["phase"] = phase
    if body:
        obj["status"] = body
    return obj


def workflow_run(
    phase: str | None = None, steps: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    return run(
        phase,
        runtime="workflow",
        workflow={"steps": steps or [{"name": "plan"}, {"name": "build"}]},
        **kw,
    )


def job(
    name: str = "run-1-job",
    *,
    complete: bool = False,
    failed: str | None = None,
    active: int = 0,
    started_ago: float | None = 5,
    created_ago: float = 6,
    ttl: int | None = None,
    deleting: bool = False,
    succeeded: int | None = None,
    owner_uid: str = RUN_UID,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    conditions = []
    if complete:
        conditions.append({"type": "Complete", "status": "True", "lastTransitionTime": ago(1)})
        status["succeeded"] = 1
        status["completionTime"] = ago(1)
    if failed:
        conditions.append(
            {"type": "Failed", "status": "True", "reason": failed, "lastTransitionTime": ago(1)}
        )
        status["failed"] = 1
    if succeeded is not None:
        status["succeeded"] = succeeded
    if conditions:
        status["conditions"] = conditions
    if active:
        status["active"] = active
    if started_ago is not None:
        status["startTime"] = ago(started_ago)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "agents",
        "uid": f"uid-{name}",
        "creationTimestamp": ago(created_ago),
        "ownerReferences": [{"kind": "AgentRun", "name": "run-1", "uid": owner_uid, "controller": True}],
    }
    if deleting:
        meta["deletionTimestamp"] = ago(1)
    spec: dict[str, Any] = {}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec, "status": status}


def pulling_pod(job_name: str, *, created_ago: float) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{job_name}-abc", "namespace": "agents", "creationTimestamp": ago(created_ago)},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "agent-runner",
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no"}},
                }
            ],
        },
    }


def snapshot(
    obj: dict[str, Any],
    *,
    jobs: tuple[dict[str, Any], ...] = (),
    pods: dict[str, list[dict[str, Any]]] | None = None,
    lookup: FakeLookup | None = None,
    now: datetime = NOW,
    settings: Settings = SETTINGS,
    **extra: Any,
) -> RunSnapshot:
    return RunSnapshot(
        run=obj,
        now=now,
        settings=settings,
        lookup=lookup if lookup is not None else world(),
        jobs={j["metadata"]["name"]: j for j in jobs},
        pods=pods or {},
        **extra,
    )


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """type → (status, reason)."""
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status.get("conditions") or ()}


def ended_pod(
    job_name: str, *, exit_code: int, message: str | None = None, reason: str = ""
) -> dict[str, Any]:
    """A Pod whose agent container has terminated, with the termination message the kubelet kept."""
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if not exit_code else "Error"),
    }
    if message is not None:
        terminated["message"] = message
    return {
        "metadata": {"name": f"{job_name}-xyz", "namespace": "agents", "creationTimestamp": ago(4)},
        "status": {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [{"name": "agent-runner", "state": {"terminated": terminated}}],
        },
    }
