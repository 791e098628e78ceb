"""Agent (who runs: a provider plus defaults and a security envelope) and AgentProvider (how to run it)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from jangar.api import groups
from jangar.api.common import EnvVar, NameRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import FreeForm, Int32, Rule

#: The inline system prompt limit of the 0.9.29 reference (16 KiB); a longer prompt goes in a ConfigMap.
MAX_SYSTEM_PROMPT = 16384


class SystemPromptRef(KubeModel):
    """Where a system prompt longer than the inline limit (or a secret one) lives, in the Agent's namespace."""

    kind: Literal["Secret", "ConfigMap"]
    name: str = Field(min_length=1)
    key: str | None = None
    """Key inside the object; `systemPrompt` when unset."""


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


class AgentProviderSpec(KubeModel):
    binary: str = Field(min_length=1)
    """The executable the runner starts."""
    args_template: list[str] | None = None
    """Arguments; `{{path.to.value}}` placeholders are rendered per run."""
    env_template: dict[str, str] | None = None
    """Environment variables; values are rendered like `argsTemplate`."""
    input_files: list[InputFile] | None = None
    output_artifacts: list[OutputArtifact] | None = None


class AgentProviderStatus(ResourceStatus):
    pass


class AgentProvider(Resource[AgentProviderSpec, AgentProviderStatus]):
    """How to run an agent: the runner binary, its argument and env templates, input files and outputs."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "AgentProvider"

    spec: AgentProviderSpec
    status: AgentProviderStatus | None = None
