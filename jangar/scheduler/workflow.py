"""The native `workflow` runtime: sequential steps, each attempt its own Job, retries with backoff.

`plan_workflow` is pure: given the run (spec + current `status.workflow.steps`), the step Jobs and Pods from
the cache and the time, it returns the new step statuses, the run's phase, at most one step attempt to
submit, the Jobs that finished in this pass (for the TTL patch after the status write) and `requeue_after`,
so a retry wakes up at its time rather than on an unrelated event (reference §3.7, §12.6).

Fixes over the reference: `jobObservedAt` is part of the step status (the reference's was pruned by its CRD
schema, so a vanished Job was never noticed, §12.11); a step whose Job never appears is resubmitted
(idempotently, same name) after a grace period; backoff grows exponentially from `retryBackoffSeconds`.

0.9.29 (issue 13): an attempt past the step's `timeoutSeconds` (its Job's activeDeadlineSeconds) is
`WorkflowStepTimedOut`, retried while attempts remain and then the step's and the run's reason; a step with
`loop` repeats as `jangar.scheduler.workflow_loop` decides after each successful iteration, each iteration
its own Job with its own attempts (docs/workflows.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from jangar.api.shape import as_map, maps
from jangar.conditions import format_time, parse_time
from jangar.scheduler.context import StepRef
from jangar.scheduler.job import CONTAINER_NAME
from jangar.scheduler.naming import StepKey, job_name
from jangar.scheduler.outcome import classify_job
from jangar.scheduler.workflow_loop import (
    LoopSpec,
    LoopVerdict,
    after_iteration,
    current_iteration,
    loop_spec,
    note_iteration,
    read_control,
)
from jangar.settings import ControllerTuning

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "STEP_TIMED_OUT",
    "WorkflowPlan",
    "plan_workflow",
    "retry_backoff",
    "workflow_steps",
]

MAX_BACKOFF_SECONDS = 3600
_DEFAULTS = ControllerTuning()
WAITING_FOR_JOB = "Waiting for job to be created"
STEP_TIMED_OUT = "WorkflowStepTimedOut"
"""The reference's reason (0.9.29) for a step attempt past its `timeoutSeconds`: on the step while it is
retried, and on the step and the run when no attempt is left."""
_STEP_RUN_REASONS = frozenset({STEP_TIMED_OUT, "WorkflowLoopControlMissing", "WorkflowLoopControlInvalid"})
"""Step reasons the failed run takes over (any other failed step fails the run with WorkflowStepFailed)."""


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
    * `events`: (type, reason, message) of step transitions users care about: a timed-out attempt
      (`WorkflowStepTimedOut`), a loop that stopped (`WorkflowLoopStopped`) or failed the step.
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
    events: list[tuple[str, str, str]] = field(default_factory=list)


def _set_phase(entry: dict[str, Any], phase: str, now: datetime, message: str | None = None) -> None:
    if entry.get("phase") != phase:
        entry["phase"] = phase
        entry["lastTransitionTime"] = format_time(now)
    if message is not None:
        entry["message"] = message


def _key(index: int, attempt: int, iteration: int) -> StepKey:
    """The name key of a step attempt (and of its iteration, for a looping step)."""
    return (index, attempt, iteration) if iteration > 0 else (index, attempt)


def _attempt_failure(reason: str, message: str, attempt: int, job: Mapping[str, Any]) -> tuple[str, str]:
    """A failed attempt's reason and message; a Job past its deadline is the step's timeout."""
    if reason != "DeadlineExceeded":
        return reason, message
    deadline = as_map(job.get("spec")).get("activeDeadlineSeconds")
    return STEP_TIMED_OUT, f"attempt {attempt} ran longer than timeoutSeconds={deadline}"


@dataclass(frozen=True)
class _Step:
    """The step being planned: its spec entry, its (mutable) status entry and its loop."""

    name: str
    index: int
    spec: Mapping[str, Any]
    entry: dict[str, Any]
    loop: LoopSpec | None


def _start(
    step: _Step, run_name: str, namespace: Any, now: datetime, attempt: int, iteration: int
) -> StepRef:
    """Record attempt `attempt` (of iteration `iteration`) as started on the step's entry; the attempt to
    submit. Its `jobRef` is recorded first, so a crash after the create adopts the Job."""
    entry = step.entry
    job = job_name(run_name, _key(step.index, attempt, iteration))
    entry.update(attempt=attempt, startedAt=format_time(now), jobRef={"name": job, "namespace": namespace})
    for stale in ("nextRetryAt", "finishedAt", "jobObservedAt", "reason"):
        entry.pop(stale, None)
    _set_phase(entry, "Running", now, WAITING_FOR_JOB)
    if step.loop is not None:
        started = {
            "phase": "Running",
            "attempt": attempt,
            "startedAt": entry["startedAt"],
            "jobRef": entry["jobRef"],
        }
        note_iteration(entry, step.loop, iteration, started, drop=("finishedAt", "reason", "message"))
    return StepRef(step.name, step.index, attempt, step.spec, iteration)


def _loop_event(step: str, iteration: int, verdict: LoopVerdict) -> tuple[str, str, str]:
    """The Event of a loop that ended after `iteration`: Normal when it stopped, Warning when it failed."""
    if verdict.action == "fail":
        return ("Warning", verdict.reason, f"step {step} iteration {iteration}: {verdict.message}")
    return (
        "Normal",
        "WorkflowLoopStopped",
        f"step {step} loop stopped after iteration {iteration} ({verdict.stop_reason}): {verdict.message}",
    )


def plan_workflow(
    run: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any]],
    *,
    now: datetime,
    pods: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    missing_job_grace_seconds: float = _DEFAULTS.missing_job_grace_seconds,
    image_pull_grace_seconds: float = _DEFAULTS.image_pull_grace_seconds,
    scheduling_grace_seconds: float = _DEFAULTS.scheduling_grace_seconds,
    container: str = CONTAINER_NAME,
) -> WorkflowPlan:
    """Walk the steps in order and decide this pass. `jobs`/`pods` are keyed by Job name; `container` is
    the step container whose termination message carries a looping step's control data."""
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
    events: list[tuple[str, str, str]] = []

    def result(phase: Literal["Running", "Succeeded", "Failed"], **kw: Any) -> WorkflowPlan:
        return WorkflowPlan(
            phase, entries, finished_jobs=finished, stop_jobs=stop, warnings=warnings, events=events, **kw
        )

    for index, (spec, entry) in enumerate(zip(specs, entries, strict=True), start=1):
        name = spec["name"]
        max_attempts = _int(spec.get("retries")) + 1
        attempt = _int(entry.get("attempt"))
        phase = entry.get("phase") or "Pending"
        loop = loop_spec(spec)
        iteration = current_iteration(entry) if loop is not None else 0

        step = _Step(name, index, spec, entry, loop)

        if phase == "Succeeded":
            continue
        if phase == "Failed":
            reason = entry.get("reason") if entry.get("reason") in _STEP_RUN_REASONS else "WorkflowStepFailed"
            return result(
                "Failed",
                reason=str(reason),
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
            return result(
                "Running",
                submit=_start(step, run_name, namespace, now, attempt, iteration),
                requeue_after=missing_job_grace_seconds,
            )

        # Running: look at the step's Job.
        ref = as_map(entry.get("jobRef"))
        job_key = str(ref.get("name") or job_name(run_name, _key(index, max(attempt, 1), iteration)))
        job_obj = jobs.get(job_key)
        if job_obj is None:
            if entry.get("jobObservedAt"):
                message = f"job {job_key} of step {name} disappeared before it finished"
                warnings.append(("WorkflowJobMissing", message))
                if loop is not None:  # the iteration's own record, as for a failed attempt
                    lost = {"phase": "Retrying" if attempt < max_attempts else "Failed"}
                    lost.update(reason="WorkflowJobMissing", message=message)
                    note_iteration(entry, loop, iteration, lost)
                    if attempt >= max_attempts:
                        entry["loop"]["stopReason"] = "IterationFailed"
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
                    submit=StepRef(name, index, max(attempt, 1), spec, iteration),
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
        job_pods = (pods or {}).get(job_key, ())
        outcome = classify_job(
            job_obj,
            job_pods,
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
            if loop is None:
                _set_phase(entry, "Succeeded", now, "")
                continue
            note_iteration(
                entry,
                loop,
                iteration,
                {"phase": "Succeeded", "jobRef": entry["jobRef"], "finishedAt": entry["finishedAt"]},
            )
            verdict = after_iteration(loop, iteration, read_control(job_pods, container))
            if verdict.action == "next":
                return result(
                    "Running",
                    submit=_start(step, run_name, namespace, now, 1, iteration + 1),
                    requeue_after=missing_job_grace_seconds,
                )
            entry["loop"]["stopReason"] = verdict.stop_reason
            events.append(_loop_event(name, iteration, verdict))
            if verdict.action == "stop":
                _set_phase(entry, "Succeeded", now, verdict.message)
                continue
            entry["reason"] = verdict.reason
            _set_phase(entry, "Failed", now, verdict.message)
            return result(
                "Failed",
                reason=verdict.reason,
                message=f"step {name} iteration {iteration}: {verdict.message}",
            )
        if outcome.phase == "Failed":
            finished.append(job_key)
            if outcome.stop_job:
                stop.append(job_key)
            reason, message = _attempt_failure(outcome.reason, outcome.message, attempt, job_obj)
            entry["reason"] = reason
            retrying = attempt < max_attempts
            if reason == STEP_TIMED_OUT:
                then = "retrying" if retrying else "no attempt left"
                events.append(("Warning", STEP_TIMED_OUT, f"step {name}: {message}; {then}"))
            if loop is not None:
                note_iteration(
                    entry,
                    loop,
                    iteration,
                    {"phase": "Retrying" if retrying else "Failed", "reason": reason, "message": message},
                )
            if retrying:
                delay = retry_backoff(spec, attempt)
                entry["nextRetryAt"] = format_time(now + timedelta(seconds=delay))
                _set_phase(entry, "Retrying", now, message)
                if delay > 0:
                    return result("Running", requeue_after=delay)
                return result(  # no backoff: the next attempt in this same pass
                    "Running",
                    submit=_start(step, run_name, namespace, now, attempt + 1, iteration),
                    requeue_after=missing_job_grace_seconds,
                )
            if loop is not None:
                entry["loop"]["stopReason"] = "IterationFailed"
            entry["finishedAt"] = format_time(outcome.finished_at or now)
            final = reason if reason in _STEP_RUN_REASONS else "WorkflowStepFailed"
            _set_phase(entry, "Failed", now, f"Step failed: {message}")
            return result("Failed", reason=final, message=f"step {name} failed: {message}")
        if outcome.reason:
            warnings.append((outcome.reason, outcome.message))
        return result("Running", requeue_after=outcome.requeue_after)

    return result("Succeeded", reason="Completed", message="all workflow steps succeeded")
