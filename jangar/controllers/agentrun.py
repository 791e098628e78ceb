"""The AgentRun reconciler: validate, admit, run as a Job, report the outcome, clean up.

Level-triggered from the cache (reference §12.3): a request names a run, and each pass reads the newest
cached run, its Job and Pods, and decides from scratch:

1. gone → nothing (children go by ownerReference GC); being deleted → delete its Jobs, record, drop the
   finalizer `agents.proompteng.ai/runtime-cleanup`;
2. no finalizer → add it and *continue* in the same pass (the reference returned and waited);
3. finished → patch the Job TTL (idempotent) and requeue for the retention deadline, then delete the run;
4. the annotation `agents.proompteng.ai/cancel: "true"` → delete the Jobs, phase Cancelled;
5. `workflow` runtime → `jangar.controllers.workflow`;
6. no Job yet → `jangar.controllers.submit`: validate (a missing reference holds the run Pending for a grace
   period, any other problem fails it with `finishedAt`), ask admission (Queued with the limit and
   position, or QueueLimitExceeded), then create the ConfigMaps and the Job and mark it Running;
7. a Job → `jangar.controllers.observe`: terminal → Succeeded/Failed with the reason, then the TTL patch;
   a Job that vanished → recreate it once if it was never observed, else fail with `JobLost`.

Every status write states the full condition set (`runconditions`), is skipped when nothing changed, and
is followed by an Event for phase transitions and a snapshot to the run recorder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP as FINALIZER
from jangar.conditions import format_time
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.events import EventRecorder
from jangar.controllers.jobs import delete_jobs, job_finished, patch_job_ttl, run_jobs
from jangar.controllers.kinds import AGENTRUNS
from jangar.controllers.lookup import NamespaceLookup
from jangar.controllers.metrics import RunMetrics
from jangar.controllers.observe import observe
from jangar.controllers.recording import RunRecorderProtocol, record_run
from jangar.controllers.runconditions import RunDetails, run_conditions
from jangar.controllers.status import compose_status, write_status
from jangar.controllers.submit import params_of, submit
from jangar.controllers.vcs_wiring import VcsWiring
from jangar.runtime import CacheReader, Client, ConflictError, JsonObject, NotFoundError, Request, Result
from jangar.scheduler import (
    RunContext,
    build_metadata,
    job_ttl_seconds,
    retention_remaining,
)
from jangar.scheduler.outcome import IMAGE_PULL_GRACE_SECONDS
from jangar.scheduler.runtimes import runtime_type
from jangar.settings import Settings
from jangar.validation import Resolution, resolve_run
from jangar.vcs import VcsResolution

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = ["REFERENCE_GRACE_SECONDS", "TERMINAL", "AgentRunReconciler"]

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
#: How long (from creation) a run waits for a referenced object that does not exist yet.
REFERENCE_GRACE_SECONDS = 300.0


def _now() -> datetime:
    return datetime.now(UTC)


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
        metrics: RunMetrics | None = None,
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
        self.metrics = metrics or RunMetrics(None)

    # -- entry ----------------------------------------------------------------------------------

    async def reconcile(self, req: Request) -> Result | None:
        started = time.monotonic()
        try:
            return await self._reconcile(req)
        except ConflictError as exc:
            # The cache was behind our own last write: retry from fresh state, without a traceback.
            log.debug(
                "conflict, retrying", kind="AgentRun", namespace=req.namespace, name=req.name, error=str(exc)
            )
            return Result(requeue=True)
        except NotFoundError:
            if self.cache.get(AGENTRUNS, req.name, req.namespace, copy=False) is None:
                return None  # deleted while we worked (e.g. the finalizer just released it)
            raise  # something the run needs is missing (a Secret is not watched): retry with backoff
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            self.metrics.reconcile_ms.labels("agentrun", req.namespace or "").observe(elapsed_ms)

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
            return await self.finished(run, now)
        if str((meta.get("annotations") or {}).get(ANNOTATION_CANCEL, "")).lower() == "true":
            return await self._cancel(run, now)
        if runtime_type(run) == "workflow" and self.workflow is not None and status.get("phase") == "Running":
            result: Result | None = await self.workflow.reconcile(self, run, now)
            return result
        if (status.get("jobRef") or {}).get("name"):
            return await observe(self, run, now)
        return await submit(self, run, now)

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
            # Nothing changed, but a record may have been lost with the last process's memory: the recorder
            # skips a snapshot identical to the one it already holds, so this costs nothing otherwise.
            record_run(self.recorder, run)
            return run
        if old_phase != phase and phase in TERMINAL:
            runtime = (updated.get("status") or {}).get("runtimeRef", {}).get("type") or runtime_type(run)
            self.metrics.outcomes.labels(phase, runtime or "unknown").inc()
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

    async def finished(self, run: JsonObject, now: datetime) -> Result | None:
        ns = run["metadata"]["namespace"]
        ttl = job_ttl_seconds(run, self.settings)
        for job in run_jobs(self.cache, ns, str(run["metadata"].get("uid"))):
            if job_finished(job):
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
        return await self.finished(updated, now)

    # -- resolution (used by submission, observation and the workflow runtime) ------------------

    def resolve(self, run: JsonObject) -> Resolution:
        return resolve_run(run, NamespaceLookup(self.cache, run["metadata"]["namespace"]))

    def context(
        self, run: JsonObject, resolution: Resolution, vcs: VcsResolution | None = None
    ) -> RunContext:
        implementation = resolution.implementation or {}
        params = dict(vcs.parameters) if vcs is not None and vcs.parameters else params_of(run)
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
        params = params_of(run)
        return await self.vcs.resolve(
            run, resolution, params, build_metadata(params, resolution.implementation or {})
        )
