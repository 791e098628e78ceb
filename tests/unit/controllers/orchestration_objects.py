"""Builders for OrchestrationRun decision tests: runs, orchestrations, children and deliveries as the cache
holds them, and a helper that plays the apply step (children appear, status written) for multi-pass tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from jangar.api.contract import ANNOTATION_ORCHESTRATION_ATTEMPT, LABEL_ORCHESTRATION_STEP
from jangar.conditions import format_time
from jangar.controllers.orchestrationrun.decide import decide
from jangar.controllers.orchestrationrun.plan import OrchestrationRunPlan
from jangar.controllers.orchestrationrun.snapshot import OrchestrationRunSnapshot
from jangar.scheduler.naming import label_value
from jangar.settings import ControllerTuning

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
RUN_UID = "uid-orun-1"
NS = "ns"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def ts(seconds: float) -> str:
    return format_time(at(seconds))


def agent_step(name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": name,
        "kind": "AgentRun",
        "agentRef": {"name": "coder"},
        "implementationSpecRef": {"name": "task"},
    }
    if deps:
        step["dependsOn"] = list(deps)
    return step | extra


def tool_step(name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name, "kind": "ToolRun", "toolRef": {"name": "echo"}}
    if deps:
        step["dependsOn"] = list(deps)
    return step | extra


def step(name: str, kind: str, *deps: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": kind}
    if deps:
        out["dependsOn"] = list(deps)
    return out | extra


def orchestration(*steps: Mapping[str, Any], name: str = "flow") -> dict[str, Any]:
    return {
        "apiVersion": "orchestration.proompteng.ai/v1alpha1",
        "kind": "Orchestration",
        "metadata": {"name": name, "namespace": NS, "uid": "uid-orch"},
        "spec": {"steps": [dict(s) for s in steps]},
    }


def orun(
    *,
    name: str = "r1",
    phase: str | None = None,
    steps: list[dict[str, Any]] | None = None,
    parameters: dict[str, str] | None = None,
    cancel: bool = False,
    created: float = -10,
    orchestration_name: str | None = "flow",
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": RUN_UID,
        "generation": 1,
        "resourceVersion": "5",
        "creationTimestamp": ts(created),
    }
    if cancel:
        meta["annotations"] = {"agents.proompteng.ai/cancel": "true"}
    spec: dict[str, Any] = {"parameters": parameters or {}}
    if orchestration_name:
        spec["orchestrationRef"] = {"name": orchestration_name}
    body = dict(status or {})
    if phase:
        body["phase"] = phase
    if steps is not None:
        body["stepStatuses"] = steps
    obj: dict[str, Any] = {
        "apiVersion": "orchestration.proompteng.ai/v1alpha1",
        "kind": "OrchestrationRun",
        "metadata": meta,
        "spec": spec,
    }
    if body:
        obj["status"] = body
    return obj


def child(
    kind: str,
    name: str,
    step_name: str,
    attempt: int = 1,
    *,
    phase: str | None = None,
    status: dict[str, Any] | None = None,
    created: float = 0,
    uid: str | None = None,
    cancel: bool = False,
    owner: str = RUN_UID,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": uid or f"uid-{name}",
        "creationTimestamp": ts(created),
        "labels": {LABEL_ORCHESTRATION_STEP: label_value(step_name)},
        "annotations": {ANNOTATION_ORCHESTRATION_ATTEMPT: str(attempt)},
        "ownerReferences": [{"kind": "OrchestrationRun", "name": "r1", "uid": owner, "controller": True}],
    }
    if cancel:
        meta["annotations"]["agents.proompteng.ai/cancel"] = "true"
    body = dict(status or {})
    if phase:
        body["phase"] = phase
    return {"kind": kind, "metadata": meta, "status": body}


def delivery(
    name: str,
    *,
    signal: str = "go",
    delivery_id: str | None = None,
    payload: Any = None,
    created: float = 0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"signalRef": {"name": signal}}
    if delivery_id:
        spec["deliveryId"] = delivery_id
    if payload is not None:
        spec["payload"] = payload
    return {
        "kind": "SignalDelivery",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "creationTimestamp": ts(created)},
        "spec": spec,
    }


def decision(
    step_name: str, verdict: str, *, policy: str = "gate-policy", by: str = "alice", created: float = 0
) -> dict[str, Any]:
    return delivery(
        f"r1-{step_name}-decision",
        signal=policy,
        delivery_id=f"approval:r1:{step_name}",
        payload={
            "decision": verdict,
            "decidedBy": by,
            "reason": "looks good" if verdict == "approved" else "no",
        },
        created=created,
    )


def policy(name: str = "gate-policy", **spec: Any) -> dict[str, Any]:
    return {"kind": "ApprovalPolicy", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def snap(
    run: Mapping[str, Any],
    orch: Mapping[str, Any] | None,
    *,
    now: datetime = NOW,
    children: list[dict[str, Any]] | None = None,
    policies: dict[str, Any] | None = None,
    deliveries: dict[str, list[dict[str, Any]]] | None = None,
    tuning: ControllerTuning | None = None,
) -> OrchestrationRunSnapshot:
    return OrchestrationRunSnapshot(
        run=run,
        now=now,
        orchestration=orch,
        children={(c["kind"], c["metadata"]["name"]): c for c in children or []},
        policies=policies or {},
        deliveries=deliveries or {},
        tuning=tuning or ControllerTuning(reference_grace_seconds=300.0, missing_job_grace_seconds=60.0),
    )


def steps_of(plan: OrchestrationRunPlan) -> dict[str, dict[str, Any]]:
    assert plan.status is not None
    return {s["name"]: s for s in plan.status.get("stepStatuses") or []}


def cond(plan: OrchestrationRunPlan, type_: str) -> dict[str, Any]:
    assert plan.status is not None
    for c in plan.status.get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


class World:
    """A tiny simulation of the apply step: the run's status is written, created children appear (Pending),
    and tests change children's phases between passes."""

    def __init__(self, orch: Mapping[str, Any], run: dict[str, Any] | None = None, **snap_kw: Any) -> None:
        self.orch = orch
        self.run = run or orun()
        self.children: dict[tuple[str, str], dict[str, Any]] = {}
        self.snap_kw = snap_kw
        self.plans: list[OrchestrationRunPlan] = []
        self.created: list[str] = []

    def step(self, now: datetime = NOW) -> OrchestrationRunPlan:
        s = snap(self.run, self.orch, now=now, children=list(self.children.values()), **self.snap_kw)
        plan = decide(s)
        for c in plan.create:
            key = (c.kind, c.name)
            if key not in self.children:
                obj = dict(c.manifest)
                obj["metadata"] = {
                    **obj["metadata"],
                    "uid": f"uid-{c.name}",
                    "creationTimestamp": format_time(now),
                }
                obj["status"] = {}
                self.children[key] = obj
                self.created.append(c.name)
        for cancel in plan.cancel:
            meta = self.children[(cancel.kind, cancel.name)]["metadata"]
            meta.setdefault("annotations", {})["agents.proompteng.ai/cancel"] = "true"
        if plan.status is not None:
            self.run = {**self.run, "status": plan.status}
        self.plans.append(plan)
        return plan

    def finish(self, name: str, phase: str, status: dict[str, Any] | None = None) -> None:
        for (_, n), obj in self.children.items():
            if n == name:
                obj["status"] = {"phase": phase, **(status or {})}
                return
        raise KeyError(name)

    @property
    def phase(self) -> str:
        return str((self.run.get("status") or {}).get("phase"))

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in (self.run.get("status") or {}).get("stepStatuses") or []}
