"""What one ToolRun reconcile pass does, as data: the output of `decide`, the input of `ToolRunApplier`.

Applied in this order: the children to create (spec ConfigMap, then Job; adopted when they already exist),
the one status write, and then what must come after the outcome is recorded: the Event of the transition
(only if the status was written), Job deletions (cancel, a stuck image pull) and Job TTL patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jangar.scheduler import JobPlan

__all__ = ["EventSpec", "ToolRunPlan"]


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ToolRunPlan:
    create: JobPlan | None = None
    #: the whole new status (`write_status` skips the write when only timestamps moved)
    status: dict[str, Any] | None = None
    phase: str | None = None
    event: EventSpec | None = None
    delete_jobs: tuple[str, ...] = ()
    job_ttls: tuple[tuple[str, int], ...] = ()
    requeue_after: float | None = None
    notes: tuple[str, ...] = ()
