"""Run one generated resource of any kind through jangar's validation and decision code, and check the result.

`exercise(kind, spec)` builds the object (metadata as the API server sets it) and runs:

* the kind's pydantic model (`registry.by_kind(kind).model.model_validate`): a `ValidationError` is a
  rejection, any other exception a crash;
* the kind's controller decision, without an API server:
  - AgentRun, ToolRun, OrchestrationRun, Schedule: the pure `decide(snapshot)` (AgentRun once more with
    admission's `Admit` when the plan asks for it), the run in a few cached states (new, Running with a Job);
  - Workspace, Artifact: `decide_workspace` / `decide_artifact`;
  - the supporting kinds (Agent, AgentProvider, ImplementationSpec, ImplementationSource, Memory,
    VersionControlProvider, SecretBinding, Orchestration, Tool, Signal, SignalDelivery, ApprovalPolicy):
    the real `SupportingReconciler.reconcile` over a `FakeCache` and a fake client, and Budget's
    `BudgetReconciler.reconcile`; the status they write is what is checked;
  - the kinds a run reads (Agent, AgentProvider, ImplementationSpec, Memory, VersionControlProvider,
    SecretBinding, Tool, Orchestration) also as the dependency of the sample run's decision.

`check(outcome)` raises `AssertionError` naming the broken rule: every status is JSON, every condition is
Kubernetes-shaped (type, True/False/Unknown, a CamelCase reason, a message within the CRD's 32 KiB), every
event has a CamelCase reason and a Warning one a message (the recorder truncates long ones), and a rejected resource (phase Invalid/Failed/Error, or
InvalidSpec=True) has a condition with a reason and a non-empty message saying why.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic

from jangar.admission import Admit
from jangar.api import registry
from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP
from jangar.api.refs import ref_for
from jangar.conditions import MAX_MESSAGE_LENGTH
from jangar.controllers import indexes as ix
from jangar.controllers.agent import check_agent
from jangar.controllers.agentprovider import make_check_agent_provider
from jangar.controllers.agentrun.decide import decide as decide_agentrun
from jangar.controllers.agentrun.snapshot import RunSnapshot
from jangar.controllers.artifact import decide_artifact
from jangar.controllers.budget import BudgetReconciler
from jangar.controllers.budget_hold import install_budget_indexes
from jangar.controllers.implementationsource import make_check_implementation_source
from jangar.controllers.implementationspec import check_implementation_spec
from jangar.controllers.kinds import CONFIGMAPS, SECRETS
from jangar.controllers.memory import check_memory
from jangar.controllers.orchestration import check_orchestration
from jangar.controllers.orchestrationrun.decide import decide as decide_orchestrationrun
from jangar.controllers.orchestrationrun.snapshot import OrchestrationRunSnapshot
from jangar.controllers.schedule.decide import decide as decide_schedule
from jangar.controllers.schedule.snapshot import ScheduleSnapshot, cronjob_inputs
from jangar.controllers.secretbinding import check_secret_binding
from jangar.controllers.signals import (
    check_approval_policy,
    check_signal,
    install_signal_indexes,
    make_check_signal_delivery,
)
from jangar.controllers.supporting import CheckEnv, CheckFunc, SupportingReconciler
from jangar.controllers.tool import check_tool
from jangar.controllers.toolrun.decide import decide as decide_toolrun
from jangar.controllers.toolrun.snapshot import ToolRunSnapshot
from jangar.controllers.versioncontrolprovider import check_vcs_provider
from jangar.controllers.workspace import decide_workspace
from jangar.runtime import JsonObject, NotFoundError, Request, ResourceRef
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import Settings
from tests.unit.api.samples import sample
from tests.unit.fuzz.strategies import NAMES, base_spec
from tests.unit.validation.test_agentrun import FakeLookup

__all__ = ["NOW", "Outcome", "check", "exercise"]

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
NS = "agents"
SETTINGS = Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"})
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
REJECTED_PHASES = frozenset({"Invalid", "Failed", "Error"})
#: condition types whose True status is a problem (the rest: False is)
PROBLEM_WHEN_TRUE = frozenset({"InvalidSpec", "Unreachable", "Failed", "Blocked", "Degraded", "Stalled"})

#: kind → the kind of the run whose decision reads it (as a dependency of the sample run)
DEPENDENCY_OF = {
    "Agent": "AgentRun",
    "AgentProvider": "AgentRun",
    "ImplementationSpec": "AgentRun",
    "Memory": "AgentRun",
    "VersionControlProvider": "AgentRun",
    "SecretBinding": "AgentRun",
    "Tool": "ToolRun",
    "Orchestration": "OrchestrationRun",
}

_LOOP = asyncio.new_event_loop()


@dataclass
class Outcome:
    """What one resource produced: the statuses and events the controller would write."""

    kind: str
    obj: Mapping[str, Any]
    model_valid: bool = False
    statuses: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    rejected: bool = False


def _meta(kind: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NS,
        "uid": f"uid-{kind.lower()}-{name}",
        "generation": 3,
        "resourceVersion": "11",
        "creationTimestamp": "2026-06-01T11:59:00Z",
    }


def build(kind: str, spec: Any, name: str | None = None) -> dict[str, Any]:
    base = sample(kind)
    meta = _meta(kind, name or NAMES.get(kind) or base["metadata"]["name"])
    if kind in ("AgentRun", "ToolRun", "OrchestrationRun"):
        meta["finalizers"] = [FINALIZER_RUNTIME_CLEANUP]
    return {"apiVersion": base["apiVersion"], "kind": kind, "metadata": meta, "spec": spec}


def _samples(*kinds: str) -> list[dict[str, Any]]:
    return [build(k, base_spec(k)) for k in kinds]


# -- a fake API server for the checks: Secrets and ConfigMaps exist with the usual keys ----------------


class FakeClient:
    """`get` answers Secrets and ConfigMaps named like the samples' (others are NotFound); `update_status`
    records the status written."""

    DATA = {
        "token": "dG9rZW4=",
        "privateKey": "a2V5",
        "private-key": "a2V5",
        "password": "cHc=",
        "url": "cG9zdGdyZXM6Ly91OnBAZGIvYXBw",  # postgres://u:p@db/app
        "uri": "cG9zdGdyZXM6Ly91OnBAZGIvYXBw",
        "auth.json": "e30=",
        "webhook-secret": "c2VjcmV0",
    }

    def __init__(self) -> None:
        self.written: list[tuple[str, Mapping[str, Any]]] = []

    async def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> JsonObject:
        if ref in (SECRETS, CONFIGMAPS) and not name.startswith("missing"):
            return {"metadata": {"name": name, "namespace": namespace}, "data": dict(self.DATA)}
        raise NotFoundError(404, "NotFound", f"{ref.plural} {name!r} not found")

    async def update_status(self, ref: ResourceRef, obj: JsonObject, **_: Any) -> JsonObject:
        self.written.append((ref.kind, copy.deepcopy(obj["status"])))
        return obj


def _run(coro: Any) -> Any:
    return _LOOP.run_until_complete(coro)


SUPPORTING_CHECKS: dict[str, CheckFunc] = {
    "Agent": check_agent,
    "AgentProvider": make_check_agent_provider(lambda: NOW),
    "ImplementationSpec": check_implementation_spec,
    "ImplementationSource": make_check_implementation_source(True),
    "Memory": check_memory,
    "VersionControlProvider": check_vcs_provider,
    "SecretBinding": check_secret_binding,
    "Orchestration": check_orchestration,
    "Tool": check_tool,
    "Signal": check_signal,
    "SignalDelivery": make_check_signal_delivery(lambda: NOW),
    "ApprovalPolicy": check_approval_policy,
}


def _cache(*objs: Mapping[str, Any]) -> FakeCache:
    cache = FakeCache()
    install_signal_indexes(cache)  # type: ignore[arg-type]
    install_budget_indexes(cache)  # type: ignore[arg-type]
    ix.install_indexes(cache)  # type: ignore[arg-type]
    for o in objs:
        cache.add(ref_for(o["kind"]), dict(o))
    return cache


def _reconcile_supporting(out: Outcome, obj: dict[str, Any]) -> None:
    kind = obj["kind"]
    cache = _base_cache(kind)
    cache.add(ref_for(kind), obj)
    try:
        _reconcile_in(out, obj, cache)
    finally:
        cache.delete(ref_for(kind), obj["metadata"]["name"], NS)


@functools.cache
def _base_cache(kind: str) -> FakeCache:
    """The samples of every other kind, built once per kind (the fuzzed object is added and removed)."""
    return _cache(*_samples(*(k for k in registry_kinds() if k != kind)))


def _reconcile_in(out: Outcome, obj: dict[str, Any], cache: FakeCache) -> None:
    kind = obj["kind"]
    client = FakeClient()
    events = FakeEventRecorder()
    env = CheckEnv(settings=SETTINGS, client=client, cache=cache)  # type: ignore[arg-type]
    req = Request(NS, obj["metadata"]["name"])
    if kind == "Budget":
        _run(BudgetReconciler(client, cache, events, lambda: NOW).reconcile(req))  # type: ignore[arg-type]
    else:
        reconciler = SupportingReconciler(ref_for(kind), SUPPORTING_CHECKS[kind], env, events, lambda: NOW)
        _run(reconciler.reconcile(req))
    out.statuses += client.written
    out.events += [(e.type, e.reason, e.message) for e in events.events]


def registry_kinds() -> list[str]:
    return sorted(info.kind for info in registry.KINDS)


# -- the runs' decisions --------------------------------------------------------------------------------


def _job(run: Mapping[str, Any], name: str) -> dict[str, Any]:
    meta = run["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-job-{name}",
            "creationTimestamp": "2026-06-01T11:59:30Z",
            "ownerReferences": [
                {"kind": run["kind"], "name": meta["name"], "uid": meta["uid"], "controller": True}
            ],
        },
        "spec": {},
        "status": {"active": 1},
    }


def _running(run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run as it is after its Job was created (status.jobRef set, the Job in the cache)."""
    job_name = f"{run['metadata']['name']}-job"
    running = copy.deepcopy(run)
    running["status"] = {
        "phase": "Running",
        "startedAt": "2026-06-01T11:59:30Z",
        "jobRef": {"name": job_name, "namespace": NS},
        "runtimeRef": {"type": "job", "name": job_name, "namespace": NS},
        "queue": {"admittedAt": "2026-06-01T11:59:30Z"},
    }
    return running, {job_name: _job(run, job_name)}


