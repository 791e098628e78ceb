"""Hand AgentRun snapshots to the Postgres run recorder without ever waiting for it.

`RunRecorder.record()` only appends to an in-memory buffer, so calling it from a reconcile is free; a
database outage never slows reconciling. Snapshots are taken after a status write (a transition), and the
transition time comes from the status (`startedAt`, `finishedAt`, condition times), so re-recording the same
state after a restart is idempotent in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from jangar.api.contract import LABEL_ORCHESTRATION_RUN, LABEL_ORCHESTRATION_STEP, LABEL_PROVIDER, is_terminal
from jangar.conditions import find_condition, parse_time
from jangar.storage.events import JobRef, RecordEvent, RunEvent, TrackedRunEvent, VcsContext

log = structlog.get_logger("jangar.controllers.recording")

__all__ = ["RunRecorderProtocol", "record_run", "record_tracked_run", "tracked_run_event"]


class RunRecorderProtocol(Protocol):
    """What the controllers need from `jangar.storage.RunRecorder`."""

    def record(self, event: RecordEvent) -> None: ...


_PHASE_CONDITION = {"Succeeded": "Succeeded", "Failed": "Failed", "Cancelled": "Failed", "Queued": "Blocked"}


def _transition_time(run: Mapping[str, Any], phase: str) -> datetime:
    status = run.get("status") or {}
    if is_terminal(phase):
        at = parse_time(status.get("finishedAt"))
    elif phase == "Running":
        at = parse_time(status.get("startedAt"))
    else:
        cond = find_condition(status.get("conditions"), _PHASE_CONDITION.get(phase, "Progressing"))
        at = parse_time((cond or {}).get("lastTransitionTime"))
    return at or parse_time((run.get("metadata") or {}).get("creationTimestamp")) or datetime.now(UTC)


def _reason(status: Mapping[str, Any], phase: str) -> tuple[str | None, str | None]:
    for type_ in ("InvalidSpec", "Failed", "Succeeded", "Blocked"):
        cond = find_condition(status.get("conditions"), type_)
        if cond is not None and cond.get("status") == "True":
            return str(cond.get("reason") or "") or None, str(cond.get("message") or "") or None
    return None, None


def run_event(run: Mapping[str, Any]) -> RunEvent | None:
    """The recorder snapshot of `run` as it is now (None when it has no uid or phase yet)."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    phase = status.get("phase")
    if not meta.get("uid") or not phase:
        return None
    spec = run.get("spec") or {}
    labels = meta.get("labels") or {}
    job_ref = status.get("jobRef") or {}
    vcs = status.get("vcs") or {}
    reason, message = _reason(status, str(phase))
    return RunEvent(
        uid=str(meta["uid"]),
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta["name"]),
        at=_transition_time(run, str(phase)),
        phase=str(phase),
        reason=reason,
        message=message,
        agent=((spec.get("agentRef") or {}).get("name")),
        provider=labels.get(LABEL_PROVIDER),
        implementation=((spec.get("implementationSpecRef") or {}).get("name")),
        runtime_type=((spec.get("runtime") or {}).get("type")),
        job=JobRef(
            str(job_ref["name"]), str(job_ref.get("namespace") or meta.get("namespace")), job_ref.get("uid")
        )
        if job_ref.get("name")
        else None,
        vcs=VcsContext(
            provider=vcs.get("provider"),
            repository=vcs.get("repository"),
            base_branch=vcs.get("baseBranch"),
            head_branch=vcs.get("headBranch"),
            mode=vcs.get("mode"),
        )
        if vcs
        else None,
        started_at=parse_time(status.get("startedAt")),
        finished_at=parse_time(status.get("finishedAt")),
    )


def record_run(recorder: RunRecorderProtocol | None, run: Mapping[str, Any]) -> None:
    """Record `run`'s current state; never raises (a record is history, not control)."""
    if recorder is None:
        return
    try:
        event = run_event(run)
        if event is not None:
            recorder.record(event)
    except Exception as exc:
        meta = run.get("metadata") or {}
        log.warning(
            "run not recorded", namespace=meta.get("namespace"), name=meta.get("name"), error=str(exc)
        )


# -- OrchestrationRuns and ToolRuns (issue 10) -------------------------------------------------------------

_TRACKED_REASON_CONDITIONS = ("InvalidSpec", "Failed", "Succeeded", "Waiting", "Warning", "BudgetExceeded")


def _tracked_reason(status: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The reason a record shows: the first true condition that explains the state (a failure, the end, a
    gate or signal being waited for, a warning)."""
    for type_ in _TRACKED_REASON_CONDITIONS:
        cond = find_condition(status.get("conditions"), type_)
        if cond is not None and cond.get("status") == "True":
            return str(cond.get("reason") or "") or None, str(cond.get("message") or "") or None
    return None, None


def tracked_run_event(kind: str, run: Mapping[str, Any]) -> TrackedRunEvent | None:
    """The recorder snapshot of an OrchestrationRun or ToolRun as it is now (None without uid or phase)."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    phase = status.get("phase")
    if not meta.get("uid") or not phase:
        return None
    spec = run.get("spec") or {}
    labels = meta.get("labels") or {}
    ref_key = "orchestrationRef" if kind == "OrchestrationRun" else "toolRef"
    ref = spec.get(ref_key)
    target = ref.get("name") if isinstance(ref, Mapping) else ref
    job_ref = status.get("jobRef") or {}
    reason, message = _tracked_reason(status)
    namespace = str(meta.get("namespace") or "default")
    return TrackedRunEvent(
        kind=kind,
        uid=str(meta["uid"]),
        namespace=namespace,
        name=str(meta["name"]),
        at=_transition_time(run, str(phase)),
        phase=str(phase),
        reason=reason,
        message=message,
        target=str(target) if target else None,
        delivery_id=str(spec["deliveryId"]) if spec.get("deliveryId") else None,
        parent_run=labels.get(LABEL_ORCHESTRATION_RUN),
        parent_step=labels.get(LABEL_ORCHESTRATION_STEP),
        job=JobRef(str(job_ref["name"]), str(job_ref.get("namespace") or namespace), job_ref.get("uid"))
        if job_ref.get("name")
        else None,
        started_at=parse_time(status.get("startedAt")),
        finished_at=parse_time(status.get("finishedAt")),
    )


def record_tracked_run(recorder: RunRecorderProtocol | None, kind: str, run: Mapping[str, Any]) -> None:
    """Record an OrchestrationRun's or ToolRun's current state; never raises (history, not control)."""
    if recorder is None:
        return
    try:
        event = tracked_run_event(kind, run)
        if event is not None:
            recorder.record(event)
    except Exception as exc:
        meta = run.get("metadata") or {}
        log.warning(
            "run not recorded",
            kind=kind,
            namespace=meta.get("namespace"),
            name=meta.get("name"),
            error=str(exc),
        )
