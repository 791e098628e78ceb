"""The AgentRun decision: `decide(snapshot, verdict) -> RunPlan`, pure and level-triggered.

Each pass decides from scratch what the run needs, from its snapshot only (reference §12.3):

1. being deleted → delete its Jobs, record it, drop the finalizer `agents.proompteng.ai/runtime-cleanup`;
2. a template (`agents.proompteng.ai/template: "true"`, 0.9.29) that has not started → nothing at all;
   no finalizer → add it, and go on deciding in the same pass;
3. finished → a finished run owns no unfinished Job; its finished Jobs get their TTL (the run itself is
   deleted at the end of its retention by the retention sweep, `jangar.controllers.sweep`, issue 13);
4. the annotation `agents.proompteng.ai/cancel: "true"` → delete the Jobs, phase Cancelled;
   then an accepted run whose immutable spec no longer matches `status.specHash` (`spec_hash.py`) has its
   Jobs deleted and fails SpecImmutableViolation, or only gets a Warning when enforcement is off;
5. a Running `workflow` run → `plan_workflow` walks the steps; a step to start is prepared with
   `prepare_run` and built with `build_job_plan`;
6. a `job` run with a Job → `classify_job` turns the Job and its Pods into the outcome; a vanished Job is
   waited for, recreated once or fails the run (`missing_job_action`);
7. otherwise submission: `prepare_run` (a problem that is only a missing referenced object holds the run
   Pending for the reference grace; any other fails it), then the run's Budget (exceeded: Pending with
   BudgetExceeded=True until it allows the run; missing: a missing reference), then admission: without a verdict the plan asks
   for one (`NEEDS_ADMISSION`) and the reconciler decides again with `AdmissionGate.admit`'s answer —
   Queued with the limit and position, QueueLimitExceeded, or admitted: the Job (or the first workflow step).

Every status states the full condition set (`run_conditions`) and the phase's `reason`/`message`; the
accepted one also records `specHash` and `systemPromptHash` (`immutability.acceptance_fields`). `_prepare`
applies the Agent's system-prompt policy (`prompting.with_system_prompt`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from jangar.admission import WAIT_REQUEUE_SECONDS, Admit, Rejection, Verdict, Waiting
from jangar.api.contract import (
    ANNOTATION_CANCEL,
    FINALIZER_RUNTIME_CLEANUP,
    Phase,
    is_cancel_requested,
    is_resting_template,
    is_terminal,
)
from jangar.conditions import format_time, parse_time
from jangar.controllers.agentrun.immutability import acceptance_fields, warn_spec_change
from jangar.controllers.agentrun.plan import NEEDS_ADMISSION, RunPlan, StatusUpdate
from jangar.controllers.agentrun.prompt_read import PROMPT_NOT_FOUND
from jangar.controllers.agentrun.prompting import with_system_prompt
from jangar.controllers.agentrun.runner_summary import runner_summary
from jangar.controllers.agentrun.snapshot import RunSnapshot, classify, job_finished, live_job, plan_steps
from jangar.controllers.agentrun.spec_hash import REASON_SPEC_IMMUTABLE, SpecChange, spec_change
from jangar.controllers.agentrun.workflow_artifacts import step_artifacts
from jangar.controllers.budget_hold import BUDGET_RECHECK_SECONDS
from jangar.controllers.runconditions import RunDetails, run_conditions
from jangar.controllers.runner_sa import MISSING_SERVICE_ACCOUNT, missing_service_account
from jangar.controllers.status import compose_status
from jangar.prepare import Prepared, prepare_run
from jangar.scheduler import (
    StepRef,
    build_job_plan,
    job_ttl_seconds,
    missing_job_action,
    runtime_ref,
)
from jangar.scheduler.artifacts import RunArtifacts, run_artifacts
from jangar.scheduler.job import CONTAINER_NAME
from jangar.scheduler.outcome import container_report
from jangar.scheduler.provider_health import ProviderHold, provider_hold
from jangar.scheduler.runtimes import runtime_type
from jangar.scheduler.workflow import WorkflowPlan
from jangar.validation import Problem, summarize
from jangar.vcs import VcsResolution

__all__ = [
    "FOREIGN_CHILD_REQUEUE_SECONDS",
    "MISSING_REFERENCE_REASONS",
    "NOT_ASKED",
    "decide",
    "on_foreign_child",
]

#: Problems a user fixes by creating another object; the run waits `reference_grace_seconds` for it.
MISSING_REFERENCE_REASONS = frozenset(
    {
        "MissingAgent",
        "MissingProvider",
        "MissingImplementation",
        "MissingMemory",
        "MissingVcsProvider",
        "MissingBudget",
        "MissingWorkspace",
        MISSING_SERVICE_ACCOUNT,
        PROMPT_NOT_FOUND,
    }
)
FOREIGN_CHILD_REQUEUE_SECONDS = 5.0
_SUBMISSION_WARNINGS = frozenset({"DeprecatedAuth"})


class _NotAsked:
    """No admission verdict yet: a run ready to start gets `NEEDS_ADMISSION`."""


NOT_ASKED = _NotAsked()


# -- status ------------------------------------------------------------------------------------------


def _status(
    snap: RunSnapshot,
    phase: str,
    details: RunDetails,
    fields: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
) -> StatusUpdate:
    """The run's new status for `phase` (on top of `run`'s, by default the snapshot's)."""
    base = run if run is not None else snap.run
    old = base.get("status") or {}
    if snap.budget is not None and details.budget is None:
        details = replace(details, budget=snap.budget.condition)
    merged: dict[str, Any] = dict(fields or {})
    if is_terminal(phase) and not old.get("finishedAt") and "finishedAt" not in merged:
        merged["finishedAt"] = format_time(snap.now)
    if details.accepted:  # issue 13 item 3: specHash and systemPromptHash, fixed at acceptance
        merged.update(
            {k: v for k, v in acceptance_fields(base, old, snap.system_prompt).items() if k not in merged}
        )
    # issue 13 item 3: the top-level reason/message of the current phase, replaced (or cleared) every pass
    merged.setdefault("reason", details.reason or None)
    merged.setdefault("message", details.message or None)
    status = compose_status(
        old,
        phase=phase,
        conditions=run_conditions(phase, details),
        generation=snap.run["metadata"].get("generation"),
        now=snap.now,
        fields=merged,
        summary_reason=details.reason if is_terminal(phase) or details.invalid else None,
        summary_message=details.message,
    )
    return StatusUpdate(phase, details, status)


