"""The `schedules.proompteng.ai` group: Schedule, a cron that creates copies of a template run."""

from __future__ import annotations

from typing import ClassVar, Literal

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
    suspend: bool | None = None
    """True: the CronJob is suspended and nothing fires (phase Suspended); `agentctl schedule fire --now`
    still creates a run on demand."""
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] | None = None
    """The CronJob's concurrencyPolicy (default Forbid, the reference's): what to do with a tick while the
    previous tick's fire Job is still running. It governs the short fire Job, not the run it creates."""
    starting_deadline_seconds: int | None = Field(default=None, ge=0)
    """The CronJob's startingDeadlineSeconds: a tick missed by more than this is skipped."""
    successful_jobs_history_limit: int | None = Field(default=None, ge=0)
    """Finished fire Jobs the CronJob keeps (default 3)."""
    failed_jobs_history_limit: int | None = Field(default=None, ge=0)
    """Failed fire Jobs the CronJob keeps (default 1)."""


class ScheduleRunRef(KubeModel):
    kind: str
    name: str
    namespace: str | None = None
    scheduled_time: Timestamp | None = None
    """The tick the run was created for."""


class ScheduleStatus(ResourceStatus):
    last_run_time: Timestamp | None = None
    """The tick of the newest run this Schedule created (else the CronJob's lastScheduleTime)."""
    last_run: ScheduleRunRef | None = None
    """The newest run this Schedule created."""
    next_run_time: Timestamp | None = None
    """The next tick (absent while suspended or invalid)."""
    last_schedule_time: Timestamp | None = None
    """The CronJob's status.lastScheduleTime: when it last started a fire Job."""
    last_successful_time: Timestamp | None = None
    """The CronJob's status.lastSuccessfulTime: when a fire Job last completed."""
    cron_job_name: str | None = None
    """The CronJob `<schedule>-cron` (absent when there is none)."""
    template_name: str | None = None
    """The template ConfigMap `<schedule>-template`."""


class Schedule(Resource[ScheduleSpec, ScheduleStatus]):
    """A cron schedule that creates copies of an existing AgentRun or OrchestrationRun."""

    GROUP: ClassVar[str] = groups.SCHEDULES
    KIND: ClassVar[str] = "Schedule"

    spec: ScheduleSpec
    status: ScheduleStatus | None = None
