"""The OrchestrationRun reconciler: a thin shell of read → decide → apply.

Each request reads the newest cached run and its snapshot, calls the pure `decide`, and hands the plan to
`PlanApplier`. A child name held by another object turns into a second decision that knows the name is
taken (`Warning=True/ChildNameTaken`, retried in 5 s). A pass that reads a version our own status write
replaced (a step child's event arrived before the informer delivered the write) is deferred for a moment
(`OwnWrites`) instead of writing again from it; any other stale cache shows up as a 409 on the status
write, which the runtime retries from fresh state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from jangar.api.refs import ORCHESTRATIONRUNS
from jangar.controllers.orchestrationrun.apply import ForeignChild, PlanApplier
from jangar.controllers.orchestrationrun.decide import decide
from jangar.controllers.orchestrationrun.snapshot import read_snapshot
from jangar.controllers.own_writes import STALE_RETRY_SECONDS
from jangar.runtime import CacheReader, Request, Result
from jangar.settings import ControllerTuning

log = structlog.get_logger("jangar.controllers.orchestrationrun")

__all__ = ["OrchestrationRunReconciler"]


def _now() -> datetime:
    return datetime.now(UTC)


class OrchestrationRunReconciler:
    """One per manager. Safe with several workers: a run is never reconciled twice at once."""

    def __init__(
        self,
        *,
        cache: CacheReader,
        applier: PlanApplier,
        tuning: ControllerTuning,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.cache = cache
        self.applier = applier
        self.tuning = tuning
        self.clock = clock

    async def reconcile(self, req: Request) -> Result | None:
        run = self.cache.get(ORCHESTRATIONRUNS, req.name, req.namespace)
        if run is None:
            self.applier.own_writes.forget(ORCHESTRATIONRUNS.kind, req.namespace, req.name)
            return None
        if self.applier.own_writes.is_stale(ORCHESTRATIONRUNS.kind, run):
            return Result(requeue_after=STALE_RETRY_SECONDS)  # the cache has not seen our last write yet
        now = self.clock()
        snap = read_snapshot(self.cache, run, now, self.tuning)
        taken: set[tuple[str, str]] = set()
        while True:
            try:
                return await self.applier.apply(run, decide(snap), now)
            except ForeignChild as exc:
                if (exc.kind, exc.name) in taken:
                    raise
                log.warning(
                    "child name taken",
                    kind="OrchestrationRun",
                    namespace=req.namespace,
                    name=req.name,
                    error=str(exc),
                )
                taken.add((exc.kind, exc.name))
                snap = dataclasses.replace(snap, taken=frozenset(taken))