def _with_status(run: Mapping[str, Any], update: StatusUpdate | None) -> Mapping[str, Any]:
    """`run` as it will be once `update` is written."""
    return run if update is None else {**run, "status": update.status}


def _job_ended(snap: RunSnapshot, name: str, job: Mapping[str, Any]) -> bool:
    """The Job reached an outcome on its own (its pods succeeded or failed, even if the Job controller has
    not added its final condition yet); a Job stuck in an image pull or unschedulable is not ended."""
    outcome = classify(job, snap.pods.get(name, ()), snap.now, snap.timing)
    return outcome.terminal and not outcome.stop_job


# -- entry -------------------------------------------------------------------------------------------


def decide(snap: RunSnapshot, verdict: Verdict | _NotAsked = NOT_ASKED) -> RunPlan:
    """This pass's plan for the run in `snap`. `verdict` is admission's answer, once the plan asked for it."""
    meta = snap.run["metadata"]
    finalizers = meta.get("finalizers") or ()
    if meta.get("deletionTimestamp"):
        if FINALIZER_RUNTIME_CLEANUP not in finalizers:
            return RunPlan(release_admission=True)
        return RunPlan(release_admission=True, delete_jobs=tuple(sorted(snap.jobs)), remove_finalizer=True)
    if is_resting_template(snap.run):
        return RunPlan()  # a copy source (Schedule target): never run, nothing to hold or clean up
    plan = _decide(snap, verdict)
    if FINALIZER_RUNTIME_CLEANUP not in finalizers and not plan.needs_admission:
        plan = replace(plan, add_finalizer=True)
    return plan


