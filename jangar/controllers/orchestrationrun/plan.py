"""What one OrchestrationRun pass does, as data: the output of `decide`, the input of `PlanApplier.apply`.

Applied in a fixed order: the children to create (deterministic names, adopted when they exist), the
cancel annotations on children, then one status write, then the Events (only when the status was written,
so a retried pass never repeats them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ChildCancel", "ChildCreate", "OrchestrationRunPlan", "PlannedEvent"]


@dataclass(frozen=True)
class ChildCreate:
    """A step child to create: `kind` is AgentRun, ToolRun or OrchestrationRun."""

    kind: str
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


@dataclass(frozen=True)
class ChildCancel:
    """A running child to cancel (the cancel annotation, honoured by every run kind)."""

    kind: str
    name: str


@dataclass(frozen=True)
class PlannedEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class OrchestrationRunPlan:
    """One pass. Every field defaults to "nothing to do"."""

    create: tuple[ChildCreate, ...] = ()
    cancel: tuple[ChildCancel, ...] = ()
    #: the run's whole new status (`write_status` skips the write when only timestamps moved)
    status: dict[str, Any] | None = None
    phase: str | None = None
    events: tuple[PlannedEvent, ...] = ()
    requeue_after: float | None = None
    notes: tuple[str, ...] = ()