def _agentrun(out: Outcome, run: dict[str, Any], lookup: FakeLookup, *, running: bool = True) -> None:
    states = ((run, {}), _running(run)) if running else ((run, {}),)
    for obj, jobs in states:
        snap = RunSnapshot(run=obj, now=NOW, settings=SETTINGS, lookup=lookup, jobs=jobs)
        plan = decide_agentrun(snap)
        if plan.needs_admission:
            plan = decide_agentrun(snap, Admit(NOW))
        if plan.status is not None:
            out.statuses.append(("AgentRun", plan.status.status))
        if plan.create is not None:
            json.dumps(plan.create.job, allow_nan=False)


def _agentrun_lookup(dependency: Mapping[str, Any] | None = None) -> FakeLookup:
    kinds = (
        "Agent",
        "AgentProvider",
        "ImplementationSpec",
        "Memory",
        "VersionControlProvider",
        "SecretBinding",
    )
    objs = {k: build(k, base_spec(k)) for k in kinds}
    if dependency is not None:
        objs[dependency["kind"]] = dict(dependency)
    return FakeLookup(*objs.values())


def _toolrun(out: Outcome, toolrun: dict[str, Any], tool: Mapping[str, Any] | None) -> None:
    for obj, jobs in ((toolrun, {}), _running(toolrun)):
        plan = decide_toolrun(ToolRunSnapshot(toolrun=obj, now=NOW, settings=SETTINGS, tool=tool, jobs=jobs))
        if plan.status is not None:
            out.statuses.append(("ToolRun", plan.status))
        if plan.event is not None:
            out.events.append((plan.event.type, plan.event.reason, plan.event.message))
        if plan.create is not None:
            json.dumps(plan.create.job, allow_nan=False)