def _decide(snap: RunSnapshot, verdict: Verdict | _NotAsked) -> RunPlan:
    status = snap.run.get("status") or {}
    if is_terminal(status.get("phase")):
        return _finished(snap, snap.run)
    if is_cancel_requested(snap.run):
        return _cancel(snap)
    change = spec_change(snap.run)  # issue 13 item 3: an accepted run's spec was edited
    if change is not None and snap.settings.spec_policy.spec_immutability_enforced:
        return _spec_violation(snap, change)
    plan = _decide_live(snap, verdict)
    return plan if change is None else warn_spec_change(snap.run, plan, change, snap.now)


def _decide_live(snap: RunSnapshot, verdict: Verdict | _NotAsked) -> RunPlan:
    status = snap.run.get("status") or {}
    if runtime_type(snap.run) == "workflow" and status.get("phase") == Phase.RUNNING:
        return _workflow(snap, snap.run)
    if (status.get("jobRef") or {}).get("name"):
        return _observe(snap)
    return _submit(snap, verdict)


def _finished(snap: RunSnapshot, run: Mapping[str, Any], plan: RunPlan | None = None) -> RunPlan:
    """A finished run: no unfinished Job is left, finished Jobs get their TTL (retention: the sweep)."""
    plan = plan or RunPlan()
    deleting = set(plan.delete_jobs)
    stray = tuple(
        name
        for name, job in sorted(snap.jobs.items())
        if name not in deleting and not _job_ended(snap, name, job)
    )
    ttl = job_ttl_seconds(run, snap.settings)
    ttls = dict(plan.job_ttls)
    if ttl is not None:
        for name, job in sorted(snap.jobs.items()):
            if name in deleting or name in stray or not job_finished(job):
                continue
            if (job.get("spec") or {}).get("ttlSecondsAfterFinished") != ttl:
                ttls[name] = ttl
    return replace(plan, delete_jobs=(*plan.delete_jobs, *stray), job_ttls=tuple(sorted(ttls.items())))


def _spec_violation(snap: RunSnapshot, change: SpecChange) -> RunPlan:
    """An accepted run's immutable spec changed: stop its runtime (every Job) and fail it."""
    details = RunDetails(REASON_SPEC_IMMUTABLE, change.message, accepted=True)
    fields: dict[str, Any] = {}
    workflow = (snap.run.get("status") or {}).get("workflow")
    if isinstance(workflow, Mapping) and not is_terminal(workflow.get("phase")):
        fields["workflow"] = {**workflow, "phase": Phase.FAILED, "lastTransitionTime": format_time(snap.now)}
    update = _status(snap, Phase.FAILED, details, fields)
    plan = RunPlan(release_admission=True, status=update, delete_jobs=tuple(sorted(snap.jobs)))
    return _finished(snap, _with_status(snap.run, update), plan)


def _cancel(snap: RunSnapshot) -> RunPlan:
    accepted = bool(((snap.run.get("status") or {}).get("jobRef") or {}).get("name"))
    details = RunDetails(
        "Cancelled", f"cancelled through the {ANNOTATION_CANCEL} annotation", accepted=accepted
    )
    fields: dict[str, Any] = {}
    workflow = (snap.run.get("status") or {}).get("workflow")
    if isinstance(workflow, Mapping) and workflow.get("phase") != Phase.CANCELLED:
        fields["workflow"] = {
            **workflow,
            "phase": Phase.CANCELLED,
            "lastTransitionTime": format_time(snap.now),
        }
    update = _status(snap, Phase.CANCELLED, details, fields)
    plan = RunPlan(release_admission=True, status=update, delete_jobs=tuple(sorted(snap.jobs)))
    return _finished(snap, _with_status(snap.run, update), plan)


# -- submission --------------------------------------------------------------------------------------


def _prepare(snap: RunSnapshot, step: StepRef | None = None) -> Prepared:
    prepared = prepare_run(
        snap.run,
        snap.lookup,
        snap.settings,
        step=step,
        active_runs=snap.active_runs,
        secret_has_key=snap.secret_has_key,
        configmap_has_key=snap.configmap_has_key,
        now=snap.now,
    )
    return with_system_prompt(prepared, snap.run, snap.system_prompt, snap.settings, step)


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


