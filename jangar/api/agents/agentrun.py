"""AgentRun: one execution of an agent on an implementation, as a Job or a sequence of workflow steps.

The status carries everything the controller records, and nothing it records may be missing here: a
field absent from the schema is silently pruned by the API server (the reference lost
`steps[].jobObservedAt` that way and could never notice a vanished Job).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from annotated_types import MaxLen
from pydantic import Field

from jangar.api import groups
from jangar.api.agents.implementation import ImplementationSpecSpec
from jangar.api.agents.prompts import MAX_SYSTEM_PROMPT, SystemPromptRef
from jangar.api.agents.vcs import VcsMode
from jangar.api.common import JobRef, NameRef
from jangar.api.meta import KubeModel, OpenModel, Resource, ResourceStatus
from jangar.api.schema import FreeForm, Int32, IntOrStr, ListMap, Rule, Timestamp

RuntimeType = Literal["workflow", "job", "temporal", "custom"]
VolumeType = Literal["emptyDir", "pvc", "secret"]
MAX_PARAMETERS = 100

Parameters = Annotated[dict[str, str], MaxLen(MAX_PARAMETERS)]
"""Run inputs, string to string, at most 100 entries."""

Quantities = dict[str, IntOrStr]
"""Resource quantities such as `cpu: 500m` or `cpu: 2`."""


class InlineImplementation(KubeModel):
    inline: ImplementationSpecSpec
    """An ImplementationSpec spec carried by the run itself."""


class Runtime(KubeModel):
    type: RuntimeType
    """How the run executes: a Job, native workflow steps, Temporal or a custom endpoint."""
    config: FreeForm | None = None
    """Per-run runtime settings (ttlSecondsAfterFinished, logRetentionSeconds, serviceAccount,
    nodeSelector, tolerations, affinity, ...); each key replaces the controller default."""


class VcsPolicy(KubeModel):
    required: bool | None = None
    """Fail the run instead of running without version control when the provider cannot be used."""
    mode: VcsMode | None = None
    """Access the run needs; read-write when unset."""


class ResourceRequirements(KubeModel):
    requests: Quantities | None = None
    limits: Quantities | None = None


class Volume(KubeModel):
    cel_rules: ClassVar[tuple[Rule, ...]] = (
        Rule(rule="self.type != 'pvc' || has(self.claimName)", message="a pvc volume needs claimName"),
        Rule(
            rule="self.type != 'secret' || has(self.secretName)", message="a secret volume needs secretName"
        ),
    )

    type: VolumeType
    name: str
    mount_path: str
    read_only: bool | None = None
    medium: str | None = None
    """emptyDir medium, e.g. Memory."""
    size_limit: str | None = None
    """emptyDir size limit as a quantity."""
    claim_name: str | None = None
    """PersistentVolumeClaim name (type pvc)."""
    secret_name: str | None = None
    """Secret name (type secret)."""


class Workload(KubeModel):
    image: str | None = None
    """Runner image; the controller default when unset."""
    resources: ResourceRequirements | None = None
    volumes: list[Volume] | None = None


LoopControlPolicy = Literal["stop", "fail"]
LOOP_MAX_ITERATIONS = 1000
LOOP_DEFAULT_HISTORY_LIMIT = 20


class LoopControlSource(OpenModel):
    path: str = Field(min_length=1)
    """The loop-control JSON file the step writes, relative to the step's working directory
    (`/workspace`) or absolute (e.g. `/workspace/<workspace>/loop.json` on the Workspace PVC). The runner
    reports its content in the container's termination message, where the controller reads it."""


class LoopCondition(OpenModel):
    cel: str = Field(min_length=1, max_length=1024)
    """A CEL expression evaluated after each iteration; the step repeats while it is true. Variables:
    `control` (the loop-control object), `iteration` (1-based, the one that just ended), `maxIterations`."""
    source: LoopControlSource | None = None
    """Where the loop-control data comes from; `.agent/loop-control.json` when unset."""


class WorkflowStepLoop(OpenModel):
    """Repeat the step: `maxIterations` times (a fixed loop), or while `condition` holds (at most
    `maxIterations` times). Each iteration is its own Job (with its own retries). Needs the controller's
    `JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED`; unknown keys are kept for 0.9.29 manifests."""

    max_iterations: Int32 = Field(ge=1, le=LOOP_MAX_ITERATIONS)
    """The number of iterations of a fixed loop; the upper bound of a conditional one."""
    condition: LoopCondition | None = None
    on_missing_control: LoopControlPolicy | None = None
    """The step wrote no loop-control data: `stop` the loop (the step succeeds, the default) or `fail`."""
    on_invalid_control: LoopControlPolicy | None = None
    """The data is not a JSON object, or the condition does not evaluate to a bool over it: `stop` or
    `fail` (the default)."""
    history_limit: Int32 | None = Field(default=None, ge=1, le=LOOP_MAX_ITERATIONS)
    """Iterations kept in `status.workflow.steps[].loop.iterations` (newest), 20 when unset; older ones are
    pruned and counted in `pruned`."""
    state_volumes: list[str] | None = None
    """Names of volumes that carry state from one iteration to the next: each must be a `pvc` volume of
    the step's (or run's) workload, or the run's Workspace. Other volumes start empty each iteration."""


