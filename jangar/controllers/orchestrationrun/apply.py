"""Carry out an `OrchestrationRunPlan` in the one order that is safe after a crash at any point.

1. children: created with their deterministic names, or adopted when the name exists and this run (uid)
   controls the object; a name held by another object is left alone (`ForeignChild`: the pass reports
   `Warning=True/ChildNameTaken` and retries later, never a second child);
2. cancel annotations on running children (a merge patch; a child already gone is fine);
3. one status write (skipped when nothing but timestamps changed);
4. the Events, only when the status was written (a retried pass never repeats them).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.refs import AGENTRUNS, ORCHESTRATIONRUNS, TOOLRUNS
from jangar.audit import AuditSink
from jangar.controllers.audit import approval_event, emit, step_event
from jangar.controllers.orchestrationrun.plan import ChildCreate, OrchestrationRunPlan
from jangar.controllers.own_writes import OwnWrites, RecentCreates
from jangar.controllers.recording import RunRecorderProtocol, record_tracked_run, retry_refused
from jangar.controllers.status import write_status
from jangar.runtime import (
    AlreadyExistsError,
    CacheReader,
    Client,
    JsonObject,
    NotFoundError,
    Recorder,
    ResourceRef,
    Result,
    controller_uid,
)

log = structlog.get_logger("jangar.controllers.orchestrationrun")

__all__ = ["ForeignChild", "PlanApplier"]

_REFS: dict[str, ResourceRef] = {
    "AgentRun": AGENTRUNS,
    "ToolRun": TOOLRUNS,
    "OrchestrationRun": ORCHESTRATIONRUNS,
}


class ForeignChild(Exception):
    """A child's deterministic name is taken by an object this run does not control."""

    def __init__(self, message: str, kind: str, name: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


@dataclass
class PlanApplier:
    client: Client
    cache: CacheReader
    events: Recorder
    recorder: RunRecorderProtocol | None = None
    """Postgres run records (the recorder skips a snapshot equal to the last one)."""
    audit: AuditSink | None = None
    """issue 13: step submissions and approval decisions are audited."""
    recent_creates: RecentCreates = field(default_factory=RecentCreates)
    """Step children created moments ago that the cache may not show yet: not POSTed again."""
    own_writes: OwnWrites = field(default_factory=OwnWrites)
    """Versions our status writes replaced: the reconciler defers a pass that reads one (issue 14 §2: a
    5-step DAG burst made 7 conflicting status PUTs per run without it)."""

    async def apply(self, run: JsonObject, plan: OrchestrationRunPlan, now: datetime) -> Result | None:
        meta = run["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        for note in plan.notes:
            log.info(note, kind="OrchestrationRun", namespace=ns, name=name)
        for child in plan.create:
            created = await self._create_or_adopt(child, str(meta.get("uid") or ""))
            if created is not None:
                emit(self.audit, step_event(run, created))
        for cancel in plan.cancel:
            with contextlib.suppress(NotFoundError):
                await self.client.patch(
                    _REFS[cancel.kind],
                    cancel.name,
                    {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}},
                    namespace=ns,
                )
        updated = run
        if plan.status is not None:
            written = await write_status(self.client, ORCHESTRATIONRUNS, run, plan.status, now=now)
            if written is not None:
                self.own_writes.wrote(ORCHESTRATIONRUNS.kind, run, written)
                updated = written
                old_phase = (run.get("status") or {}).get("phase")
                if old_phase != plan.phase:
                    log.info(
                        "orchestrationrun phase",
                        kind="OrchestrationRun",
                        namespace=ns,
                        name=name,
                        phase=plan.phase,
                        previous=old_phase,
                    )
                for event in plan.events:
                    self.events.event(written, event.type, event.reason, event.message)
                    emit(self.audit, approval_event(written, event.reason))
        offer = record_tracked_run(self.recorder, "OrchestrationRun", updated)
        requeue_after = retry_refused(offer, plan.requeue_after)  # a refused record is offered again
        return Result(requeue_after=requeue_after) if requeue_after is not None else None

    async def _create_or_adopt(self, child: ChildCreate, owner_uid: str) -> JsonObject | None:
        """Create the child, or adopt it when it is this run's already; the child when it was created now."""
        ref = _REFS[child.kind]
        ns = str(child.manifest["metadata"]["namespace"])
        existing = self.cache.get(ref, child.name, ns, copy=False)
        if existing is None:
            if self.recent_creates.pending(child.kind, ns, child.name):
                return None  # ours, created moments ago; the informer has not delivered it yet
            try:
                created = await self.client.create(ref, child.manifest)
                self.recent_creates.created(child.kind, ns, child.name)
                log.info("created step child", kind=child.kind, namespace=ns, name=child.name)
                return created
            except AlreadyExistsError:
                existing = await self.client.get(ref, child.name, ns)
        else:
            self.recent_creates.seen(child.kind, ns, child.name)
        if controller_uid(existing) != owner_uid:
            raise ForeignChild(
                f"{child.kind} {ns}/{child.name} exists but is controlled by another object "
                f"(uid {controller_uid(existing)}); waiting for it to go",
                child.kind,
                child.name,
            )
        return None
