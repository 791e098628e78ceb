"""The `tools.proompteng.ai` group: Tool (a container command) and ToolRun (one execution, as a Job)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.agents.agentrun import ResourceRequirements
from jangar.api.common import EnvVar, JobRef, NameRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import FreeForm, Int32, Timestamp


class ToolSpec(KubeModel):
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    """Arguments; `{{parameters.x}}` placeholders are rendered from the ToolRun."""
    env: list[EnvVar] | None = None
    service_account: str | None = None
    working_dir: str | None = None
    timeout_seconds: Int32 | None = Field(default=None, ge=0)
    ttl_seconds_after_finished: Int32 | None = Field(default=None, ge=0)
    resources: ResourceRequirements | None = None
    """The tool container's requests and limits (what a Budget counts: requests x run time)."""


class ToolStatus(ResourceStatus):
    pass


class Tool(Resource[ToolSpec, ToolStatus]):
    """A container command that orchestrations can run as a ToolRun."""

    GROUP: ClassVar[str] = groups.TOOLS
    KIND: ClassVar[str] = "Tool"

    spec: ToolSpec = Field(default_factory=ToolSpec)
    status: ToolStatus | None = None


class ToolRunSpec(KubeModel):
    tool_ref: NameRef
    parameters: dict[str, str] | None = None
    delivery_id: str | None = None
    runtime: FreeForm | None = None
    budget_ref: NameRef | None = None
    """The Budget this run counts against; an exceeded Budget holds it Pending (`BudgetExceeded`)."""


class ToolRunStatus(ResourceStatus):
    run_id: str | None = None
    runtime_ref: FreeForm | None = None
    job_ref: JobRef | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    outputs: FreeForm | None = None
    """What the tool reported: the JSON object it wrote to its termination message (`/dev/termination-log`)."""


class ToolRun(Resource[ToolRunSpec, ToolRunStatus]):
    """One execution of a Tool, as a Kubernetes Job."""

    GROUP: ClassVar[str] = groups.TOOLS
    KIND: ClassVar[str] = "ToolRun"

    spec: ToolRunSpec
    status: ToolRunStatus | None = None