class WorkflowStep(KubeModel):
    name: str = Field(min_length=1)
    implementation_spec_ref: NameRef | None = None
    implementation: InlineImplementation | None = None
    parameters: Parameters | None = None
    """Overlaid on the run's parameters for this step."""
    workload: Workload | None = None
    retries: Int32 | None = Field(default=None, ge=0)
    """Extra attempts after a failed one."""
    retry_backoff_seconds: Int32 | None = Field(default=None, ge=0)
    """Wait before the first retry; doubled for each further one, capped at an hour."""
    timeout_seconds: Int32 | None = Field(default=None, ge=1)
    """The deadline of each attempt's Job (activeDeadlineSeconds); a timed-out attempt is retried, and
    the step and run fail with `WorkflowStepTimedOut` when no attempt is left."""
    loop: WorkflowStepLoop | None = None


class Workflow(KubeModel):
    steps: Annotated[list[WorkflowStep], ListMap(("name",))]
    """Steps run one after another; names are unique."""


class Goal(KubeModel):
    """What the run is for, handed to the runner (`run.json` `goal`, env `JANGAR_GOAL_OBJECTIVE`)."""

    objective: str = Field(min_length=1, max_length=4096)
    token_budget: Int32 | None = Field(default=None, ge=1)
    """The most tokens the agent should spend; advisory, enforced by the agent."""


class AgentRunSpec(KubeModel):
    cel_rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            rule="!has(self.systemPrompt) && !has(self.systemPromptRef)",
            message="a run cannot override its Agent's system prompt: set spec.defaults.systemPrompt "
            "(or systemPromptRef) on the Agent, and put task text in the ImplementationSpec's spec.text",
        ),
        Rule(
            rule="has(self.implementationSpecRef) || has(self.implementation)",
            message="spec.implementationSpecRef or spec.implementation is required",
        ),
        Rule(
            rule="self.runtime.type != 'workflow' || (has(self.workflow) && size(self.workflow.steps) > 0)",
            message="spec.workflow.steps needs at least one step when spec.runtime.type is workflow",
        ),
    )

    agent_ref: NameRef
    implementation_spec_ref: NameRef | None = None
    implementation: InlineImplementation | None = None
    runtime: Runtime
    parameters: Parameters | None = None
    secrets: list[str] | None = None
    """Secrets exposed to the runner through envFrom; each must be allowed for the agent."""
    memory_ref: NameRef | None = None
    vcs_ref: NameRef | None = None
    vcs_policy: VcsPolicy | None = None
    workload: Workload | None = None
    workflow: Workflow | None = None
    idempotency_key: str | None = None
    ttl_seconds_after_finished: Int32 | None = Field(default=None, ge=0)
    """Delete the run this long after it finished; 0 keeps it."""
    budget_ref: NameRef | None = None
    """The Budget the run counts against; while it is exceeded the run waits (BudgetExceeded) before it
    starts. Unset: its Agent's `spec.budgetRef`, if any."""
    goal: Goal | None = None
    """The run's objective (and optional token budget), carried to the runner (0.9.29)."""
    system_prompt: str | None = Field(default=None, max_length=MAX_SYSTEM_PROMPT)
    """Accepted by the schema for 0.9.29 manifests but refused by a rule: the prompt is the Agent's."""
    system_prompt_ref: SystemPromptRef | None = None
    """Refused like `systemPrompt`."""
    workspace_ref: NameRef | None = None
    """A Workspace (same namespace) whose PersistentVolumeClaim is mounted at `/workspace/<name>` in the
    run's pods (every workflow step). A missing Workspace holds the run Pending for the reference grace;
    an expired or failed one fails it (`WorkspaceExpired`, `WorkspaceUnavailable`)."""


class LoopIteration(KubeModel):
    """One iteration of a looping step."""

    index: Int32 = Field(ge=1)
    phase: str | None = None
    """Running, Retrying, Succeeded or Failed."""
    attempt: Int32 | None = Field(default=None, ge=0)
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    job_ref: JobRef | None = None
    reason: str | None = None
    message: str | None = None