def _prepared_fields(prepared: Prepared) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if prepared.contract is not None and prepared.contract.required_keys:
        fields["contract"] = prepared.contract.status
    if prepared.vcs is not None and prepared.vcs.status:
        fields["vcs"] = prepared.vcs.status
    return fields


def _invalid(snap: RunSnapshot, problems: list[Problem], fields: Mapping[str, Any]) -> RunPlan:
    """Hold a run Pending while a referenced object may still appear; fail it for anything else."""
    reason, message = summarize(problems)
    created = parse_time(snap.run["metadata"].get("creationTimestamp")) or snap.now
    waited = (snap.now - created).total_seconds()
    grace = snap.timing.reference_grace_seconds
    if all(p.reason in MISSING_REFERENCE_REASONS for p in problems) and waited < grace:
        left = grace - waited
        until = format_time(created + timedelta(seconds=grace))
        details = RunDetails(reason, f"{message}; waiting until {until} for it to be created", invalid=True)
        return RunPlan(status=_status(snap, Phase.PENDING, details, fields), requeue_after=max(1.0, left))
    return RunPlan(status=_status(snap, Phase.FAILED, RunDetails(reason, message, invalid=True), fields))


def _submit(snap: RunSnapshot, verdict: Verdict | _NotAsked) -> RunPlan:
    prepared = _prepare(snap)
    fields = _prepared_fields(prepared)
    if not prepared.valid:
        return _invalid(snap, prepared.problems, fields)
    if snap.budget is not None and snap.budget.holds:
        return _budget_hold(snap, fields)
    held = provider_hold(prepared.context.provider if prepared.context else None, snap.now)
    if held is not None:
        return _provider_hold(snap, held, fields)
    if snap.service_account is not None and snap.service_account.blocks:
        return _invalid(snap, [missing_service_account(snap.service_account, snap.namespace)], fields)
    if isinstance(verdict, _NotAsked):
        return NEEDS_ADMISSION
    status = snap.run.get("status") or {}
    queue = dict(status.get("queue") or {})
    if isinstance(verdict, Waiting):
        queue.update(
            enqueuedAt=queue.get("enqueuedAt") or format_time(snap.now),
            scope=verdict.scope,
            key=verdict.key,
            limit=verdict.limit,
            position=verdict.position,
        )
        message = f"{verdict.message}; position {verdict.position} in the queue"
        details = RunDetails(verdict.reason, message, **_vcs_details(prepared.vcs))
        return RunPlan(
            status=_status(snap, Phase.QUEUED, details, {**fields, "queue": queue}),
            requeue_after=verdict.requeue_after or WAIT_REQUEUE_SECONDS,
        )
    if isinstance(verdict, Rejection):
        return RunPlan(
            status=_status(snap, Phase.FAILED, RunDetails(verdict.reason, verdict.message), fields)
        )
    if not isinstance(verdict, Admit):
        return RunPlan()  # finished or gone in the admission snapshot: the next event decides
    if runtime_type(snap.run) == "workflow":
        admitted_queue = {k: v for k, v in queue.items() if k == "enqueuedAt"}
        admitted_queue["admittedAt"] = format_time(verdict.admitted_at)
        details = RunDetails("Admitted", "workflow admitted; starting its first step")
        update = _status(
            snap,
            Phase.RUNNING,
            details,
            {**fields, "queue": admitted_queue, "startedAt": format_time(snap.now)},
        )
        plan = _workflow(snap, _with_status(snap.run, update))
        return replace(plan, admitted=True, status=plan.status or update)
    return _start_job(snap, prepared, verdict.admitted_at, queue, fields, admitted=True)