def _orchestrationrun(out: Outcome, run: dict[str, Any], orchestration: Mapping[str, Any] | None) -> None:
    plan = decide_orchestrationrun(
        OrchestrationRunSnapshot(run=run, now=NOW, orchestration=orchestration, tuning=SETTINGS.tuning)
    )
    if plan.status is not None:
        out.statuses.append(("OrchestrationRun", plan.status))
    out.events += [(e.type, e.reason, e.message) for e in plan.events]
    for child in plan.create:
        json.dumps(child.manifest, allow_nan=False)


def _schedule(out: Outcome, schedule: dict[str, Any]) -> None:
    target = build("AgentRun", base_spec("AgentRun"))
    snap = ScheduleSnapshot(
        schedule=schedule, now=NOW, inputs=cronjob_inputs(schedule, SETTINGS), target=target
    )
    plan = decide_schedule(snap)
    if plan.status is not None:
        out.statuses.append(("Schedule", plan.status))
    out.events += [(e.type, e.reason, e.message) for e in plan.events]
    for write in plan.writes:
        json.dumps(write.desired, allow_nan=False)


def _workspace(out: Outcome, obj: dict[str, Any]) -> None:
    plan = decide_workspace(obj, None, NOW)
    if plan.status is not None:
        out.statuses.append(("Workspace", plan.status))
    if plan.create is not None:
        json.dumps(plan.create, allow_nan=False)


