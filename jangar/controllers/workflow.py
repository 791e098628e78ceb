"""The native `workflow` runtime: sequential steps, each attempt its own Job, retries with backoff.

Reference §3.7, with its weak points fixed:

* a Retrying step wakes up at `nextRetryAt` through `requeue_after`, not on an unrelated event (§12.6);
* `jobObservedAt` is in the CRD schema, so a step Job deleted after it was seen is detected: the step is
  retried if attempts remain, else the workflow fails with `WorkflowJobMissing` (§12.11);
* a step Job that never appeared is recreated (same deterministic name) after a grace period;
* references are resolved once per pass only to build the next step's Job; a running step is not failed
  because an Agent was edited (§12.18).

The per-step state lives in `status.workflow.steps[]`; the step being run is also `status.jobRef`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from jangar.conditions import format_time, parse_time
from jangar.controllers.jobs import ForeignObject, controller_uid, create_plan, patch_job_ttl
from jangar.controllers.kinds import JOBS, PODS
from jangar.controllers.runconditions import RunDetails
from jangar.runtime import JsonObject, PropagationPolicy, Result
from jangar.scheduler import StepRef, build_job_plan, build_metadata, classify_job, job_ttl_seconds
from jangar.scheduler.outcome import MISSING_JOB_GRACE_SECONDS

if TYPE_CHECKING:
    from jangar.controllers.agentrun import AgentRunReconciler

log = structlog.get_logger("jangar.controllers.workflow")

__all__ = ["WorkflowRuntime"]


def _steps(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    steps = (((run.get("spec") or {}).get("workflow")) or {}).get("steps") or []
    return [s for s in steps if isinstance(s, Mapping) and isinstance(s.get("name"), str) and s["name"]]


def _int(value: Any, default: int = 0) -> int:
    return max(0, int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else default


class _Pass:
    """One reconcile of one workflow run: mutable step state, written once at the end."""

    def __init__(self, rec: AgentRunReconciler, run: JsonObject, now: datetime) -> None:
        self.rec = rec
        self.run = run
        self.now = now
        self.ns = str(run["metadata"]["namespace"])
        status = run.get("status") or {}
        old = {s.get("name"): dict(s) for s in ((status.get("workflow") or {}).get("steps") or [])}
        self.steps = [
            old.get(s["name"]) or {"name": s["name"], "phase": "Pending", "attempt": 0} for s in _steps(run)
        ]
        self.fields: dict[str, Any] = {}
        self.finished_jobs: list[JsonObject] = []

    def step_phase(self, st: dict[str, Any], phase: str, message: str = "") -> None:
        if st.get("phase") != phase:
            st["lastTransitionTime"] = format_time(self.now)
        st["phase"] = phase
        st["message"] = message

    def workflow_status(self, phase: str) -> dict[str, Any]:
        old = ((self.run.get("status") or {}).get("workflow")) or {}
        ltt = old.get("lastTransitionTime") if old.get("phase") == phase else format_time(self.now)
        return {"phase": phase, "lastTransitionTime": ltt or format_time(self.now), "steps": self.steps}

    async def finish(self, phase: str, details: RunDetails) -> Result | None:
        fields = {**self.fields, "workflow": self.workflow_status(phase)}
        updated = await self.rec.write(self.run, phase, details, self.now, fields)
        ttl = job_ttl_seconds(self.run, self.rec.settings)
        for job in self.finished_jobs:
            await patch_job_ttl(self.rec.client, job, ttl)
        if phase in ("Succeeded", "Failed"):
            return await self.rec.finished(updated, self.now)
        return None

    async def running(self, message: str, warning: tuple[str, str] | None = None) -> None:
        details = RunDetails("Running", message, accepted=True, warning=warning)
        await self.finish("Running", details)


class WorkflowRuntime:
    """Stateless: everything it needs is in the run's status and the cache."""

    async def reconcile(self, rec: AgentRunReconciler, run: JsonObject, now: datetime) -> Result | None:
        p = _Pass(rec, run, now)
        specs = _steps(run)
        for index, (spec, st) in enumerate(zip(specs, p.steps, strict=True), start=1):
            phase = st.get("phase") or "Pending"
            if phase == "Succeeded":
                continue
            if phase == "Failed":
                return await p.finish(
                    "Failed",
                    RunDetails(
                        "WorkflowStepFailed", f"step {st['name']} failed: {st.get('message')}", accepted=True
                    ),
                )
            if phase == "Retrying":
                due = parse_time(st.get("nextRetryAt")) or now
                if due > now:
                    await p.running(f"step {st['name']} retries at {format_time(due)}")
                    return Result(requeue_after=max(0.5, (due - now).total_seconds()))
            if phase in ("Pending", "Retrying"):
                return await self._start_step(p, index, spec, st)
            return await self._watch_step(p, index, spec, st)
        return await p.finish(
            "Succeeded", RunDetails("Completed", f"all {len(specs)} steps succeeded", accepted=True)
        )

    async def _start_step(
        self, p: _Pass, index: int, spec: Mapping[str, Any], st: dict[str, Any]
    ) -> Result | None:
        rec = p.rec
        attempt = _int(st.get("attempt")) + 1
        retries = _int(spec.get("retries"))
        if attempt > retries + 1:
            p.step_phase(st, "Failed", "Retry limit exceeded")
            return await p.finish(
                "Failed",
                RunDetails(
                    "WorkflowStepRetriesExhausted",
                    f"step {st['name']} failed {retries + 1} time(s)",
                    accepted=True,
                ),
            )
        resolution = rec.resolve(p.run)
        implementation = resolution.step_implementations.get(str(st["name"]))
        if implementation is None:
            p.step_phase(st, "Failed", "implementation not found")
            return await p.finish(
                "Failed",
                RunDetails(
                    "MissingImplementation", f"step {st['name']} has no implementation", accepted=True
                ),
            )
        vcs = await rec.resolve_vcs(p.run, resolution)
        if vcs is not None and vcs.outcome == "fail":
            p.step_phase(st, "Failed", vcs.message)
            return await p.finish(
                "Failed", RunDetails(vcs.reason or "VcsUnavailable", vcs.message, invalid=True)
            )
        if vcs is not None and vcs.status:
            p.fields["vcs"] = vcs.status
        if vcs is not None and vcs.app_token is not None and rec.vcs is not None:
            await rec.vcs.ensure_app_token(p.run, vcs.app_token)
        base = rec.context(p.run, resolution, vcs)
        params = {
            **base.parameters,
            **{k: v for k, v in (spec.get("parameters") or {}).items() if isinstance(v, str)},
        }
        ctx = replace(
            base,
            implementation=implementation,
            parameters=params,
            metadata=build_metadata(params, implementation),
            step=StepRef(str(st["name"]), index, attempt, spec),
        )
        try:
            job = await create_plan(
                rec.client, rec.cache, build_job_plan(ctx, rec.settings), p.run["metadata"].get("uid")
            )
        except ForeignObject:
            return Result(requeue_after=5.0)
        meta = job["metadata"]
        job_ref = {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")}
        st.update(attempt=attempt, startedAt=format_time(p.now), jobRef=job_ref)
        st.pop("nextRetryAt", None)
        st.pop("finishedAt", None)
        st.pop("jobObservedAt", None)
        p.step_phase(st, "Running", f"attempt {attempt}")
        p.fields.update(
            jobRef=job_ref,
            runtimeRef={
                "type": "workflow",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "runName": p.run["metadata"]["name"],
                "stepName": st["name"],
            },
        )
        await p.running(f"step {st['name']} attempt {attempt} started (Job {meta['name']})")
        return None

    async def _watch_step(
        self, p: _Pass, index: int, spec: Mapping[str, Any], st: dict[str, Any]
    ) -> Result | None:
        rec = p.rec
        job_ref = st.get("jobRef") or {}
        name = str(job_ref.get("name") or "")
        job = rec.cache.get(JOBS, name, p.ns) if name else None
        if job is not None and controller_uid(job) != p.run["metadata"].get("uid"):
            job = None
        if job is None:
            return await self._step_job_missing(p, index, spec, st)
        st.setdefault("jobObservedAt", format_time(p.now))
        pods = rec.cache.list(PODS, p.ns, labels={"job-name": name})
        outcome = classify_job(job, pods, now=p.now, image_pull_grace_seconds=rec.image_pull_grace_seconds)
        if outcome.phase == "Succeeded":
            st["finishedAt"] = format_time(outcome.finished_at or p.now)
            p.step_phase(st, "Succeeded", outcome.message)
            p.finished_jobs.append(job)
            return await self.reconcile_after_step(p)
        if outcome.phase == "Failed":
            p.finished_jobs.append(job)
            if outcome.stop_job:
                await rec.client.delete(
                    JOBS, name, p.ns, propagation_policy=PropagationPolicy.BACKGROUND, ignore_not_found=True
                )
            st["finishedAt"] = format_time(outcome.finished_at or p.now)
            return await self._step_failed(p, spec, st, f"{outcome.reason}: {outcome.message}")
        warning = (outcome.reason, outcome.message) if outcome.reason else None
        await p.running(f"step {st['name']} attempt {st.get('attempt')} is running", warning)
        return Result(requeue_after=outcome.requeue_after) if outcome.requeue_after else None

    async def reconcile_after_step(self, p: _Pass) -> Result | None:
        """Continue the walk in the same pass: the next step starts without waiting for an event."""
        specs = _steps(p.run)
        for index, (spec, st) in enumerate(zip(specs, p.steps, strict=True), start=1):
            if st.get("phase") != "Succeeded":
                return await self._start_step(p, index, spec, st)
        return await p.finish(
            "Succeeded", RunDetails("Completed", f"all {len(specs)} steps succeeded", accepted=True)
        )

    async def _step_failed(
        self,
        p: _Pass,
        spec: Mapping[str, Any],
        st: dict[str, Any],
        message: str,
        *,
        reason: str = "WorkflowStepFailed",
        warning: tuple[str, str] | None = None,
    ) -> Result | None:
        retries = _int(spec.get("retries"))
        if _int(st.get("attempt")) < retries + 1:
            backoff = _int(spec.get("retryBackoffSeconds"))
            due = p.now + timedelta(seconds=backoff)
            st["nextRetryAt"] = format_time(due)
            p.step_phase(st, "Retrying", message)
            await p.running(f"step {st['name']} failed ({message}); retrying at {format_time(due)}", warning)
            return Result(requeue_after=max(0.5, float(backoff)))
        p.step_phase(st, "Failed", message)
        return await p.finish(
            "Failed", RunDetails(reason, f"step {st['name']} failed: {message}", accepted=True)
        )

    async def _step_job_missing(
        self, p: _Pass, index: int, spec: Mapping[str, Any], st: dict[str, Any]
    ) -> Result | None:
        if st.get("jobObservedAt"):
            warning = (
                "WorkflowJobMissing",
                f"Job {(st.get('jobRef') or {}).get('name')} of step {st['name']} disappeared",
            )
            return await self._step_failed(
                p, spec, st, warning[1], reason="WorkflowJobMissing", warning=warning
            )
        started = parse_time(st.get("startedAt")) or p.now
        waited = (p.now - started).total_seconds()
        if waited < MISSING_JOB_GRACE_SECONDS:
            return Result(requeue_after=MISSING_JOB_GRACE_SECONDS - waited)
        log.warning(
            "step job never appeared, recreating",
            namespace=p.ns,
            name=p.run["metadata"]["name"],
            step=st["name"],
        )
        st["attempt"] = max(0, _int(st.get("attempt")) - 1)
        return await self._start_step(p, index, spec, st)