def _budget_hold(snap: RunSnapshot, fields: Mapping[str, Any]) -> RunPlan:
    """The run's Budget is exceeded (or cannot be read, or does not exist): wait before admission. A
    missing Budget is a missing reference (held for the grace, then failed); otherwise the run stays
    Pending with BudgetExceeded=True, out of the admission queue, until a Budget change wakes it."""
    assert snap.budget is not None
    check = snap.budget
    if not check.verdict.found:
        problem = Problem(
            "MissingBudget",
            f"budget {check.name!r} not found in namespace {snap.namespace!r}",
            field="spec.budgetRef",
        )
        return _invalid(snap, [problem], fields)
    _, reason, message = check.condition
    return RunPlan(
        release_admission=True,
        status=_status(snap, Phase.PENDING, RunDetails(reason, message), fields),
        requeue_after=BUDGET_RECHECK_SECONDS,
    )


def _provider_hold(snap: RunSnapshot, held: ProviderHold, fields: Mapping[str, Any]) -> RunPlan:
    """The run's AgentProvider failed on capacity or auth lately (drift row 10): the run stays Pending with
    Blocked=True, out of the admission queue, until the hold ends (its `until`, or sooner when the provider
    recovers: a provider health change wakes the runs waiting on it)."""
    message = f"agent provider {held.provider} is unhealthy: {held.message}"
    details = RunDetails(held.reason, message, blocked=(held.reason, message))
    left = (held.until - snap.now).total_seconds()
    return RunPlan(
        release_admission=True,
        status=_status(snap, Phase.PENDING, details, fields),
        requeue_after=max(1.0, min(left, BUDGET_RECHECK_SECONDS)),
    )


def _start_job(
    snap: RunSnapshot,
    prepared: Prepared,
    admitted_at: datetime,
    queue: Mapping[str, Any],
    fields: Mapping[str, Any],
    *,
    admitted: bool = False,
    recreated: bool = False,
) -> RunPlan:
    assert prepared.context is not None
    job_plan = build_job_plan(prepared.context, snap.settings)
    job_meta = job_plan.job["metadata"]
    kept_queue = {k: v for k, v in queue.items() if k in ("enqueuedAt", "admittedAt")}
    kept_queue.setdefault("admittedAt", format_time(admitted_at))
    # A recreated Job gets a fresh submission time, so the missing-Job grace starts again from now.
    extra = {"recreated": True, "submittedAt": format_time(snap.now)} if recreated else {}
    status = snap.run.get("status") or {}
    job_fields = {
        **fields,
        "queue": kept_queue,
        "jobRef": {"name": job_meta["name"], "namespace": job_meta["namespace"]},
        "runtimeRef": runtime_ref(job_plan.job, **extra),
        "startedAt": status.get("startedAt") or format_time(snap.now),
    }
    details = RunDetails(
        "Submitted", f"created Job {job_meta['name']}", accepted=True, **_vcs_details(prepared.vcs)
    )
    return RunPlan(
        admitted=admitted,
        app_token=prepared.vcs.app_token if prepared.vcs is not None else None,
        ensure_service_account=snap.service_account.to_create if snap.service_account else None,
        create=job_plan,
        status=_status(snap, Phase.RUNNING, details, job_fields),
        notes=(f"recreating Job {job_meta['name']}: it never appeared",) if recreated else (),
    )


def on_foreign_child(snap: RunSnapshot, message: str) -> RunPlan:
    """A child's deterministic name is taken by an object another run (or incarnation) controls: wait for
    garbage collection instead of adopting it."""
    status = snap.run.get("status") or {}
    if runtime_type(snap.run) == "workflow" and status.get("phase") == Phase.RUNNING:
        return RunPlan(requeue_after=FOREIGN_CHILD_REQUEUE_SECONDS)
    details = RunDetails("WaitingForCleanup", message, warning=("ChildNameTaken", message))
    return RunPlan(
        release_admission=True,
        status=_status(snap, Phase.PENDING, details),
        requeue_after=FOREIGN_CHILD_REQUEUE_SECONDS,
    )


# -- observation of a `job` run ------------------------------------------------------------------------


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


