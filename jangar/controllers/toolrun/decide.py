"""The ToolRun decision: `decide(snapshot) -> ToolRunPlan`, pure and level-triggered.

Each pass decides from the snapshot alone:

1. being deleted → nothing (the Job and ConfigMap carry controller owner references: garbage collection
   removes them);
2. finished → no unfinished Job is left (deleted), finished Jobs get their TTL (the Tool's
   `ttlSecondsAfterFinished`, else the controller's Job TTL, clamped like an AgentRun's) — only now that
   the outcome is recorded;
3. the annotation `agents.proompteng.ai/cancel: "true"` → phase Cancelled, the Jobs deleted (background);
4. a Job recorded in `status.jobRef` → `classify_job` turns the Job and its Pods into the outcome; on an
   outcome the tool's termination message becomes `status.outputs`. A Job that is gone: never seen and
   within the missing-Job grace → wait for the cache; never seen after it → recreated once (same name);
   seen and then gone → `status.runtimeRef.jobMissingSince` and a Warning, then Failed `JobMissing` once the
   grace has passed (the reference left such a ToolRun Running forever);
5. otherwise submission: the Tool must exist and be valid (else Pending for the reference grace, then Failed
   `MissingTool` / `InvalidTool`); every placeholder must resolve (else Failed `MissingParameter`); the
   Budget of `spec.budgetRef`, when Budgets are enforced here, must not be exceeded (else Pending with
   `BudgetExceeded=True` until a Budget change wakes it; a missing Budget is a missing reference:
   `MissingBudget`); then the spec ConfigMap and the Job, phase Running.

Every status states the full condition set (`toolrun_conditions`) and `observedGeneration`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from jangar.api.contract import ANNOTATION_CANCEL, Phase, is_cancel_requested, is_terminal
from jangar.conditions import format_time, parse_time
from jangar.controllers.agentrun.snapshot import classify, job_finished, live_job
from jangar.controllers.budget_hold import BUDGET_RECHECK_SECONDS
from jangar.controllers.runconditions import RunDetails, run_conditions
from jangar.controllers.status import Cond, compose_status
from jangar.controllers.toolrun.plan import EventSpec, ToolRunPlan
from jangar.controllers.toolrun.snapshot import ToolRunSnapshot, tool_name
from jangar.scheduler import missing_job_action, runtime_ref
from jangar.scheduler.termination import container_termination_message, parse_termination_message
from jangar.scheduler.toolrun_job import (
    CONTAINER_NAME,
    build_toolrun_job,
    tool_problems,
)
from jangar.scheduler.ttl import clamp_job_ttl

__all__ = [
    "FOREIGN_CHILD_REQUEUE_SECONDS",
    "OUTPUTS_WAIT_SECONDS",
    "decide",
    "job_ttl",
    "on_foreign_child",
    "toolrun_conditions",
]

FOREIGN_CHILD_REQUEUE_SECONDS = 5.0
OUTPUTS_WAIT_SECONDS = 10.0
"""A completed Job whose Pod is not in the cache yet (the Pod informer may lag the Job informer): how long
to wait for the Pod, and so the outputs, before recording the success without them."""
_OUTPUTS_POLL_SECONDS = 1.0
_FAILURE_TEXT_LIMIT = 512


# -- status ------------------------------------------------------------------------------------------


def toolrun_conditions(phase: str, details: RunDetails) -> list[Cond]:
    """The AgentRun condition set, plus the reference's `Running` (True/Submitted while the Job runs)."""
    running = phase == Phase.RUNNING
    return [
        *run_conditions(phase, details),
        Cond(
            "Running",
            running,
            "Submitted" if running else details.reason or phase,
            details.message if running else "",
        ),
    ]


