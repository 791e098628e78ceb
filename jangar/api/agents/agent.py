"""Agent (who runs: a provider plus defaults and a security envelope) and AgentProvider (how to run it)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from jangar.api import groups
from jangar.api.agents.agentrun import ResourceRequirements
from jangar.api.agents.prompts import MAX_SYSTEM_PROMPT, SystemPromptRef
from jangar.api.common import EnvVar, NameRef, SecretKeyRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import FreeForm, Int32, Int64, Rule, Timestamp


class AgentDefaults(KubeModel):
    cel_rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            rule="!(has(self.systemPrompt) && has(self.systemPromptRef))",
            message="set spec.defaults.systemPrompt or spec.defaults.systemPromptRef, not both",
        ),
    )

    timeout_seconds: Int32 | None = Field(default=None, ge=0)
    """Default wall-clock limit for runs of this agent."""
    retry_limit: Int32 | None = Field(default=None, ge=0)
    system_prompt: str | None = Field(default=None, max_length=MAX_SYSTEM_PROMPT)
    """The system prompt of every run of this agent (0.9.29); its sha256 is checked by the runner."""
    system_prompt_ref: SystemPromptRef | None = None
    """The system prompt from a Secret or ConfigMap key instead of inline."""


class AgentSecurity(KubeModel):
    """What runs of this agent may use; an empty list allows everything."""

    allowed_secrets: list[str] | None = None
    allowed_service_accounts: list[str] | None = None
    allowed_implementation_source_providers: list[str] | None = None
    """ImplementationSource providers (github, linear, ...) whose webhooks may create work for this agent
    (0.9.29); unset or empty allows every provider."""


class AgentSpec(KubeModel):
    provider_ref: NameRef
    """The AgentProvider that runs this agent."""
    config: FreeForm | None = None
    """Provider-specific settings (for example `model`), available to templates as `agent.config`."""
    env: list[EnvVar] | None = None
    defaults: AgentDefaults | None = None
    security: AgentSecurity | None = None
    memory_ref: NameRef | None = None
    vcs_ref: NameRef | None = None
    budget_ref: NameRef | None = None
    """The Budget this agent's runs count against (and are held by) when a run names none itself."""


class AgentStatus(ResourceStatus):
    pass


class Agent(Resource[AgentSpec, AgentStatus]):
    """An agent: the AgentProvider that runs it, its configuration, defaults and what its runs may use."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "Agent"

    spec: AgentSpec
    status: AgentStatus | None = None


class InputFile(KubeModel):
    """A file written into the runner container before the binary starts."""

    path: str
    content: str


class OutputArtifact(KubeModel):
    """A file the runner produces that should be kept."""

    name: str
    path: str | None = None
    key: str | None = None
    url: str | None = None


# -- chart 0.9.29 additions (drift rows 9 and 10): workload defaults, secretEnv, adapter, health -------------

CapacityFailurePolicy = Literal["degrade", "block"]


class ServiceAccountToken(KubeModel):
    """A projected ServiceAccount token mounted into the runner (audience-bound, rotated by the kubelet)."""

    audience: str | None = None
    """Who the token is for (`aud`); the API server's default audience when unset."""
    expiration_seconds: Int64 | None = None
    """Requested lifetime, at least 600 (Kubernetes' minimum; the provider is InvalidSpec below it); the
    kubelet refreshes the file before it expires."""
    path: str = Field(min_length=1)
    """Absolute file path of the token inside the runner container."""


class ProviderWorkload(KubeModel):
    """Provider-level runner defaults: a run's own `spec.workload` / `runtime.config` wins, the controller
    default (`controller.defaultWorkload`, `runner.image`) comes last."""

    image: str | None = None
    resources: ResourceRequirements | None = None
    service_account_name: str | None = None
    service_account_token: ServiceAccountToken | None = None


class SecretEnv(KubeModel):
    """An env var from a Secret key: always a `secretKeyRef` in the Job, never a literal value."""

    name: str = Field(min_length=1)
    secret_key_ref: SecretKeyRef
    """The Secret (same namespace as the run) and key; the key defaults to `name`."""


class ProviderHealth(KubeModel):
    capacity_failure_policy: CapacityFailurePolicy | None = None
    """What a run failing on usage limits / quota / rate limits does to the provider: `degrade` (the
    default: Degraded=True, Ready stays True) or `block` (Ready=False). New runs wait in both cases."""


class AgentProviderSpec(KubeModel):
    binary: str = Field(min_length=1)
    """The executable the runner starts."""
    args_template: list[str] | None = None
    """Arguments; `{{path.to.value}}` placeholders are rendered per run."""
    env_template: dict[str, str] | None = None
    """Environment variables; values are rendered like `argsTemplate`."""
    input_files: list[InputFile] | None = None
    output_artifacts: list[OutputArtifact] | None = None
    workload: ProviderWorkload | None = None
    secret_env: list[SecretEnv] | None = None
    adapter: str | None = None
    """The runner contract the binary speaks (0.9.29: `codex-app-server`); passed to it as
    `AGENT_PROVIDER_ADAPTER`. Other values are accepted with an `UnknownAdapter` Warning."""
    health: ProviderHealth | None = None


class ProviderHealthStatus(KubeModel):
    """The last capacity or auth failure of a run of this provider, while it holds new runs."""

    state: Literal["Healthy", "CapacityExhausted", "AuthFailed"] | None = None
    reason: str | None = None
    message: str | None = None
    failed_run: str | None = None
    """The AgentRun whose outcome was classified."""
    failed_at: Timestamp | None = None
    until: Timestamp | None = None
    """New runs are held until then (the cool-down), unless the provider recovers earlier."""
    generation: Int64 | None = Field(default=None, ge=0)
    """The provider generation the health was computed for; a spec change clears a failure."""
    reset_at: Timestamp | None = None
    """Failures of runs that finished before this moment (the last spec change) are ignored."""


class AgentProviderStatus(ResourceStatus):
    health: ProviderHealthStatus | None = None


class AgentProvider(Resource[AgentProviderSpec, AgentProviderStatus]):
    """How to run an agent: the runner binary, its argument and env templates, input files and outputs."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "AgentProvider"

    spec: AgentProviderSpec
    status: AgentProviderStatus | None = None