class LoopStatus(KubeModel):
    """Progress of a looping step."""

    iteration: Int32 | None = Field(default=None, ge=0)
    """The current (or last) iteration, 1-based."""
    iterations: list[LoopIteration] | None = None
    """The newest `historyLimit` iterations."""
    stop_reason: str | None = None
    """Why the loop ended: MaxIterationsReached, ConditionFalse, ControlMissing, ControlInvalid or
    IterationFailed."""
    pruned: Int32 | None = Field(default=None, ge=0)
    """Iterations dropped from `iterations` by `historyLimit`."""
    retained: Int32 | None = Field(default=None, ge=0)
    """Iterations kept in `iterations`."""


class StepStatus(KubeModel):
    """Progress of one workflow step."""

    name: str | None = None
    phase: str | None = None
    """Pending, Running, Retrying, Succeeded or Failed."""
    reason: str | None = None
    message: str | None = None
    attempt: Int32 | None = Field(default=None, ge=0)
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    last_transition_time: Timestamp | None = None
    next_retry_at: Timestamp | None = None
    """When a Retrying step is attempted again."""
    job_ref: JobRef | None = None
    job_observed_at: Timestamp | None = None
    """When the step's Job was first seen, so a Job that disappears later is detected."""
    loop: LoopStatus | None = None


class WorkflowStatus(KubeModel):
    phase: str | None = None
    last_transition_time: Timestamp | None = None
    steps: list[StepStatus] | None = None


class VcsStatus(KubeModel):
    """The version-control context the run was given."""

    provider: str | None = None
    """Name of the VersionControlProvider."""
    repository: str | None = None
    base_branch: str | None = None
    head_branch: str | None = None
    branch: str | None = None
    mode: VcsMode | None = None
    """Effective access mode after capabilities and auth were applied."""
    write_enabled: bool | None = None
    pull_requests_enabled: bool | None = None


class ContractStatus(KubeModel):
    required_keys: list[str] | None = None
    missing_keys: list[str] | None = None


class RunArtifact(KubeModel):
    name: str
    path: str | None = None
    key: str | None = None
    url: str | None = None
    present: bool | None = None
    """Whether the file existed when the agent ended (reported by the runner)."""
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = None


class RunnerStatus(KubeModel):
    """What the agent's container reported when it ended, read from the Pod (its termination message)."""

    exit_code: Int32 | None = None
    reason: str | None = None
    """The container's terminated reason (Completed, Error, OOMKilled, ...)."""
    outputs: FreeForm | None = None
    """The JSON object the agent (or jangar-runner) wrote to /dev/termination-log."""
    message: str | None = None
    """Plain text the container left instead (a failing container's log tail), capped at 1 KiB."""
    model: str | None = None
    """The model the agent reported using (its outputs' `model`)."""
    thread_id: str | None = None
    """The agent's conversation/thread id (its outputs' `threadId`), to resume or audit it."""
    artifacts: list[str] | None = None
    """Names of the artifacts the runner reported (their details are in `status.artifacts`)."""
    system_prompt_verified: bool | None = None
    """The runner checked the system prompt's sha256 against `status.systemPromptHash`."""


class QueueStatus(KubeModel):
    """Admission bookkeeping while a run waits for capacity (phase Queued)."""

    position: Int32 | None = Field(default=None, ge=0)
    """1-based place among the runs waiting behind the same limit."""
    scope: str | None = None
    """The limit that holds the run: agent, repository, namespace, cluster or rate."""
    key: str | None = None
    """The agent, repository or namespace the limit applies to."""
    limit: Int32 | None = Field(default=None, ge=0)
    enqueued_at: Timestamp | None = None
    admitted_at: Timestamp | None = None


class AgentRunStatus(ResourceStatus):
    reason: str | None = None
    """Why the run is in its phase (the Failed reason, the Blocked reason, ...); cleared with the fact."""
    message: str | None = None
    """The human-readable explanation of `reason`."""
    spec_hash: str | None = None
    """sha256 of the spec fields fixed at acceptance; an edit of them is a SpecImmutableViolation."""
    spec_field_hashes: dict[str, str] | None = None
    """A short digest per hashed field, so a violation names the fields that changed."""
    system_prompt_hash: str | None = None
    """sha256 of the Agent's system prompt as resolved at acceptance; the runner checks the text against it."""
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    """Set on every terminal phase, so retention applies to every finished run."""
    runtime_ref: FreeForm | None = None
    """What the runtime created: {type, name, namespace, uid, ...}."""
    job_ref: JobRef | None = None
    """The Job of a `job` runtime run (the current step's Job for workflows)."""
    vcs: VcsStatus | None = None
    contract: ContractStatus | None = None
    artifacts: list[RunArtifact] | None = None
    runner: RunnerStatus | None = None
    workflow: WorkflowStatus | None = None
    queue: QueueStatus | None = None


class AgentRun(Resource[AgentRunSpec, AgentRunStatus]):
    """One execution of an agent on an implementation, as a Kubernetes Job or a sequence of workflow steps."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "AgentRun"

    spec: AgentRunSpec
    status: AgentRunStatus | None = None
