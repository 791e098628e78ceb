"""The native `workflow` runtime: sequential steps, each attempt its own Job, retries with backoff.

`plan_workflow` is pure: given the run (spec + current `status.workflow.steps`), the step Jobs and Pods from
the cache and the time, it returns the new step statuses, the run's phase, at most one step attempt to
submit, the Jobs that finished in this pass (for the TTL patch after the status write) and `requeue_after`,
so a retry wakes up at its time rather than on an unrelated event (reference §3.7, §12.6).

Fixes over the reference: `jobObservedAt` is part of the step status (the reference's was pruned by its CRD
schema, so a vanished Job was never noticed, §12.11); a step whose Job never appears is resubmitted
(idempotently, same name) after a grace period; backoff grows exponentially from `retryBackoffSeconds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from jangar.api.shape import as_map, maps
from jangar.conditions import format_time, parse_time
from jangar.scheduler.context import StepRef
from jangar.scheduler.naming import job_name
from jangar.scheduler.outcome import classify_job
from jangar.settings import ControllerTuning

__all__ = ["MAX_BACKOFF_SECONDS", "WorkflowPlan", "plan_workflow", "retry_backoff", "workflow_steps"]

MAX_BACKOFF_SECONDS = 3600
_DEFAULTS = ControllerTuning()
WAITING_FOR_JOB = "Waiting for job to be created"


def workflow_steps(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """`spec.workflow.steps` entries that have a name (validation rejects the others)."""
    steps = maps(as_map(as_map(run.get("spec")).get("workflow")).get("steps"))
    return [s for s in steps if isinstance(s.get("name"), str) and s["name"]]


def _int(value: Any, default: int = 0) -> int:
    return (
        int(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        else default
    )


def retry_backoff(step: Mapping[str, Any], failed_attempt: int) -> float:
    """`retryBackoffSeconds` doubled for each further attempt, capped at an hour; 0 retries at once."""
    base = _int(step.get("retryBackoffSeconds"))
    if base == 0:
        return 0.0
    return float(min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, failed_attempt - 1)))


@dataclass(frozen=True)
class WorkflowPlan:
    """The result of one pass.

    * `phase`: Running, Succeeded or Failed; `reason`/`message` explain terminal phases (and the condition).
    * `steps`: the new `status.workflow.steps`.
    * `submit`: the step attempt whose ConfigMaps and Job to create now (build it with `build_job_plan`),
      or `None`. Its `jobRef` is already recorded in `steps` so a crash after the create adopts the Job.
    * `finished_jobs`: Jobs that ended in this pass; patch their TTL *after* writing the status.
    * `stop_jobs`: Jobs that cannot finish on their own (stuck image pulls); delete them.
    * `warnings`: (reason, message) for `Warning=True`, e.g. `WorkflowJobMissing`, `ImagePullBackOff`.
    """

    phase: Literal["Running", "Succeeded", "Failed"]
    steps: list[dict[str, Any]]
    reason: str = ""
    message: str = ""
    submit: StepRef | None = None
    requeue_after: float | None = None
    finished_jobs: list[str] = field(default_factory=list)
    stop_jobs: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)


def _set_phase(entry: dict[str, Any], phase: str, now: datetime, message: str | None = None) -> None:
    if entry.get("phase") != phase:
        entry["phase"] = phase
        entry["lastTransitionTime"] = format_time(now)
    if message is not None:
        entry["message"] = message


def plan_workflow(
    run: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any]],
    *,
    now: datetime,
    pods: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    missing_job_grace_seconds: float = _DEFAULTS.missing_job_grace_seconds,
    image_pull_grace_seconds: float = _DEFAULTS.image_pull_grace_seconds,
    scheduling_grace_seconds: float = _DEFAULTS.scheduling_grace_seconds,
) -> WorkflowPlan:
    """Walk the steps in order and decide this pass. `jobs`/`pods` are keyed by Job name."""
    metadata = as_map(run.get("metadata"))
    run_name, namespace = str(metadata.get("name")), metadata.get("namespace")
    previous = {
        str(s.get("name")): dict(s)
        for s in ((as_map(run.get("status")).get("workflow")) or {}).get("steps") or ()
        if isinstance(s, Mapping)
    }
    specs = workflow_steps(run)
    entries = [
        previous.get(s["name"]) or {"name": s["name"], "phase": "Pending", "attempt": 0} for s in specs
    ]
    finished: list[str] = []
    stop: list[str] = []
    warnings: list[tuple[str, str]] = []

    def result(phase: Literal["Running", "Succeeded", "Failed"], **kw: Any) -> WorkflowPlan:
        return WorkflowPlan(phase, entries, finished_jobs=finished, stop_jobs=stop, warnings=warnings, **kw)

    for index, (spec, entry) in enumerate(zip(specs, entries, strict=True), start=1):
        name = spec["name"]
        max_attempts = _int(spec.get("retries")) + 1
        attempt = _int(entry.get("attempt"))
        phase = entry.get("phase") or "Pending"

        if phase == "Succeeded":
            continue
        if phase == "Failed":
            return result(
                "Failed",
                reason="WorkflowStepFailed",
                message=f"step {name} failed: {entry.get('message', '')}",
            )
        if phase == "Retrying":
            retry_at = parse_time(entry.get("nextRetryAt"))
            if retry_at is not None and retry_at > now:
                return result("Running", requeue_after=max(0.0, (retry_at - now).total_seconds()))
            phase = "Pending"

        if phase == "Pending":
            attempt += 1
            if attempt > max_attempts:
                _set_phase(entry, "Failed", now, "Retry limit exceeded")
                entry["finishedAt"] = format_time(now)
                return result(
                    "Failed",
                    reason="WorkflowStepRetriesExhausted",
                    message=f"step {name} failed after {max_attempts} attempt(s)",
                )
            job = job_name(run_name, (index, attempt))
            entry.update(
                attempt=attempt, startedAt=format_time(now), jobRef={"name": job, "namespace": namespace}
            )
            for stale in ("nextRetryAt", "finishedAt", "jobObservedAt", "reason"):
                entry.pop(stale, None)
            _set_phase(entry, "Running", now, WAITING_FOR_JOB)
            return result(
                "Running",
                submit=StepRef(name, index, attempt, spec),
                requeue_after=missing_job_grace_seconds,
            )

        # Running: look at the step's Job.
        ref = as_map(entry.get("jobRef"))
        job_key = str(ref.get("name") or job_name(run_name, (index, max(attempt, 1))))
        job_obj = jobs.get(job_key)
        if job_obj is None:
            if entry.get("jobObservedAt"):
                message = f"job {job_key} of step {name} disappeared before it finished"
                warnings.append(("WorkflowJobMissing", message))
                if attempt < max_attempts:
                    delay = retry_backoff(spec, attempt)
                    entry["nextRetryAt"] = format_time(now + timedelta(seconds=delay))
                    entry["reason"] = "WorkflowJobMissing"
                    _set_phase(entry, "Retrying", now, message)
                    return result("Running", requeue_after=delay)
                _set_phase(entry, "Failed", now, message)
                entry["finishedAt"] = format_time(now)
                return result("Failed", reason="WorkflowJobMissing", message=message)
            started = parse_time(entry.get("startedAt")) or now
            waited = (now - started).total_seconds()
            _set_phase(entry, "Running", now, WAITING_FOR_JOB)
            if waited >= missing_job_grace_seconds:  # the create was lost: submit the same attempt again
                entry["startedAt"] = format_time(now)  # once per grace, not on every pass
                return result(
                    "Running",
                    submit=StepRef(name, index, max(attempt, 1), spec),
                    requeue_after=missing_job_grace_seconds,
                )
            return result("Running", requeue_after=missing_job_grace_seconds - waited)

        job_meta = as_map(job_obj.get("metadata"))
        if job_meta.get("uid"):
            entry["jobRef"] = {"name": job_key, "namespace": namespace, "uid": job_meta["uid"]}
        if not entry.get("jobObservedAt"):
            entry["jobObservedAt"] = format_time(now)
            if entry.get("message") == WAITING_FOR_JOB:
                entry["message"] = ""
        outcome = classify_job(
            job_obj,
            (pods or {}).get(job_key, ()),
            now=now,
            image_pull_grace_seconds=image_pull_grace_seconds,
            scheduling_grace_seconds=scheduling_grace_seconds,
        )
        if outcome.phase == "Succeeded":
            finished.append(job_key)
            if outcome.started_at:
                entry["startedAt"] = format_time(outcome.started_at)
            entry["finishedAt"] = format_time(outcome.finished_at or now)
            entry.pop("reason", None)
            _set_phase(entry, "Succeeded", now, "")
            continue
        if outcome.phase == "Failed":
            finished.append(job_key)
            if outcome.stop_job:
                stop.append(job_key)
            entry["reason"] = outcome.reason
            if attempt < max_attempts:
                delay = retry_backoff(spec, attempt)
                entry["nextRetryAt"] = format_time(now + timedelta(seconds=delay))
                _set_phase(entry, "Retrying", now, outcome.message)
                if delay > 0:
                    return result("Running", requeue_after=delay)
                # No backoff: start the next attempt in this same pass.
                entry["attempt"] = attempt + 1
                job = job_name(run_name, (index, attempt + 1))
                entry.update(startedAt=format_time(now), jobRef={"name": job, "namespace": namespace})
                for stale in ("nextRetryAt", "finishedAt", "jobObservedAt"):
                    entry.pop(stale, None)
                _set_phase(entry, "Running", now, WAITING_FOR_JOB)
                return result(
                    "Running",
                    submit=StepRef(name, index, attempt + 1, spec),
                    requeue_after=missing_job_grace_seconds,
                )
            entry["finishedAt"] = format_time(outcome.finished_at or now)
            _set_phase(entry, "Failed", now, f"Step failed: {outcome.message}")
            return result(
                "Failed", reason="WorkflowStepFailed", message=f"step {name} failed: {outcome.message}"
            )
        if outcome.reason:
            warnings.append((outcome.reason, outcome.message))
        return result("Running", requeue_after=outcome.requeue_after)

    return result("Succeeded", reason="Completed", message="all workflow steps succeeded")