def _observe(snap: RunSnapshot) -> RunPlan:
    status = snap.run.get("status") or {}
    job_name = str(status["jobRef"]["name"])
    ref = dict(status.get("runtimeRef") or {})
    job = live_job(snap.jobs.get(job_name))
    if job is None:
        return _job_missing(snap, job_name, ref)
    outcome = classify(job, snap.pods.get(job_name, ()), snap.now, snap.timing)
    job_uid = (job.get("metadata") or {}).get("uid")
    ref.setdefault("jobObservedAt", format_time(snap.now))
    if job_uid:
        ref.setdefault("uid", job_uid)
    fields: dict[str, Any] = {"runtimeRef": ref}
    job_ref = dict(status.get("jobRef") or {})
    if job_uid and not job_ref.get("uid"):
        fields["jobRef"] = {**job_ref, "uid": job_uid}
    if outcome.terminal:
        fields["finishedAt"] = format_time(outcome.finished_at or snap.now)
        if outcome.started_at is not None:
            fields["startedAt"] = format_time(outcome.started_at)
        runner, artifacts = _runner_fields(snap, snap.pods.get(job_name, ()))
        fields.update(runner)
        truncated = None
        if artifacts is not None and artifacts.reported:
            kept = len(artifacts.entries)
            truncated = (
                artifacts.truncated,
                f"{kept} of {artifacts.reported} reported artifacts recorded (JANGAR_ARTIFACTS_MAX_PER_RUN)",
            )
        phase: str = outcome.phase
        reason, message = outcome.reason, outcome.message
        if (
            truncated is not None
            and truncated[0]
            and snap.settings.artifacts.strict
            and phase == Phase.SUCCEEDED
        ):
            phase, reason = Phase.FAILED, "ArtifactsLimitExceeded"
            message = f"{truncated[1]}; JANGAR_AGENTRUN_ARTIFACTS_STRICT refuses a run over the cap"
        details = RunDetails(reason, message, accepted=True, artifacts_truncated=truncated)
        update = _status(snap, phase, details, fields)
        plan = RunPlan(
            status=update,
            delete_jobs=(job_name,) if outcome.stop_job else (),
            artifacts=tuple(artifacts.objects) if artifacts is not None else (),
        )
        return _finished(snap, _with_status(snap.run, update), plan)
    warning = (outcome.reason, outcome.message) if outcome.reason else _kept_warning(snap.run)
    state = "running" if outcome.phase == "Running" else "waiting to start"
    details = RunDetails("Running", f"Job {job_name} is {state}", accepted=True, warning=warning)
    return RunPlan(status=_status(snap, Phase.RUNNING, details, fields), requeue_after=outcome.requeue_after)


def _runner_fields(
    snap: RunSnapshot, pods: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, Any], RunArtifacts | None]:
    """`status.runner` (and `status.artifacts`, capped at `JANGAR_ARTIFACTS_MAX_PER_RUN`, when the runner
    listed them) from the agent's container, and the Artifact objects to create for them."""
    report = container_report(pods, CONTAINER_NAME)
    if report is None:
        return {}, None
    reported = report.pop("artifacts", None)
    fields: dict[str, Any] = {"runner": runner_summary(snap.run, report, reported)}
    if not reported or not isinstance(reported, list):
        return fields, None
    cfg = snap.settings.artifacts
    artifacts = run_artifacts(snap.run, reported, limit=cfg.max_per_run, ttl_days=cfg.default_ttl_days)
    if artifacts.entries:
        fields["artifacts"] = artifacts.entries
    return fields, artifacts


def _job_missing(snap: RunSnapshot, job_name: str, ref: Mapping[str, Any]) -> RunPlan:
    status = snap.run.get("status") or {}
    submitted = parse_time(ref.get("submittedAt")) or parse_time(status.get("startedAt"))
    action, wait = missing_job_action(
        ref, submitted_at=submitted, now=snap.now, grace_seconds=snap.timing.missing_job_grace_seconds
    )
    if action == "wait":
        return RunPlan(requeue_after=wait or 1.0)
    if action == "recreate" and not ref.get("recreated"):
        prepared = _prepare(snap)
        if prepared.valid and prepared.context is not None:
            queue = dict(status.get("queue") or {})
            admitted = parse_time(queue.get("admittedAt")) or snap.now
            return _start_job(snap, prepared, admitted, queue, {}, recreated=True)
    message = (
        f"Job {job_name} was deleted while the run was in progress; the run cannot be resumed safely"
        if ref.get("jobObservedAt")
        else f"Job {job_name} could not be created (it never appeared)"
    )
    update = _status(snap, Phase.FAILED, RunDetails("JobLost", message, accepted=True))
    return _finished(snap, _with_status(snap.run, update), RunPlan(status=update))


