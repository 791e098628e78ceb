"""The Schedule decision: `decide(snapshot) -> SchedulePlan`, pure and level-triggered.

Each pass decides from the snapshot alone:

1. being deleted → nothing (the ConfigMap and CronJob carry controller owner references; garbage
   collection removes them, and the CronJob's Jobs with it). Runs already created are not owned by the
   Schedule and stay;
2. the spec is checked: `cron` (required, five fields or a macro, no `TZ=`), `timezone` (an IANA zone),
   `targetRef` (kind AgentRun or OrchestrationRun, a name, the Schedule's own namespace, the run found and
   carrying a spec). A problem → phase `Invalid`, `InvalidSpec=True/<reason>` or
   `TargetResolved=False/<reason>`, and the CronJob (and template) deleted, so nothing fires from a stale
   template; it turns `Active` by itself when the target appears (the target's events wake the Schedule);
3. otherwise the template ConfigMap (`build_template`) and the CronJob (`build_cronjob`, suspended with
   `spec.suspend`) are written when they differ from the desired ones, and the status says `Active` (or
   `Suspended`), with `lastRunTime` / `lastRun` (the newest run carrying the Schedule's label),
   `nextRunTime` (the cron library, in the Schedule's zone; none while suspended), the CronJob's
   `lastScheduleTime` / `lastSuccessfulTime`, and a requeue at the next tick so `nextRunTime` moves on.

A child name held by an object the Schedule does not control is never overwritten: `Warning=True/
ChildNameTaken`, and the pass retries later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from jangar.api.contract import ANNOTATION_SCHEDULE_SPEC_HASH, ANNOTATION_SCHEDULED_TIME
from jangar.conditions import format_time, parse_time
from jangar.controllers.kinds import CONFIGMAPS
from jangar.controllers.schedule.plan import ChildWrite, EventSpec, SchedulePlan
from jangar.controllers.schedule.snapshot import RUN_KINDS, ScheduleSnapshot, target_of
from jangar.controllers.status import Cond, compose_status
from jangar.runtime import controllerutil
from jangar.scheduler.schedules import (
    CRONJOBS,
    TEMPLATE_KEY,
    build_cronjob,
    build_template,
    cron_problem,
    cronjob_name,
    next_run_time,
    schedule_labels,
    template_name,
    timezone_problem,
)

__all__ = [
    "FOREIGN_CHILD_REQUEUE_SECONDS",
    "MAX_REQUEUE_SECONDS",
    "PHASE_ACTIVE",
    "PHASE_INVALID",
    "PHASE_SUSPENDED",
    "decide",
    "last_run",
    "spec_hash",
]

PHASE_ACTIVE = "Active"
PHASE_SUSPENDED = "Suspended"
PHASE_INVALID = "Invalid"
FOREIGN_CHILD_REQUEUE_SECONDS = 30.0
MAX_REQUEUE_SECONDS = 3600.0
"""A Schedule whose next tick is far away is still looked at hourly (cheap: nothing is written)."""
_TICK_SLACK_SECONDS = 1.0


class _Problem(Exception):
    def __init__(self, condition: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.condition, self.reason, self.message = condition, reason, message


def spec_hash(obj: Mapping[str, Any]) -> str:
    """A stable hash of a desired child's spec (or data), recorded on it to notice real changes."""
    body = obj.get("spec") if "spec" in obj else obj.get("data")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def last_run(snap: ScheduleSnapshot) -> dict[str, Any] | None:
    """The newest run a tick of this Schedule created (by its scheduled-time annotation, then name)."""
    best: tuple[str, str] | None = None
    found: Mapping[str, Any] | None = None
    for run in snap.runs:
        meta = run.get("metadata") or {}
        tick = parse_time(str((meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_TIME) or ""))
        if tick is None:
            continue
        key = (format_time(tick), str(meta.get("name")))
        if best is None or key > best:
            best, found = key, run
    if found is None or best is None:
        return None
    meta = found["metadata"]
    return {
        "kind": str(found.get("kind") or _kind_of(found)),
        "name": str(meta["name"]),
        "namespace": str(meta.get("namespace") or snap.namespace),
        "scheduledTime": best[0],
    }


def _kind_of(run: Mapping[str, Any]) -> str:
    api = str(run.get("apiVersion") or "")
    return "OrchestrationRun" if api.startswith("orchestration.") else "AgentRun"


