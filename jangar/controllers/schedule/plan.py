"""What one Schedule reconcile pass does, as data: the output of `decide`, the input of `ScheduleApplier`.

Applied in this order: child writes (the template ConfigMap, then the CronJob: created when absent,
replaced when they differ from what the Schedule wants), child deletions (the CronJob first, so nothing fires
from a template about to go), the one status write, then the Events (only if the status was written)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jangar.runtime import ResourceRef

__all__ = ["ChildWrite", "EventSpec", "SchedulePlan"]


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ChildWrite:
    ref: ResourceRef
    desired: dict[str, Any]
    #: the cached object to replace (None: create)
    existing: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SchedulePlan:
    writes: tuple[ChildWrite, ...] = ()
    deletes: tuple[tuple[ResourceRef, str], ...] = ()
    #: the whole new status (`write_status` skips the write when only timestamps moved)
    status: dict[str, Any] | None = None
    phase: str | None = None
    events: tuple[EventSpec, ...] = ()
    requeue_after: float | None = None