# -- the `workflow` runtime ----------------------------------------------------------------------------


def _workflow_status(run: Mapping[str, Any], wp: WorkflowPlan, now: datetime) -> dict[str, Any]:
    old = ((run.get("status") or {}).get("workflow")) or {}
    ltt = old.get("lastTransitionTime") if old.get("phase") == wp.phase else None
    return {"phase": wp.phase, "lastTransitionTime": ltt or format_time(now), "steps": wp.steps}


def _step_message(wp: WorkflowPlan) -> str:
    """What the run is doing, for the InProgress condition: the step that is not done yet."""
    for step in wp.steps:
        phase = step.get("phase")
        if phase == "Succeeded":
            continue
        name, attempt = step.get("name"), step.get("attempt")
        loop = step.get("loop") or {}
        if loop.get("iteration"):  # a looping step: which iteration is in flight
            name = f"{name} iteration {loop['iteration']}"
        job = (step.get("jobRef") or {}).get("name")
        if phase == "Retrying":
            return f"step {name} failed ({step.get('message') or 'attempt failed'}); retrying at {step.get('nextRetryAt')}"
        if phase == "Running" and step.get("jobObservedAt"):
            return f"step {name} attempt {attempt} is running (Job {job})"
        if phase == "Running":
            return f"step {name} attempt {attempt} started (Job {job})"
        return f"step {name} is {phase or 'Pending'}"
    return "all steps done"


def _observed_job_uid(run: Mapping[str, Any], wp: WorkflowPlan) -> dict[str, Any]:
    """`status.jobRef`/`runtimeRef` get the current step Job's uid once the step has seen it."""
    status = run.get("status") or {}
    job_ref = dict(status.get("jobRef") or {})
    if not job_ref.get("name") or job_ref.get("uid"):
        return {}
    for entry in wp.steps:
        ref = entry.get("jobRef") or {}
        if ref.get("name") == job_ref["name"] and ref.get("uid"):
            runtime = {**(status.get("runtimeRef") or {}), "uid": ref["uid"]}
            return {"jobRef": {**job_ref, "uid": ref["uid"]}, "runtimeRef": runtime}
    return {}


def _hold_step(
    snap: RunSnapshot, run: Mapping[str, Any], wp: WorkflowPlan, problems: list[Problem]
) -> RunPlan | None:
    """A step that cannot start only because a referenced object is missing (an Agent being replaced)
    waits for it, within the reference grace counted from when the step could start; the run stays Running
    with a Warning, the step is not charged an attempt. `None`: not a hold, the step fails."""
    submit = wp.submit
    if submit is None or not problems or not all(p.reason in MISSING_REFERENCE_REASONS for p in problems):
        return None
    status = run.get("status") or {}
    previous = [parse_time(s.get("finishedAt")) for s in wp.steps[: submit.index - 1]]
    since = max([t for t in previous if t is not None], default=None) or parse_time(status.get("startedAt"))
    since = since or snap.now
    deadline = since + timedelta(seconds=snap.timing.reference_grace_seconds)
    if snap.now >= deadline:
        return None
    reason, message = summarize(problems)
    old = {str(s.get("name")): s for s in (((status.get("workflow") or {}).get("steps")) or ())}
    steps = [
        dict(old.get(submit.name) or {"name": submit.name, "phase": "Pending", "attempt": submit.attempt - 1})
        if entry.get("name") == submit.name
        else entry
        for entry in wp.steps
    ]
    held = replace(wp, steps=steps, submit=None)
    warning = (reason, f"step {submit.name} cannot start: {message}; waiting until {format_time(deadline)}")
    details = RunDetails(
        "Running", f"step {submit.name} is waiting for a referenced object", accepted=True, warning=warning
    )
    fields = {"workflow": _workflow_status(run, held, snap.now)}
    left = (deadline - snap.now).total_seconds()
    # A Running run is not woken by its references changing (only runs not yet submitted are): look again.
    return RunPlan(
        status=_status(snap, Phase.RUNNING, details, fields, run=run), requeue_after=max(1.0, min(left, 10.0))
    )


