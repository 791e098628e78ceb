"""The `orchestration.proompteng.ai` group: Orchestration (a DAG of steps) and OrchestrationRun (one
execution of it). Steps and step statuses keep unknown keys, because step kinds read extra inputs
(for example `implementationSpecRef` on an AgentRun step)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from jangar.api import groups
from jangar.api.agents.agentrun import Goal
from jangar.api.common import NameRef, OptionalNameRef, ResourceRef
from jangar.api.meta import KubeModel, OpenModel, Resource, ResourceStatus
from jangar.api.schema import FreeForm, Int32, ListMap, Timestamp

StepKind = Literal[
    "AgentRun", "ToolRun", "SubOrchestration", "ApprovalGate", "SignalWait", "Checkpoint", "MemoryOp"
]
"""The step kinds the orchestration controller executes; anything else could only fail at run time."""


class OrchestrationStep(OpenModel):
    name: str = Field(min_length=1)
    kind: StepKind
    depends_on: list[str] | None = None
    """Names of steps that must succeed first."""
    agent_ref: OptionalNameRef | None = None
    tool_ref: OptionalNameRef | None = None
    orchestration_ref: OptionalNameRef | None = None
    policy_ref: str | None = None
    """ApprovalPolicy name for an ApprovalGate step."""
    with_: dict[str, str] | None = Field(default=None, alias="with")
    """Step inputs, overlaid on the run parameters."""
    retries: Int32 | None = Field(default=None, ge=0)
    retry_backoff_seconds: Int32 | None = Field(default=None, ge=0)
    timeout_seconds: Int32 | None = Field(default=None, ge=0)
    """How long one attempt may run (from its start) before its child is cancelled and the attempt fails
    with `StepTimedOut` (retried while attempts remain); unset or 0: no limit."""
    goal: Goal | None = None
    """An AgentRun step's `spec.goal` (0.9.29), copied to the AgentRun it creates."""


class OrchestrationSpec(KubeModel):
    entrypoint: str | None = None
    steps: Annotated[list[OrchestrationStep], ListMap(("name",))]
    """The steps; names are unique, order breaks ties between independent steps."""
    policies: FreeForm | None = None


class OrchestrationStatus(ResourceStatus):
    pass


class Orchestration(Resource[OrchestrationSpec, OrchestrationStatus]):
    """A reusable graph of steps (agent runs, tool runs, approvals, signals, sub-orchestrations)."""

    GROUP: ClassVar[str] = groups.ORCHESTRATION
    KIND: ClassVar[str] = "Orchestration"

    spec: OrchestrationSpec
    status: OrchestrationStatus | None = None


class OrchestrationRunSpec(KubeModel):
    orchestration_ref: NameRef
    parameters: dict[str, str] | None = None
    delivery_id: str | None = None
    """Idempotency key of the trigger that created this run."""
    budget_ref: NameRef | None = None
    """The Budget the run and its children count against (else the Orchestration's
    `spec.policies.budgetRef`); an exceeded Budget holds the run before its first step."""


class StepApproval(KubeModel):
    """The decision an ApprovalGate step took."""

    decision: str | None = None
    """approved or rejected."""
    decided_by: str | None = None
    decided_at: Timestamp | None = None
    reason: str | None = None
    defaulted: bool | None = None
    """True when the policy's `defaultDecision` was applied after its `timeoutSeconds`."""
    delivery: str | None = None
    """The decision SignalDelivery (absent for a default decision)."""


class OrchestrationStepStatus(OpenModel):
    name: str
    kind: str
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    last_transition_time: Timestamp | None = None
    attempt: Int32 | None = Field(default=None, ge=0)
    next_retry_at: Timestamp | None = None
    resource_ref: ResourceRef | None = None
    """The AgentRun, ToolRun, OrchestrationRun or SignalDelivery behind the step."""
    outputs: FreeForm | None = None
    approval: StepApproval | None = None
    """ApprovalGate steps: the decision, who made it and when."""


class OrchestrationRunStatus(ResourceStatus):
    run_id: str | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    step_statuses: list[OrchestrationStepStatus] | None = None


class OrchestrationRun(Resource[OrchestrationRunSpec, OrchestrationRunStatus]):
    """One execution of an Orchestration with its parameters."""

    GROUP: ClassVar[str] = groups.ORCHESTRATION
    KIND: ClassVar[str] = "OrchestrationRun"

    spec: OrchestrationRunSpec
    status: OrchestrationRunStatus | None = None