def _check_spec(snap: ScheduleSnapshot) -> None:
    spec = snap.schedule.get("spec") or {}
    problem = cron_problem(spec.get("cron"))
    if problem is not None:
        reason = "InvalidSpec" if not str(spec.get("cron") or "").strip() else "InvalidCron"
        raise _Problem("InvalidSpec", reason, problem)
    problem = timezone_problem(spec.get("timezone"))
    if problem is not None:
        raise _Problem("InvalidSpec", "InvalidTimeZone", problem)
    kind, name, ns = target_of(snap.schedule)
    if kind not in RUN_KINDS:
        raise _Problem(
            "InvalidSpec",
            "UnsupportedTargetKind",
            f"spec.targetRef.kind {kind!r} is not supported (AgentRun or OrchestrationRun)",
        )
    if not name:
        raise _Problem("InvalidSpec", "MissingTargetRef", "spec.targetRef.name is required")
    if ns != snap.namespace:
        raise _Problem(
            "InvalidSpec",
            "CrossNamespaceTarget",
            f"spec.targetRef.namespace {ns!r} differs from the Schedule's namespace {snap.namespace!r}: "
            "a Schedule copies a run of its own namespace",
        )
    if snap.target is None:
        raise _Problem("TargetResolved", "MissingTarget", f"{kind} {ns}/{name} (spec.targetRef) not found")
    if not isinstance(snap.target.get("spec"), Mapping) or not snap.target.get("spec"):
        raise _Problem("TargetResolved", "InvalidTarget", f"{kind} {ns}/{name} has no spec to copy")


def _conditions(problem: _Problem | None, suspended: bool, warning: tuple[str, str] | None) -> list[Cond]:
    invalid = problem is not None and problem.condition == "InvalidSpec"
    unresolved = problem is not None and problem.condition == "TargetResolved"
    return [
        Cond(
            "InvalidSpec",
            invalid,
            problem.reason if invalid and problem else "ValidSpec",
            problem.message if invalid and problem else "",
        ),
        Cond(
            "TargetResolved",
            "Unknown" if invalid else not unresolved,
            "NotChecked" if invalid else problem.reason if problem else "TargetFound",
            problem.message if unresolved and problem else "",
        ),
        Cond("Suspended", suspended and problem is None, "Suspended" if suspended else "NotSuspended"),
        Cond(
            "Warning",
            warning is not None,
            warning[0] if warning else "NoWarning",
            warning[1] if warning else "",
        ),
    ]


def _desired_template(snap: ScheduleSnapshot) -> dict[str, Any]:
    assert snap.target is not None
    template = build_template(snap.schedule, {**snap.target, "kind": target_of(snap.schedule)[0]})
    meta: dict[str, Any] = {
        "name": template_name(snap.name),
        "namespace": snap.namespace,
        "labels": schedule_labels(snap.name),
    }
    if snap.inputs.owner_reference is not None:
        meta["ownerReferences"] = [dict(snap.inputs.owner_reference)]
    return {"metadata": meta, "data": {TEMPLATE_KEY: json.dumps(template, indent=2, sort_keys=True)}}


def _desired_cronjob(snap: ScheduleSnapshot) -> dict[str, Any]:
    cron = build_cronjob(snap.schedule, snap.inputs)
    cron["metadata"]["annotations"] = {ANNOTATION_SCHEDULE_SPEC_HASH: spec_hash(cron)}
    return cron


def _foreign(snap: ScheduleSnapshot, obj: Mapping[str, Any] | None) -> bool:
    uid = (snap.schedule.get("metadata") or {}).get("uid")
    return obj is not None and bool(uid) and controllerutil.controller_uid(obj) != uid


def _template_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    labels = (existing.get("metadata") or {}).get("labels") or {}
    return existing.get("data") != desired["data"] or any(
        labels.get(k) != v for k, v in desired["metadata"]["labels"].items()
    )


def _cronjob_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    return bool(
        annotations.get(ANNOTATION_SCHEDULE_SPEC_HASH)
        != desired["metadata"]["annotations"][ANNOTATION_SCHEDULE_SPEC_HASH]
    )