def _status(
    snap: ToolRunSnapshot,
    phase: str,
    details: RunDetails,
    fields: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    old = (base if base is not None else snap.toolrun).get("status") or {}
    if snap.budget is not None and details.budget is None:
        details = replace(details, budget=snap.budget.condition)
    merged: dict[str, Any] = {"runId": old.get("runId") or snap.name, **(fields or {})}
    if is_terminal(phase) and not old.get("finishedAt") and "finishedAt" not in merged:
        merged["finishedAt"] = format_time(snap.now)
    return compose_status(
        old,
        phase=phase,
        conditions=toolrun_conditions(phase, details),
        generation=snap.toolrun["metadata"].get("generation"),
        now=snap.now,
        fields=merged,
        summary_reason=details.reason if is_terminal(phase) or details.invalid else None,
        summary_message=details.message,
    )


def _with_status(toolrun: Mapping[str, Any], status: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return toolrun if status is None else {**toolrun, "status": status}


def _terminal_event(phase: str, details: RunDetails) -> EventSpec:
    if phase == Phase.SUCCEEDED:
        return EventSpec("Normal", "Succeeded", details.message or "tool run succeeded")
    if phase == Phase.CANCELLED:
        return EventSpec("Normal", "Cancelled", details.message)
    return EventSpec("Warning", "Failed", f"{details.reason}: {details.message}")


def _fail(snap: ToolRunSnapshot, details: RunDetails, fields: Mapping[str, Any] | None = None) -> ToolRunPlan:
    status = _status(snap, Phase.FAILED, details, fields)
    plan = ToolRunPlan(status=status, phase=Phase.FAILED, event=_terminal_event(Phase.FAILED, details))
    return _finished(snap, _with_status(snap.toolrun, status), plan)


# -- entry -------------------------------------------------------------------------------------------


def decide(snap: ToolRunSnapshot) -> ToolRunPlan:
    if snap.toolrun["metadata"].get("deletionTimestamp"):
        return ToolRunPlan()
    status = snap.toolrun.get("status") or {}
    if is_terminal(status.get("phase")):
        return _finished(snap, snap.toolrun, ToolRunPlan())
    if is_cancel_requested(snap.toolrun):
        return _cancel(snap)
    if (status.get("jobRef") or {}).get("name"):
        return _observe(snap)
    return _submit(snap)


def job_ttl(snap: ToolRunSnapshot) -> int | None:
    """The Tool's `ttlSecondsAfterFinished`, else the controller's Job TTL; clamped to [30 s, 7 d], ≤0: none."""
    per_tool = ((snap.tool or {}).get("spec") or {}).get("ttlSecondsAfterFinished")
    if isinstance(per_tool, int | float) and not isinstance(per_tool, bool):
        return clamp_job_ttl(float(per_tool))
    return clamp_job_ttl(float(snap.settings.runner.job_ttl_seconds))


def _job_ended(snap: ToolRunSnapshot, name: str, job: Mapping[str, Any]) -> bool:
    outcome = classify(job, snap.pods.get(name, ()), snap.now, snap.timing)
    return outcome.terminal and not outcome.stop_job


def _finished(snap: ToolRunSnapshot, toolrun: Mapping[str, Any], plan: ToolRunPlan) -> ToolRunPlan:
    """A finished ToolRun: its unfinished Jobs are deleted, its finished Jobs get their TTL."""
    deleting = set(plan.delete_jobs)
    stray = tuple(
        name
        for name, job in sorted(snap.jobs.items())
        if name not in deleting and not _job_ended(snap, name, job)
    )
    ttl = job_ttl(snap)
    ttls: list[tuple[str, int]] = []
    if ttl is not None:
        for name, job in sorted(snap.jobs.items()):
            if name in deleting or name in stray or not job_finished(job):
                continue
            if (job.get("spec") or {}).get("ttlSecondsAfterFinished") != ttl:
                ttls.append((name, ttl))
    return replace(plan, delete_jobs=(*plan.delete_jobs, *stray), job_ttls=tuple(ttls), requeue_after=None)


def _cancel(snap: ToolRunSnapshot) -> ToolRunPlan:
    accepted = bool(((snap.toolrun.get("status") or {}).get("jobRef") or {}).get("name"))
    details = RunDetails(
        "Cancelled", f"cancelled through the {ANNOTATION_CANCEL} annotation", accepted=accepted
    )
    status = _status(snap, Phase.CANCELLED, details)
    plan = ToolRunPlan(
        status=status,
        phase=Phase.CANCELLED,
        event=_terminal_event(Phase.CANCELLED, details),
        delete_jobs=tuple(sorted(snap.jobs)),
    )
    return _finished(snap, _with_status(snap.toolrun, status), plan)


def on_foreign_child(snap: ToolRunSnapshot, message: str) -> ToolRunPlan:
    """The Job or ConfigMap name is held by an object another ToolRun (or an earlier incarnation of this one)
    controls: wait for garbage collection instead of adopting it."""
    details = RunDetails("WaitingForCleanup", message, warning=("ChildNameTaken", message))
    return ToolRunPlan(
        status=_status(snap, Phase.PENDING, details),
        phase=Phase.PENDING,
        requeue_after=FOREIGN_CHILD_REQUEUE_SECONDS,
    )


# -- submission ------------------------------------------------------------------------------------------


def _tool_unusable(snap: ToolRunSnapshot) -> tuple[str, str] | None:
    name = tool_name(snap.toolrun)
    if name is None:
        return None  # handled by the caller: not something to wait for
    if snap.tool is None:
        return "MissingTool", f"tool {name!r} (spec.toolRef) not found in namespace {snap.namespace!r}"
    problems = tool_problems(snap.tool)
    if problems:
        return "InvalidTool", f"tool {name!r} is invalid: " + "; ".join(p.message for p in problems)
    return None


def _wait_or_fail(snap: ToolRunSnapshot, reason: str, message: str) -> ToolRunPlan:
    """Hold the run Pending while the user may still create or fix the Tool; fail it after the grace."""
    created = parse_time(snap.toolrun["metadata"].get("creationTimestamp")) or snap.now
    grace = snap.timing.reference_grace_seconds
    waited = (snap.now - created).total_seconds()
    if waited < grace:
        until = format_time(created + timedelta(seconds=grace))
        details = RunDetails(reason, f"{message}; waiting until {until} for it", invalid=True)
        return ToolRunPlan(
            status=_status(snap, Phase.PENDING, details),
            phase=Phase.PENDING,
            requeue_after=max(1.0, grace - waited),
        )
    return _fail(snap, RunDetails(reason, message, invalid=True))


def _submit(snap: ToolRunSnapshot, *, recreated: bool = False) -> ToolRunPlan:
    if tool_name(snap.toolrun) is None:
        return _fail(snap, RunDetails("MissingToolRef", "spec.toolRef.name is required", invalid=True))
    unusable = _tool_unusable(snap)
    if unusable is not None:
        if recreated:
            return _fail(snap, RunDetails(unusable[0], unusable[1], accepted=True))
        return _wait_or_fail(snap, *unusable)
    assert snap.tool is not None
    build = build_toolrun_job(snap.toolrun, snap.tool, snap.settings)
    if build.plan is None:
        return _fail(snap, RunDetails("MissingParameter", build.message, invalid=True))
    if not recreated and snap.budget is not None:
        if not snap.budget.verdict.found:
            message = (
                f"budget {snap.budget.name!r} (spec.budgetRef) not found in namespace {snap.namespace!r}"
            )
            return _wait_or_fail(snap, "MissingBudget", message)
        if snap.budget.holds:
            _, reason, message = snap.budget.condition
            return ToolRunPlan(
                status=_status(snap, Phase.PENDING, RunDetails(reason, message)),
                phase=Phase.PENDING,
                requeue_after=BUDGET_RECHECK_SECONDS,
            )
    job_name = build.plan.job_name
    existing = snap.jobs.get(job_name)
    status = snap.toolrun.get("status") or {}
    extra: dict[str, Any] = {"submittedAt": format_time(snap.now)}
    if recreated:
        extra["recreated"] = True
    ref = runtime_ref(existing or build.plan.job, **extra)
    job_ref: dict[str, Any] = {"name": job_name, "namespace": snap.namespace}
    if existing is not None and existing["metadata"].get("uid"):
        job_ref["uid"] = existing["metadata"]["uid"]
    verb = "adopted existing" if existing is not None else "recreated" if recreated else "created"
    details = RunDetails("Submitted", f"{verb} Job {job_name}", accepted=True)
    fields = {
        "jobRef": job_ref,
        "runtimeRef": ref,
        "startedAt": status.get("startedAt") or format_time(snap.now),
    }
    return ToolRunPlan(
        create=build.plan,
        status=_status(snap, Phase.RUNNING, details, fields),
        phase=Phase.RUNNING,
        event=EventSpec("Normal", "Created", details.message),
        notes=(f"recreating Job {job_name}: it never appeared",) if recreated else (),
    )


# -- observation -------------------------------------------------------------------------------------------


def _terminated(pods: Sequence[Mapping[str, Any]]) -> bool:
    """A Pod in the cache shows the tool-runner container terminated (its termination message is readable)."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            if cs.get("name") == CONTAINER_NAME and (cs.get("state") or {}).get("terminated"):
                return True
    return False


def _observe(snap: ToolRunSnapshot) -> ToolRunPlan:
    status = snap.toolrun.get("status") or {}
    job_name = str(status["jobRef"]["name"])
    ref = dict(status.get("runtimeRef") or {})
    job = live_job(snap.jobs.get(job_name))
    if job is None:
        return _job_missing(snap, job_name, ref)
    pods = snap.pods.get(job_name, ())
    outcome = classify(job, pods, snap.now, snap.timing)
    job_uid = (job.get("metadata") or {}).get("uid")
    ref.setdefault("jobObservedAt", format_time(snap.now))
    ref.pop("jobMissingSince", None)
    if job_uid:
        ref.setdefault("uid", job_uid)
    fields: dict[str, Any] = {"runtimeRef": ref}
    job_ref = dict(status.get("jobRef") or {})
    if job_uid and not job_ref.get("uid"):
        fields["jobRef"] = {**job_ref, "uid": job_uid}
    if outcome.terminal:
        if outcome.phase == "Succeeded" and not _terminated(pods):
            finished = outcome.finished_at or snap.now
            waited = (snap.now - finished).total_seconds()
            if waited < OUTPUTS_WAIT_SECONDS:
                details = RunDetails(
                    "Running", f"Job {job_name} completed; reading its outputs", accepted=True
                )
                return ToolRunPlan(
                    status=_status(snap, Phase.RUNNING, details, fields),
                    phase=Phase.RUNNING,
                    requeue_after=_OUTPUTS_POLL_SECONDS,
                )
        report = parse_termination_message(container_termination_message(pods, CONTAINER_NAME))
        if report.outputs:
            fields["outputs"] = report.outputs
        message = outcome.message
        if outcome.phase == "Failed" and report.text and report.text not in message:
            message = f"{message}; output: {report.text[-_FAILURE_TEXT_LIMIT:]}"
        fields["finishedAt"] = format_time(outcome.finished_at or snap.now)
        if outcome.started_at is not None:
            fields["startedAt"] = format_time(outcome.started_at)
        details = RunDetails(outcome.reason, message, accepted=True)
        new = _status(snap, outcome.phase, details, fields)
        plan = ToolRunPlan(
            status=new,
            phase=outcome.phase,
            event=_terminal_event(outcome.phase, details),
            delete_jobs=(job_name,) if outcome.stop_job else (),
        )
        return _finished(snap, _with_status(snap.toolrun, new), plan)
    warning = (outcome.reason, outcome.message) if outcome.reason else None
    state = "running" if outcome.phase == "Running" else "waiting to start"
    details = RunDetails("Running", f"Job {job_name} is {state}", accepted=True, warning=warning)
    return ToolRunPlan(
        status=_status(snap, Phase.RUNNING, details, fields),
        phase=Phase.RUNNING,
        requeue_after=outcome.requeue_after,
    )


def _job_missing(snap: ToolRunSnapshot, job_name: str, ref: Mapping[str, Any]) -> ToolRunPlan:
    status = snap.toolrun.get("status") or {}
    grace = snap.timing.missing_job_grace_seconds
    if ref.get("jobObservedAt"):
        since = parse_time(ref.get("jobMissingSince"))
        if since is None:
            message = (
                f"Job {job_name} vanished while the tool was running; the run fails at "
                f"{format_time(snap.now + timedelta(seconds=grace))} unless it reappears"
            )
            details = RunDetails("Running", message, accepted=True, warning=("JobMissing", message))
            fields = {"runtimeRef": {**ref, "jobMissingSince": format_time(snap.now)}}
            return ToolRunPlan(
                status=_status(snap, Phase.RUNNING, details, fields),
                phase=Phase.RUNNING,
                event=EventSpec("Warning", "JobMissing", message),
                requeue_after=max(1.0, grace),
            )
        waited = (snap.now - since).total_seconds()
        if waited < grace:
            return ToolRunPlan(requeue_after=max(1.0, grace - waited))
        message = f"Job {job_name} was deleted while the tool was running (missing for {int(waited)}s)"
        return _fail(snap, RunDetails("JobMissing", message, accepted=True))
    submitted = parse_time(ref.get("submittedAt")) or parse_time(status.get("startedAt"))
    action, wait = missing_job_action(ref, submitted_at=submitted, now=snap.now, grace_seconds=grace)
    if action == "wait":
        return ToolRunPlan(requeue_after=wait or 1.0)
    if not ref.get("recreated"):
        return _submit(snap, recreated=True)
    return _fail(
        snap,
        RunDetails("JobMissing", f"Job {job_name} could not be created (it never appeared)", accepted=True),
    )
