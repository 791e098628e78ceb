"""Observation of a submitted `job`-runtime run: the Job and its Pods back to the run's status.

Terminal outcomes (with the reason from the Job and Pods: BackoffLimitExceeded, DeadlineExceeded,
OOMKilled, ImagePullBackOff, …) are written first, then the Job's TTL is patched (never before: the Job
could vanish before its outcome is read). A Job that is gone is recreated once if it was never observed
(a lost create), and fails the run with `JobLost` if it was observed — a run is never left Running for a
Job that will not come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from jangar.admission import Admit
from jangar.conditions import format_time, parse_time
from jangar.controllers.jobs import controller_uid, delete_jobs, job_finished, patch_job_ttl
from jangar.controllers.kinds import JOBS, PODS
from jangar.controllers.runconditions import RunDetails
from jangar.controllers.submit import start_job
from jangar.runtime import JsonObject, Result
from jangar.scheduler import classify_job, job_ttl_seconds, missing_job_action
from jangar.scheduler.runtimes import runtime_type
from jangar.validation import validate_agent_run

if TYPE_CHECKING:
    from jangar.controllers.agentrun import AgentRunReconciler

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = ["job_missing", "observe"]


async def observe(rec: AgentRunReconciler, run: JsonObject, now: datetime) -> Result | None:
    meta = run["metadata"]
    ns = meta["namespace"]
    status = run.get("status") or {}
    job_name = str(status["jobRef"]["name"])
    ref = dict(status.get("runtimeRef") or {})
    job = rec.cache.get(JOBS, job_name, ns)
    if job is not None and meta.get("uid") and controller_uid(job) != meta.get("uid"):
        job = None  # a Job of a previous incarnation of this run name: not ours
    if job is not None and job["metadata"].get("deletionTimestamp") and not job_finished(job):
        job = None  # being deleted before it finished: as good as gone
    if job is None:
        return await job_missing(rec, run, job_name, ref, now)
    pods = rec.cache.list(PODS, ns, labels={"job-name": job_name})
    outcome = classify_job(job, pods, now=now, image_pull_grace_seconds=rec.image_pull_grace_seconds)
    ref.setdefault("jobObservedAt", format_time(now))
    ref.setdefault("uid", job["metadata"].get("uid"))
    fields: dict[str, Any] = {"runtimeRef": ref}
    if outcome.terminal:
        fields["finishedAt"] = format_time(outcome.finished_at or now)
        if outcome.started_at is not None:
            fields["startedAt"] = format_time(outcome.started_at)
        details = RunDetails(outcome.reason, outcome.message, accepted=True)
        updated = await rec.write(run, outcome.phase, details, now, fields)
        if outcome.stop_job:
            await delete_jobs(rec.client, rec.cache, ns, str(meta.get("uid")))
        await patch_job_ttl(rec.client, job, job_ttl_seconds(run, rec.settings))
        return await rec.finished(updated, now)
    warning = (outcome.reason, outcome.message) if outcome.reason else _kept_warning(run)
    state = "running" if outcome.phase == "Running" else "waiting to start"
    details = RunDetails("Running", f"Job {job_name} is {state}", accepted=True, warning=warning)
    await rec.write(run, "Running", details, now, fields)
    return Result(requeue_after=outcome.requeue_after) if outcome.requeue_after else None


async def job_missing(
    rec: AgentRunReconciler, run: JsonObject, job_name: str, ref: dict[str, Any], now: datetime
) -> Result | None:
    status = run.get("status") or {}
    submitted = parse_time(ref.get("submittedAt")) or parse_time(status.get("startedAt"))
    action, wait = missing_job_action(ref, submitted_at=submitted, now=now)
    if action == "wait":
        return Result(requeue_after=wait or 1.0)
    if action == "recreate" and not ref.get("recreated"):
        resolution = rec.resolve(run)
        problems = validate_agent_run(run, resolution, rec.settings)
        if not problems:
            log.warning("job never appeared, recreating it", kind="AgentRun", name=run["metadata"]["name"])
            admitted = parse_time((status.get("queue") or {}).get("admittedAt")) or now
            return await start_job(
                rec,
                run,
                resolution,
                Admit(admitted),
                dict(status.get("queue") or {}),
                {},
                now,
                recreated=True,
                # The same VCS context as the first submission: credentials, branch and parameters.
                vcs=await rec.resolve_vcs(run, resolution) if runtime_type(run) == "job" else None,
            )
    observed = bool(ref.get("jobObservedAt"))
    message = (
        f"Job {job_name} was deleted while the run was in progress; the run cannot be resumed safely"
        if observed
        else f"Job {job_name} could not be created (it never appeared)"
    )
    updated = await rec.write(run, "Failed", RunDetails("JobLost", message, accepted=True), now)
    return await rec.finished(updated, now)


_SUBMISSION_WARNINGS = frozenset({"DeprecatedAuth"})


def _kept_warning(run: Mapping[str, Any]) -> tuple[str, str] | None:
    """A Warning raised at submission (deprecated VCS auth) stays while the run goes on; Job warnings do not."""
    for c in (run.get("status") or {}).get("conditions") or ():
        if (
            c.get("type") == "Warning"
            and c.get("status") == "True"
            and c.get("reason") in _SUBMISSION_WARNINGS
        ):
            return str(c["reason"]), str(c.get("message") or "")
    return None
