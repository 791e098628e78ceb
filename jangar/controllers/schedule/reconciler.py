"""The Schedule reconciler: read the cached Schedule and its snapshot, `decide`, apply. A stale cache shows
up as a 409 on a write, which the runtime retries from fresh state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from jangar.api.refs import SCHEDULES
from jangar.controllers.schedule.apply import ScheduleApplier
from jangar.controllers.schedule.decide import decide
from jangar.controllers.schedule.metrics import ScheduleMetrics, observe_fires
from jangar.controllers.schedule.snapshot import read_snapshot
from jangar.runtime import CacheReader, NotFoundError, Request, Result
from jangar.settings import Settings

__all__ = ["ScheduleReconciler"]


def _now() -> datetime:
    return datetime.now(UTC)


class ScheduleReconciler:
    def __init__(
        self,
        *,
        settings: Settings,
        cache: CacheReader,
        applier: ScheduleApplier,
        clock: Callable[[], datetime] = _now,
        metrics: ScheduleMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.applier = applier
        self.clock = clock
        self.metrics = metrics

    async def reconcile(self, req: Request) -> Result | None:
        schedule = self.cache.get(SCHEDULES, req.name, req.namespace)
        if schedule is None:
            if self.metrics is not None:
                self.metrics.forget(req.namespace or "", req.name)
            return None
        now = self.clock()
        snap = read_snapshot(self.cache, schedule, self.settings, now)
        try:
            plan = decide(snap)
            result = await self.applier.apply(schedule, plan, now)
            if self.metrics is not None:  # only once the pass (and its status write) succeeded
                self.metrics.record(snap.namespace, snap.name, observe_fires(snap, plan.phase))
            return result
        except NotFoundError:
            if self.cache.get(SCHEDULES, req.name, req.namespace, copy=False) is None:
                return None  # deleted while we worked
            raise
