"""The AgentRun reconciler: validate, admit, run as a Job, report the outcome, clean up.

Level-triggered from the cache (reference §12.3): a request names a run, and each pass reads the newest
cached run, its Job and Pods, and decides from scratch:

1. gone → nothing (children go by ownerReference GC); being deleted → delete its Jobs, record, drop the
   finalizer `agents.proompteng.ai/runtime-cleanup`;
2. no finalizer → add it and *continue* in the same pass (the reference returned and waited);
3. finished → patch the Job TTL (idempotent) and requeue for the retention deadline, then delete the run;
4. the annotation `agents.proompteng.ai/cancel: "true"` → delete the Jobs, phase Cancelled;
5. `workflow` runtime → `jangar.controllers.workflow`;
6. no Job yet → validate (a missing reference holds the run Pending for a grace period, any other problem
   fails it with `finishedAt`), ask admission (Queued with the limit and position, or QueueLimitExceeded),
   then create the ConfigMaps and the Job (adopting what exists) and mark it Running;
7. a Job → classify it with its Pods; terminal → Succeeded/Failed with the reason, then the TTL patch; a
   Job that vanished → recreate it once if it was never observed, else fail with `JobLost`.

Every status write states the full condition set (`runconditions`), is skipped when nothing changed, and
is followed by an Event for phase transitions and a snapshot to the run recorder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.admission import Admit, Rejection, Waiting
from jangar.conditions import format_time, parse_time
from jangar.controllers.admission_gate import WAIT_REQUEUE_SECONDS, AdmissionGate
from jangar.controllers.events import EventRecorder
from jangar.controllers.jobs import (
    ForeignObject,
    controller_uid,
    create_plan,
    delete_jobs,
    patch_job_ttl,
    run_jobs,
)
from jangar.controllers.kinds import AGENTRUNS, ANNOTATION_CANCEL, FINALIZER, JOBS, PODS
from jangar.controllers.lookup import NamespaceLookup
from jangar.controllers.recording import RunRecorderProtocol, record_run
from jangar.controllers.runconditions import RunDetails, run_conditions
from jangar.controllers.status import compose_status, write_status
from jangar.controllers.vcs_wiring import VcsWiring
from jangar.runtime import CacheReader, Client, ConflictError, JsonObject, NotFoundError, Request, Result
from jangar.scheduler import (
    RunContext,
    build_job_plan,
    build_metadata,
    check_contract,
    classify_job,
    job_ttl_seconds,
    missing_job_action,
    retention_remaining,
    runtime_ref,
)
from jangar.scheduler.outcome import IMAGE_PULL_GRACE_SECONDS
from jangar.scheduler.runtimes import runtime_type
from jangar.settings import Settings
from jangar.validation import Problem, Resolution, resolve_run, summarize, validate_agent_run
from jangar.vcs import VcsResolution

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = ["REFERENCE_GRACE_SECONDS", "TERMINAL", "AgentRunReconciler", "WorkflowHandler"]

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
#: Problems a user fixes by creating another object; the run waits this long (from creation) for it.
MISSING_REFERENCE_REASONS = frozenset(
    {"MissingAgent", "MissingProvider", "MissingImplementation", "MissingMemory", "MissingVcsProvider"}
)
REFERENCE_GRACE_SECONDS = 300.0
FOREIGN_CHILD_REQUEUE_SECONDS = 5.0

WorkflowHandler = Callable[[JsonObject, Resolution | None, datetime], Any]


def _now() -> datetime:
    return datetime.now(UTC)


def _params(run: Mapping[str, Any]) -> dict[str, str]:
    raw = (run.get("spec") or {}).get("parameters") or {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, Mapping) else {}


class AgentRunReconciler:
    """One per manager. Safe with several workers: a run is never reconciled twice at once, and admission
    reserves capacity under a lock."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: Client,
        cache: CacheReader,
        gate: AdmissionGate,
        events: EventRecorder,
        recorder: RunRecorderProtocol | None,
        clock: Callable[[], datetime] = _now,
        reference_grace_seconds: float = REFERENCE_GRACE_SECONDS,
        image_pull_grace_seconds: float = IMAGE_PULL_GRACE_SECONDS,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.gate = gate
        self.events = events
        self.recorder = recorder
        self.clock = clock
        self.reference_grace_seconds = reference_grace_seconds
        self.image_pull_grace_seconds = image_pull_grace_seconds
        self.workflow: Any = None  # jangar.controllers.workflow.WorkflowRuntime, set by setup
        self.vcs: VcsWiring | None = None  # set by setup

    # -- entry ----------------------------------------------------------------------------------

    async def reconcile(self, req: Request) -> Result | None:
        try:
            return await self._reconcile(req)
        except ConflictError as exc:
            # The cache was behind our own last write: retry from fresh state, without a traceback.
            log.debug(
                "conflict, retrying", kind="AgentRun", namespace=req.namespace, name=req.name, error=str(exc)
            )
            return Result(requeue=True)
        except NotFoundError:
            return None  # deleted while we worked (e.g. the finalizer just released it)

    async def _reconcile(self, req: Request) -> Result | None:
        run = self.cache.get(AGENTRUNS, req.name, req.namespace)
        if run is None:
            return None
        now = self.clock()
        meta = run["metadata"]
        if meta.get("deletionTimestamp"):
            await self._finalize(run)
            return None
        if FINALIZER not in (meta.get("finalizers") or ()):
            run = await self._add_finalizer(run)
        status = run.get("status") or {}
        if status.get("phase") in TERMINAL:
            return await self._finished(run, now)
        if str((meta.get("annotations") or {}).get(ANNOTATION_CANCEL, "")).lower() == "true":
            return await self._cancel(run, now)
        if runtime_type(run) == "workflow" and self.workflow is not None and status.get("phase") == "Running":
            result: Result | None = await self.workflow.reconcile(self, run, now)
            return result
        if (status.get("jobRef") or {}).get("name"):
            return await self._observe(run, now)
        return await self._submit(run, now)

    # -- status ---------------------------------------------------------------------------------

    async def write(
        self,
        run: JsonObject,
        phase: str,
        details: RunDetails,
        now: datetime,
        fields: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Write the run's status for `phase`; emit an Event and a record on a phase change."""
        old_status = run.get("status") or {}
        old_phase = old_status.get("phase") or ""
        merged: dict[str, Any] = dict(fields or {})
        if phase in TERMINAL and not old_status.get("finishedAt") and "finishedAt" not in merged:
            merged["finishedAt"] = format_time(now)
        status = compose_status(
            old_status,
            phase=phase,
            conditions=run_conditions(phase, details),
            generation=run["metadata"].get("generation"),
            now=now,
            fields=merged,
            summary_reason=details.reason if phase in TERMINAL or details.invalid else None,
            summary_message=details.message,
        )
        updated = await write_status(self.client, AGENTRUNS, run, status, now=now)
        if updated is None:
            return run
        if old_phase != phase or details.invalid:
            self._event(updated, old_phase, phase, details)
            record_run(self.recorder, updated)
        return updated

    def _event(self, run: JsonObject, old: str, phase: str, d: RunDetails) -> None:
        meta = run["metadata"]
        log.info(
            "agentrun phase",
            kind="AgentRun",
            namespace=meta.get("namespace"),
            name=meta.get("name"),
            phase=phase,
            previous=old or None,
            reason=d.reason,
        )
        if old == phase:
            return
        warning = phase == "Failed" or (d.invalid and phase == "Pending")
        self.events.emit(
            run, "Warning" if warning else "Normal", d.reason if warning else phase, d.message or phase
        )

    # -- lifecycle steps ------------------------------------------------------------------------

    async def _add_finalizer(self, run: JsonObject) -> JsonObject:
        meta = run["metadata"]
        finalizers = [*(meta.get("finalizers") or ()), FINALIZER]
        updated: JsonObject = await self.client.patch(
            AGENTRUNS,
            meta["name"],
            {"metadata": {"finalizers": finalizers}},
            namespace=meta["namespace"],
            resource_version=meta.get("resourceVersion"),
        )
        return updated

    async def _finalize(self, run: JsonObject) -> None:
        meta = run["metadata"]
        finalizers = list(meta.get("finalizers") or ())
        ns, name = meta["namespace"], meta["name"]
        self.gate.release(ns, name)
        if FINALIZER not in finalizers:
            return
        deleted = await delete_jobs(self.client, self.cache, ns, str(meta.get("uid")))
        if deleted:
            log.info("deleted jobs of a deleted run", kind="AgentRun", namespace=ns, name=name, jobs=deleted)
        record_run(self.recorder, run)
        await self.client.patch(
            AGENTRUNS,
            name,
            {"metadata": {"finalizers": [f for f in finalizers if f != FINALIZER]}},
            namespace=ns,
            resource_version=meta.get("resourceVersion"),
        )

    async def _finished(self, run: JsonObject, now: datetime) -> Result | None:
        ns = run["metadata"]["namespace"]
        ttl = job_ttl_seconds(run, self.settings)
        for job in run_jobs(self.cache, ns, str(run["metadata"].get("uid"))):
            if _job_finished(job):
                await patch_job_ttl(self.client, job, ttl)
        remaining = retention_remaining(run, self.settings, now)
        if remaining is None:
            return None
        if remaining <= 0:
            log.info(
                "retention elapsed, deleting run", kind="AgentRun", namespace=ns, name=run["metadata"]["name"]
            )
            await self.client.delete(AGENTRUNS, run["metadata"]["name"], ns, ignore_not_found=True)
            return None
        return Result(requeue_after=remaining)

    async def _cancel(self, run: JsonObject, now: datetime) -> Result | None:
        meta = run["metadata"]
        await delete_jobs(self.client, self.cache, meta["namespace"], str(meta.get("uid")))
        self.gate.release(meta["namespace"], meta["name"])
        accepted = bool(((run.get("status") or {}).get("jobRef") or {}).get("name"))
        details = RunDetails(
            "Cancelled", f"cancelled through the {ANNOTATION_CANCEL} annotation", accepted=accepted
        )
        updated = await self.write(run, "Cancelled", details, now)
        return await self._finished(updated, now)

    # -- submission -----------------------------------------------------------------------------

    def resolve(self, run: JsonObject) -> Resolution:
        return resolve_run(run, NamespaceLookup(self.cache, run["metadata"]["namespace"]))

    def context(
        self, run: JsonObject, resolution: Resolution, vcs: VcsResolution | None = None
    ) -> RunContext:
        implementation = resolution.implementation or {}
        params = dict(vcs.parameters) if vcs is not None and vcs.parameters else _params(run)
        inline = isinstance(((run.get("spec") or {}).get("implementation") or {}).get("inline"), Mapping)
        return RunContext(
            run=run,
            agent=resolution.agent or {},
            provider=resolution.provider or {},
            implementation=implementation,
            parameters=params,
            metadata=build_metadata(params, implementation),
            implementation_name=None if inline else resolution.implementation_ref,
            memory=resolution.memory,
            vcs=vcs.runtime if vcs is not None and vcs.outcome == "ok" else None,
        )

    async def resolve_vcs(self, run: JsonObject, resolution: Resolution) -> VcsResolution | None:
        if self.vcs is None:
            return None
        params = _params(run)
        return await self.vcs.resolve(
            run, resolution, params, build_metadata(params, resolution.implementation or {})
        )

    async def invalid(
        self, run: JsonObject, problems: list[Problem], now: datetime, fields: Mapping[str, Any]
    ) -> Result | None:
        """Hold a run Pending while a referenced object may still appear; fail it for anything else."""
        reason, message = summarize(problems)
        created = parse_time(run["metadata"].get("creationTimestamp")) or now
        waited = (now - created).total_seconds()
        waiting_for_refs = all(p.reason in MISSING_REFERENCE_REASONS for p in problems)
        if waiting_for_refs and waited < self.reference_grace_seconds:
            left = self.reference_grace_seconds - waited
            details = RunDetails(
                reason, f"{message}; waiting up to {int(left)}s for it to be created", invalid=True
            )
            await self.write(run, "Pending", details, now, fields)
            return Result(requeue_after=max(1.0, left))
        await self.write(run, "Failed", RunDetails(reason, message, invalid=True), now, fields)
        return None

    async def _submit(self, run: JsonObject, now: datetime) -> Result | None:
        resolution = self.resolve(run)
        problems = validate_agent_run(run, resolution, self.settings)
        fields: dict[str, Any] = {}
        if resolution.implementation is not None and runtime_type(run) == "job":
            contract = check_contract(_params(run), resolution.implementation)
            if contract.required_keys:
                fields["contract"] = contract.status
        if problems:
            return await self.invalid(run, problems, now, fields)
        vcs = await self.resolve_vcs(run, resolution) if runtime_type(run) == "job" else None
        if vcs is not None and vcs.status:
            fields["vcs"] = vcs.status
        if vcs is not None and vcs.outcome == "fail":
            return await self.invalid(
                run, [Problem(vcs.reason or "VcsUnavailable", vcs.message)], now, fields
            )
        verdict = self.gate.admit(run)
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
            await self.write(run, "Queued", details, now, {**fields, "queue": queue})
            return Result(requeue_after=verdict.requeue_after or WAIT_REQUEUE_SECONDS)
        if isinstance(verdict, Rejection):
            await self.write(run, "Failed", RunDetails(verdict.reason, verdict.message), now, fields)
            return None
        if not isinstance(verdict, Admit):
            return None
        if runtime_type(run) == "workflow" and self.workflow is not None:
            queue = {k: v for k, v in queue.items() if k == "enqueuedAt"}
            queue["admittedAt"] = format_time(verdict.admitted_at)
            details = RunDetails("Admitted", "workflow admitted; starting its first step", accepted=False)
            started = await self.write(
                run, "Running", details, now, {**fields, "queue": queue, "startedAt": format_time(now)}
            )
            result: Result | None = await self.workflow.reconcile(self, started, now)
            return result
        return await self._start_job(run, resolution, verdict, queue, fields, now, vcs=vcs)

    async def _start_job(
        self,
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
            if vcs is not None and vcs.app_token is not None and self.vcs is not None:
                await self.vcs.ensure_app_token(run, vcs.app_token)
            plan = build_job_plan(self.context(run, resolution, vcs), self.settings)
            job = await create_plan(self.client, self.cache, plan, meta.get("uid"))
        except ForeignObject as exc:
            self.gate.release(meta["namespace"], meta["name"])
            log.warning(
                "child name taken",
                kind="AgentRun",
                namespace=meta["namespace"],
                name=meta["name"],
                error=str(exc),
            )
            return Result(requeue_after=FOREIGN_CHILD_REQUEUE_SECONDS)
        except Exception:
            self.gate.release(meta["namespace"], meta["name"])
            raise
        job_meta = job["metadata"]
        queue = {k: v for k, v in queue.items() if k in ("enqueuedAt", "admittedAt")}
        queue.setdefault("admittedAt", format_time(verdict.admitted_at))
        ref = runtime_ref(job, **({"recreated": True} if recreated else {}))
        fields = {
            **fields,
            "queue": queue,
            "jobRef": {k: job_meta.get(k) for k in ("name", "namespace", "uid") if job_meta.get(k)},
            "runtimeRef": ref,
            "startedAt": (run.get("status") or {}).get("startedAt") or format_time(now),
        }
        details = RunDetails(
            "Submitted", f"created Job {job_meta['name']}", accepted=True, **_vcs_details(vcs)
        )
        await self.write(run, "Running", details, now, fields)
        return None

    # -- observation ----------------------------------------------------------------------------

    async def _observe(self, run: JsonObject, now: datetime) -> Result | None:
        meta = run["metadata"]
        ns = meta["namespace"]
        status = run.get("status") or {}
        job_name = str(status["jobRef"]["name"])
        ref = dict(status.get("runtimeRef") or {})
        job = self.cache.get(JOBS, job_name, ns)
        if job is not None and meta.get("uid") and controller_uid(job) != meta.get("uid"):
            job = None  # a Job of a previous incarnation of this run name: not ours
        if job is not None and job["metadata"].get("deletionTimestamp") and not _job_finished(job):
            job = None  # being deleted before it finished: as good as gone
        if job is None:
            return await self._job_missing(run, job_name, ref, now)
        pods = self.cache.list(PODS, ns, labels={"job-name": job_name})
        outcome = classify_job(job, pods, now=now, image_pull_grace_seconds=self.image_pull_grace_seconds)
        ref.setdefault("jobObservedAt", format_time(now))
        ref.setdefault("uid", job["metadata"].get("uid"))
        fields: dict[str, Any] = {"runtimeRef": ref}
        if outcome.terminal:
            fields["finishedAt"] = format_time(outcome.finished_at or now)
            if outcome.started_at is not None:
                fields["startedAt"] = format_time(outcome.started_at)
            details = RunDetails(outcome.reason, outcome.message, accepted=True)
            updated = await self.write(run, outcome.phase, details, now, fields)
            if outcome.stop_job:
                await delete_jobs(self.client, self.cache, ns, str(meta.get("uid")))
            await patch_job_ttl(self.client, job, job_ttl_seconds(run, self.settings))
            return await self._finished(updated, now)
        warning = (outcome.reason, outcome.message) if outcome.reason else _kept_warning(run)
        state = "running" if outcome.phase == "Running" else "waiting to start"
        details = RunDetails("Running", f"Job {job_name} is {state}", accepted=True, warning=warning)
        await self.write(run, "Running", details, now, fields)
        return Result(requeue_after=outcome.requeue_after) if outcome.requeue_after else None

    async def _job_missing(
        self, run: JsonObject, job_name: str, ref: dict[str, Any], now: datetime
    ) -> Result | None:
        status = run.get("status") or {}
        action, wait = missing_job_action(ref, submitted_at=parse_time(status.get("startedAt")), now=now)
        if action == "wait":
            return Result(requeue_after=wait or 1.0)
        if action == "recreate" and not ref.get("recreated"):
            resolution = self.resolve(run)
            problems = validate_agent_run(run, resolution, self.settings)
            if not problems:
                log.warning(
                    "job never appeared, recreating it", kind="AgentRun", name=run["metadata"]["name"]
                )
                admitted = parse_time((status.get("queue") or {}).get("admittedAt")) or now
                return await self._start_job(
                    run, resolution, Admit(admitted), dict(status.get("queue") or {}), {}, now, recreated=True
                )
        observed = bool(ref.get("jobObservedAt"))
        message = (
            f"Job {job_name} was deleted while the run was in progress; the run cannot be resumed safely"
            if observed
            else f"Job {job_name} could not be created (it never appeared)"
        )
        updated = await self.write(run, "Failed", RunDetails("JobLost", message, accepted=True), now)
        return await self._finished(updated, now)


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


def _job_finished(job: Mapping[str, Any]) -> bool:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return True
    return False
