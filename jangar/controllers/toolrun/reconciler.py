"""The ToolRun reconciler: read the cached ToolRun and its snapshot, `decide`, apply. A child name held by
another object turns into `on_foreign_child`'s plan; a stale cache shows up as a 409 on a write, which the
runtime retries from fresh state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from jangar.api.refs import TOOLRUNS
from jangar.controllers.jobs import ForeignObject
from jangar.controllers.toolrun.apply import ToolRunApplier
from jangar.controllers.toolrun.decide import decide, on_foreign_child
from jangar.controllers.toolrun.snapshot import read_snapshot
from jangar.runtime import CacheReader, NotFoundError, Request, Result
from jangar.settings import Settings

log = structlog.get_logger("jangar.controllers.toolrun")

__all__ = ["ToolRunReconciler"]


def _now() -> datetime:
    return datetime.now(UTC)


class ToolRunReconciler:
    def __init__(
        self,
        *,
        settings: Settings,
        cache: CacheReader,
        applier: ToolRunApplier,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.applier = applier
        self.clock = clock

    async def reconcile(self, req: Request) -> Result | None:
        toolrun = self.cache.get(TOOLRUNS, req.name, req.namespace)
        if toolrun is None:
            return None
        now = self.clock()
        snap = read_snapshot(self.cache, toolrun, self.settings, now)
        try:
            return await self.applier.apply(toolrun, decide(snap), now)
        except ForeignObject as exc:
            log.warning(
                "child name taken", kind="ToolRun", namespace=req.namespace, name=req.name, error=str(exc)
            )
            return await self.applier.apply(toolrun, on_foreign_child(snap, str(exc)), now)
        except NotFoundError:
            if self.cache.get(TOOLRUNS, req.name, req.namespace, copy=False) is None:
                return None  # deleted while we worked
            raise