def _status(
    snap: ScheduleSnapshot,
    phase: str,
    problem: _Problem | None,
    suspended: bool,
    warning: tuple[str, str] | None,
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    old = snap.schedule.get("status") or {}
    reason = problem.reason if problem else (PHASE_SUSPENDED if suspended else PHASE_ACTIVE)
    message = problem.message if problem else ""
    return compose_status(
        old,
        phase=phase,
        conditions=_conditions(problem, suspended, warning),
        generation=(snap.schedule.get("metadata") or {}).get("generation"),
        now=snap.now,
        fields=fields,
        summary_reason=reason,
        summary_message=message,
    )


def _events(
    snap: ScheduleSnapshot, phase: str, problem: _Problem | None, run: Mapping[str, Any] | None
) -> tuple[EventSpec, ...]:
    old = snap.schedule.get("status") or {}
    out: list[EventSpec] = []
    old_phase = old.get("phase")
    if old_phase != phase:
        if problem is not None:
            out.append(EventSpec("Warning", problem.reason, problem.message))
        elif phase == PHASE_SUSPENDED:
            out.append(EventSpec("Normal", "Suspended", "spec.suspend is true: the CronJob is suspended"))
        elif old_phase == PHASE_SUSPENDED:
            out.append(EventSpec("Normal", "Resumed", "the CronJob fires again"))
        else:
            out.append(EventSpec("Normal", "Active", f"CronJob {cronjob_name(snap.name)} is scheduled"))
    old_run = (old.get("lastRun") or {}).get("name")
    if run is not None and run["name"] != old_run:
        out.append(
            EventSpec(
                "Normal", "RunCreated", f"{run['kind']} {run['name']} created for {run['scheduledTime']}"
            )
        )
    return tuple(out)


def _run_fields(snap: ScheduleSnapshot) -> tuple[dict[str, Any], dict[str, Any] | None]:
    run = last_run(snap)
    cron_status = (snap.cronjob or {}).get("status") or {}
    last_schedule = cron_status.get("lastScheduleTime")
    old = snap.schedule.get("status") or {}
    last_time = run["scheduledTime"] if run else last_schedule or old.get("lastRunTime")
    fields: dict[str, Any] = {
        "lastRunTime": last_time,
        "lastRun": run or old.get("lastRun"),
        "lastScheduleTime": last_schedule,
        "lastSuccessfulTime": cron_status.get("lastSuccessfulTime"),
    }
    return fields, run


def decide(snap: ScheduleSnapshot) -> SchedulePlan:
    meta = snap.schedule.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return SchedulePlan()
    spec = snap.schedule.get("spec") or {}
    suspended = bool(spec.get("suspend"))
    fields, run = _run_fields(snap)
    try:
        _check_spec(snap)
    except _Problem as problem:
        deletes = []
        if snap.cronjob is not None and not _foreign(snap, snap.cronjob):
            deletes.append((CRONJOBS, cronjob_name(snap.name)))
        if snap.template is not None and not _foreign(snap, snap.template):
            deletes.append((CONFIGMAPS, template_name(snap.name)))
        fields.update({"nextRunTime": None, "cronJobName": None, "templateName": None})
        status = _status(snap, PHASE_INVALID, problem, suspended, None, fields)
        return SchedulePlan(
            deletes=tuple(deletes),
            status=status,
            phase=PHASE_INVALID,
            events=_events(snap, PHASE_INVALID, problem, run),
        )

    writes: list[ChildWrite] = []
    taken: list[str] = []
    template = _desired_template(snap)
    if _foreign(snap, snap.template):
        taken.append(f"ConfigMap {snap.namespace}/{template_name(snap.name)}")
    elif snap.template is None or _template_differs(snap.template, template):
        writes.append(ChildWrite(CONFIGMAPS, template, snap.template))
    cronjob = _desired_cronjob(snap)
    if _foreign(snap, snap.cronjob):
        taken.append(f"CronJob {snap.namespace}/{cronjob_name(snap.name)}")
    elif snap.cronjob is None or _cronjob_differs(snap.cronjob, cronjob):
        writes.append(ChildWrite(CRONJOBS, cronjob, snap.cronjob))
    warning = (
        ("ChildNameTaken", "; ".join(taken) + " exists and is controlled by another object")
        if taken
        else None
    )

    phase = PHASE_SUSPENDED if suspended else PHASE_ACTIVE
    requeue: float | None = FOREIGN_CHILD_REQUEUE_SECONDS if taken else None
    next_tick = None
    if not suspended:
        next_tick = next_run_time(str(spec["cron"]), spec.get("timezone"), snap.now)
        wait = (next_tick - snap.now).total_seconds() + _TICK_SLACK_SECONDS
        requeue = min(requeue or MAX_REQUEUE_SECONDS, max(_TICK_SLACK_SECONDS, wait), MAX_REQUEUE_SECONDS)
    fields.update(
        {
            "nextRunTime": format_time(next_tick) if next_tick else None,
            "cronJobName": cronjob_name(snap.name),
            "templateName": template_name(snap.name),
        }
    )
    status = _status(snap, phase, None, suspended, warning, fields)
    return SchedulePlan(
        writes=tuple(writes),
        status=status,
        phase=phase,
        events=_events(snap, phase, None, run),
        requeue_after=requeue,
    )
