"""The `schedules.proompteng.ai` group: Schedule, a cron that creates copies of a template run."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Rule, Timestamp


class ScheduleTarget(KubeModel):
    """An existing AgentRun or OrchestrationRun whose spec is copied on every tick."""

    cel_rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            rule="self.kind in ['AgentRun', 'OrchestrationRun']",
            message="spec.targetRef.kind must be AgentRun or OrchestrationRun",
        ),
    )

    api_version: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class ScheduleSpec(KubeModel):
    cron: str = Field(min_length=1)
    """A five-field cron expression."""
    timezone: str | None = None
    """An IANA time zone such as UTC or Europe/Berlin."""
    target_ref: ScheduleTarget


class ScheduleStatus(ResourceStatus):
    last_run_time: Timestamp | None = None


class Schedule(Resource[ScheduleSpec, ScheduleStatus]):
    """A cron schedule that creates copies of an existing AgentRun or OrchestrationRun."""

    GROUP: ClassVar[str] = groups.SCHEDULES
    KIND: ClassVar[str] = "Schedule"

    spec: ScheduleSpec
    status: ScheduleStatus | None = None
