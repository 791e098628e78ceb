"""Submission of an AgentRun: validation (hold or fail), VCS, admission, then the Job.

Reached for runs without a Job. Validation problems that are only a missing referenced object hold the run
`Pending` for `reference_grace_seconds` (the index wakes it when the object appears); anything else fails it
with `finishedAt`. VCS resolution can fail the run, skip VCS or warn. Admission answers Queued (limit and
position, timed requeue), QueueLimitExceeded (terminal) or admitted; an admitted run gets its ConfigMaps and
Job (created or adopted by deterministic name) and is marked Running. A `workflow` run is marked Running and
handed to the workflow runtime, which creates one Job per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from jangar.admission import Admit, Rejection, Waiting
from jangar.conditions import format_time, parse_time
from jangar.controllers.admission_gate import WAIT_REQUEUE_SECONDS
from jangar.controllers.jobs import ForeignObject, create_plan
from jangar.controllers.runconditions import RunDetails
from jangar.runtime import JsonObject, Result
from jangar.scheduler import build_job_plan, check_contract, runtime_ref
from jangar.scheduler.runtimes import runtime_type
from jangar.validation import Problem, Resolution, summarize, validate_agent_run
from jangar.vcs import VcsResolution

if TYPE_CHECKING:
    from jangar.controllers.agentrun import AgentRunReconciler

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = ["FOREIGN_CHILD_REQUEUE_SECONDS", "MISSING_REFERENCE_REASONS", "invalid", "start_job", "submit"]

#: Problems a user fixes by creating another object; the run waits `reference_grace_seconds` for it.
MISSING_REFERENCE_REASONS = frozenset(
    {"MissingAgent", "MissingProvider", "MissingImplementation", "MissingMemory", "MissingVcsProvider"}
)
FOREIGN_CHILD_REQUEUE_SECONDS = 5.0


def params_of(run: Mapping[str, Any]) -> dict[str, str]:
    raw = (run.get("spec") or {}).get("parameters") or {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, Mapping) else {}


async def invalid(
    rec: AgentRunReconciler,
    run: JsonObject,
    problems: list[Problem],
    now: datetime,
    fields: Mapping[str, Any],
) -> Result | None:
    """Hold a run Pending while a referenced object may still appear; fail it for anything else."""
    reason, message = summarize(problems)
    created = parse_time(run["metadata"].get("creationTimestamp")) or now
    waited = (now - created).total_seconds()
    waiting_for_refs = all(p.reason in MISSING_REFERENCE_REASONS for p in problems)
    if waiting_for_refs and waited < rec.reference_grace_seconds:
        left = rec.reference_grace_seconds - waited
        details = RunDetails(
            reason, f"{message}; waiting up to {int(left)}s for it to be created", invalid=True
        )
        await rec.write(run, "Pending", details, now, fields)
        return Result(requeue_after=max(1.0, left))
    await rec.write(run, "Failed", RunDetails(reason, message, invalid=True), now, fields)
    return None


async def submit(rec: AgentRunReconciler, run: JsonObject, now: datetime) -> Result | None:
    resolution = rec.resolve(run)
    problems = validate_agent_run(run, resolution, rec.settings)
    fields: dict[str, Any] = {}
    if resolution.implementation is not None and runtime_type(run) == "job":
        contract = check_contract(params_of(run), resolution.implementation)
        if contract.required_keys:
            fields["contract"] = contract.status
    if problems:
        return await invalid(rec, run, problems, now, fields)
    vcs = await rec.resolve_vcs(run, resolution) if runtime_type(run) == "job" else None
    if vcs is not None and vcs.status:
        fields["vcs"] = vcs.status
    if vcs is not None and vcs.outcome == "fail":
        return await invalid(rec, run, [Problem(vcs.reason or "VcsUnavailable", vcs.message)], now, fields)
    verdict = rec.gate.admit(run)
    status = run.get("status") or {}
    queue = dict(status.get("queue") or {})
    if isinstance(verdict, Waiting):
        queue.update(
            enqueuedAt=queue.get("enqueuedAt") or format_time(now),
            scope=verdict.scope,
            key=verdict.key,
            limit=verdict.limit,
            position=verdict.position,
        )
        reason = "RateLimited" if verdict.scope == "rate" else "ConcurrencyLimit"
        message = f"{verdict.message}; position {verdict.position} in the queue"
        details = RunDetails(reason, message, **_vcs_details(vcs))
        await rec.write(run, "Queued", details, now, {**fields, "queue": queue})
        return Result(requeue_after=verdict.requeue_after or WAIT_REQUEUE_SECONDS)
    if isinstance(verdict, Rejection):
        await rec.write(run, "Failed", RunDetails(verdict.reason, verdict.message), now, fields)
        return None
    if not isinstance(verdict, Admit):
        return None
    if runtime_type(run) == "workflow" and rec.workflow is not None:
        queue = {k: v for k, v in queue.items() if k == "enqueuedAt"}
        queue["admittedAt"] = format_time(verdict.admitted_at)
        details = RunDetails("Admitted", "workflow admitted; starting its first step", accepted=False)
        started = await rec.write(
            run, "Running", details, now, {**fields, "queue": queue, "startedAt": format_time(now)}
        )
        result: Result | None = await rec.workflow.reconcile(rec, started, now)
        return result
    return await start_job(rec, run, resolution, verdict, queue, fields, now, vcs=vcs)


async def start_job(
    rec: AgentRunReconciler,
    run: JsonObject,
    resolution: Resolution,
    verdict: Admit,
    queue: dict[str, Any],
    fields: dict[str, Any],
    now: datetime,
    *,
    recreated: bool = False,
    vcs: VcsResolution | None = None,
) -> Result | None:
    meta = run["metadata"]
    try:
        if vcs is not None and vcs.app_token is not None and rec.vcs is not None:
            await rec.vcs.ensure_app_token(run, vcs.app_token)
        plan = build_job_plan(rec.context(run, resolution, vcs), rec.settings)
        job = await create_plan(rec.client, rec.cache, plan, meta.get("uid"))
    except ForeignObject as exc:
        rec.gate.release(meta["namespace"], meta["name"])
        log.warning(
            "child name taken",
            kind="AgentRun",
            namespace=meta["namespace"],
            name=meta["name"],
            error=str(exc),
        )
        details = RunDetails("WaitingForCleanup", str(exc), warning=("ChildNameTaken", str(exc)))
        await rec.write(run, "Pending", details, now)
        return Result(requeue_after=FOREIGN_CHILD_REQUEUE_SECONDS)
    except Exception:
        rec.gate.release(meta["namespace"], meta["name"])
        raise
    job_meta = job["metadata"]
    queue = {k: v for k, v in queue.items() if k in ("enqueuedAt", "admittedAt")}
    queue.setdefault("admittedAt", format_time(verdict.admitted_at))
    # A recreated Job gets a fresh submission time, so the missing-Job grace starts again from now.
    ref = runtime_ref(job, **({"recreated": True, "submittedAt": format_time(now)} if recreated else {}))
    fields = {
        **fields,
        "queue": queue,
        "jobRef": {k: job_meta.get(k) for k in ("name", "namespace", "uid") if job_meta.get(k)},
        "runtimeRef": ref,
        "startedAt": (run.get("status") or {}).get("startedAt") or format_time(now),
    }
    details = RunDetails("Submitted", f"created Job {job_meta['name']}", accepted=True, **_vcs_details(vcs))
    await rec.write(run, "Running", details, now, fields)
    return None


def _vcs_details(vcs: VcsResolution | None) -> dict[str, Any]:
    """RunDetails fields from a VCS resolution: the Warning and VcsSkipped conditions."""
    if vcs is None:
        return {}
    out: dict[str, Any] = {"vcs_checked": True}
    if vcs.outcome == "skip" and vcs.reason:
        out["vcs_skipped"] = (vcs.reason, vcs.message)
    if vcs.warnings:
        out["warning"] = (vcs.warnings[0].reason, "; ".join(w.message for w in vcs.warnings))
    return out