def _artifact(out: Outcome, obj: dict[str, Any]) -> None:
    plan = decide_artifact(obj, NOW)
    if plan.status is not None:
        out.statuses.append(("Artifact", plan.status))


def exercise(kind: str, spec: Any) -> Outcome:
    """Run a `kind` whose spec is `spec` through its model and its controller's decision."""
    obj = build(kind, spec)
    out = Outcome(kind, obj)
    model = registry.by_kind(kind).model
    try:
        model.model_validate(copy.deepcopy(obj))
        out.model_valid = True
    except pydantic.ValidationError:
        out.model_valid = False
    if kind == "AgentRun":
        _agentrun(out, obj, _agentrun_lookup())
    elif kind == "ToolRun":
        _toolrun(out, obj, build("Tool", base_spec("Tool")))
    elif kind == "OrchestrationRun":
        _orchestrationrun(out, obj, build("Orchestration", base_spec("Orchestration")))
    elif kind == "Schedule":
        _schedule(out, obj)
    elif kind == "Workspace":
        _workspace(out, obj)
    elif kind == "Artifact":
        _artifact(out, obj)
    else:
        _reconcile_supporting(out, obj)
    dependent = DEPENDENCY_OF.get(kind)
    if dependent == "AgentRun":
        _agentrun(out, build("AgentRun", base_spec("AgentRun")), _agentrun_lookup(obj), running=False)
    elif dependent == "ToolRun":
        _toolrun(out, build("ToolRun", base_spec("ToolRun")), obj)
    elif dependent == "OrchestrationRun":
        _orchestrationrun(out, build("OrchestrationRun", base_spec("OrchestrationRun")), obj)
    out.rejected = any(_is_rejection(s) for _, s in out.statuses)
    return out


# -- the rules ------------------------------------------------------------------------------------------


def _is_problem(cond: Mapping[str, Any]) -> bool:
    bad = "True" if cond.get("type") in PROBLEM_WHEN_TRUE else "False"
    return cond.get("status") == bad and cond.get("type") in ({"Ready", "Succeeded"} | PROBLEM_WHEN_TRUE)


def _is_rejection(status: Mapping[str, Any]) -> bool:
    if status.get("phase") in REJECTED_PHASES:
        return True
    return any(
        c.get("type") == "InvalidSpec" and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def check(out: Outcome) -> None:
    """Raise AssertionError naming the first broken rule."""
    for owner, status in out.statuses:
        where = f"{out.kind} → {owner} status"
        json.dumps(status, allow_nan=False)
        conds = list(status.get("conditions") or ())
        for c in conds:
            assert isinstance(c.get("type"), str) and c["type"], f"{where}: condition without a type: {c}"
            assert c.get("status") in ("True", "False", "Unknown"), f"{where}: bad condition status: {c}"
            reason = c.get("reason")
            assert isinstance(reason, str) and CAMEL.match(reason), f"{where}: reason not CamelCase: {c}"
            message = c.get("message", "")
            assert isinstance(message, str), f"{where}: message not a string: {c}"
            # the CRD's maxLength counts characters, as the API server does
            assert len(message) <= MAX_MESSAGE_LENGTH, f"{where}: message over the CRD's limit ({c['type']})"
        if _is_rejection(status):
            explained = [c for c in conds if _is_problem(c) and c.get("message")]
            assert explained, (
                f"{where}: rejected (phase {status.get('phase')!r}) without a condition that says why: {conds}"
            )
    for event_type, reason, message in out.events:
        assert CAMEL.match(reason or ""), f"{out.kind}: event reason not CamelCase: {reason!r}"
        if event_type == "Warning":
            assert message, f"{out.kind}: Warning event {reason} without a message"