def _workflow(snap: RunSnapshot, run: Mapping[str, Any]) -> RunPlan:
    """One pass over a Running workflow run (`run` is the snapshot's run, or the one being admitted)."""
    wp = plan_steps(run, snap.jobs, snap.pods, snap.now, snap.timing)
    fields: dict[str, Any] = {}
    create = None
    app_token = None
    details: RunDetails
    phase: str = wp.phase
    submit = wp.submit
    if submit is not None:
        prepared = _prepare(replace(snap, run=run), submit)
        held = _hold_step(snap, run, wp, prepared.problems) if not prepared.valid else None
        if held is not None:
            return held
        if not prepared.valid or prepared.context is None:
            reason, message = summarize(prepared.problems)
            step_name = submit.name
            steps = [dict(s) for s in wp.steps]
            for entry in steps:
                if entry.get("name") == step_name:
                    entry.update(phase="Failed", message=message, reason=reason)
                    entry["finishedAt"] = entry["lastTransitionTime"] = format_time(snap.now)
                    entry.pop("jobRef", None)
            wp = replace(wp, phase="Failed", steps=steps, submit=None, requeue_after=None)
            phase = Phase.FAILED
            details = RunDetails(reason, f"step {step_name} cannot start: {message}", invalid=True)
        else:
            job_plan = build_job_plan(prepared.context, snap.settings)
            create = job_plan
            app_token = prepared.vcs.app_token if prepared.vcs is not None else None
            if prepared.vcs is not None and prepared.vcs.status:
                fields["vcs"] = prepared.vcs.status
            job_meta = job_plan.job["metadata"]
            fields["jobRef"] = {"name": job_meta["name"], "namespace": job_meta["namespace"]}
            fields["runtimeRef"] = {
                "type": "workflow",
                "name": job_meta["name"],
                "namespace": job_meta["namespace"],
                "runName": snap.name,
                "stepName": submit.name,
            }
            details = RunDetails("Running", _step_message(wp), accepted=True)
    if phase == Phase.SUCCEEDED:
        details = RunDetails("Completed", f"all {len(wp.steps)} steps succeeded", accepted=True)
    elif phase == Phase.FAILED and wp.reason:
        details = RunDetails(wp.reason, wp.message, accepted=True)
    elif phase == Phase.RUNNING and create is None:
        warning = wp.warnings[0] if wp.warnings else None
        details = RunDetails("Running", _step_message(wp), accepted=True, warning=warning)
        fields.update(_observed_job_uid(run, wp))
    fields["workflow"] = _workflow_status(run, wp, snap.now)
    recorded = step_artifacts(snap, run, wp)  # issue 11: the steps' artifacts, like a single Job's
    if recorded is not None:
        fields["artifacts"] = recorded.entries
        if recorded.truncated is not None:
            details = replace(details, artifacts_truncated=recorded.truncated)
    update = _status(snap, phase, details, fields, run=run)
    plan = RunPlan(
        app_token=app_token,
        create=create,
        status=update,
        delete_jobs=tuple(wp.stop_jobs),
        requeue_after=wp.requeue_after,
        artifacts=tuple(recorded.objects) if recorded is not None else (),
        events=tuple(wp.events),
    )
    ttl = job_ttl_seconds(run, snap.settings)
    if ttl is not None:
        plan = replace(
            plan,
            job_ttls=tuple(
                (name, ttl)
                for name in sorted(set(wp.finished_jobs) - set(wp.stop_jobs))
                if name in snap.jobs
                and (snap.jobs[name].get("spec") or {}).get("ttlSecondsAfterFinished") != ttl
            ),
        )
    if is_terminal(phase):
        return _finished(snap, _with_status(run, update), replace(plan, requeue_after=None))
    return plan
