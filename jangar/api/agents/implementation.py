"""ImplementationSpec (what an agent should do) and ImplementationSource (where such specs come from).

`ImplementationSpecSpec` is also the shape of `AgentRun.spec.implementation.inline`, so a run can carry
its task inline with the same limits as a stored spec.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from jangar.api import groups
from jangar.api.common import NameRef, SecretKeyRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Int32, Timestamp

MAX_TEXT = 131072
MAX_SUMMARY = 256
MAX_ACCEPTANCE_CRITERIA = 50
MAX_REQUIRED_KEYS = 50
MAX_MAPPINGS = 100

ImplementationProvider = Literal["github", "linear", "manual", "custom"]


class ImplementationSourceRef(KubeModel):
    """Where an implementation came from (an issue tracker item, or manual)."""

    provider: ImplementationProvider
    external_id: str | None = None
    """Provider id, e.g. `owner/repo#123` for GitHub or `ENG-42` for Linear."""
    url: str | None = None


class ContractMapping(KubeModel):
    """Copies run parameter `from` into metadata key `to` when `to` is empty."""

    from_: str = Field(alias="from", max_length=256)
    to: str = Field(max_length=256)


class Contract(KubeModel):
    """The run parameters an implementation needs, checked before a run starts."""

    required_keys: list[str] | None = Field(default=None, max_length=MAX_REQUIRED_KEYS)
    """Metadata keys that must be non-empty after mappings are applied."""
    mappings: list[ContractMapping] | None = Field(default=None, max_length=MAX_MAPPINGS)
    """Parameter renames applied before the required keys are checked."""


class ImplementationSpecSpec(KubeModel):
    """The task: a text prompt plus metadata and the parameter contract."""

    text: str = Field(max_length=MAX_TEXT)
    """The task the agent carries out."""
    summary: str | None = Field(default=None, max_length=MAX_SUMMARY)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    acceptance_criteria: list[str] | None = Field(default=None, max_length=MAX_ACCEPTANCE_CRITERIA)
    labels: list[str] | None = None
    source: ImplementationSourceRef | None = None
    contract: Contract | None = None
    vcs_ref: NameRef | None = None
    """The VersionControlProvider runs of this implementation use unless the run names one."""


class ImplementationSpecStatus(ResourceStatus):
    synced_at: Timestamp | None = None
    """When the spec was last synced from its source."""
    source_version: str | None = None
    """The source's version of the item (e.g. the issue's updated_at)."""


class ImplementationSpec(Resource[ImplementationSpecSpec, ImplementationSpecStatus]):
    """A task for an agent: the prompt text, its metadata and the parameters a run must provide."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "ImplementationSpec"

    spec: ImplementationSpecSpec
    status: ImplementationSpecStatus | None = None


class SourceAuth(KubeModel):
    secret_ref: SecretKeyRef
    """The Secret holding the API token and the webhook HMAC key (default key `token`)."""


class SourceWebhook(KubeModel):
    enabled: bool = False
    """Accept webhook deliveries for this source."""


class SourceScope(KubeModel):
    """Which issues of the provider this source accepts."""

    repository: str | None = None
    organization: str | None = None
    project: str | None = None
    team: str | None = None
    query: str | None = None
    labels: list[str] | None = None
    """Every label listed must be on the issue."""


class SourceRunTemplate(KubeModel):
    """An AgentRun started for each accepted webhook delivery (jangar; the reference only synced specs)."""

    enabled: bool = False
    """Off by default: a delivery then only creates or updates the ImplementationSpec."""
    agent_ref: NameRef | None = None
    """The Agent of the run (required when enabled)."""
    runtime: Literal["job", "workflow", "temporal", "custom"] = "job"
    parameters: dict[str, str] | None = None
    """Run parameters; `repository`, `issueNumber`, `externalId` and `url` are added from the issue when unset."""
    secrets: list[str] | None = None
    memory_ref: NameRef | None = None
    vcs_ref: NameRef | None = None


class ImplementationSourceSpec(KubeModel):
    provider: Literal["github", "linear"]
    auth: SourceAuth
    webhook: SourceWebhook | None = None
    scope: SourceScope | None = None
    mapping: dict[str, str] | None = None
    run_template: SourceRunTemplate | None = None
    """Optionally also start an AgentRun per accepted delivery (off by default)."""


class WebhookDelivery(KubeModel):
    """Bookkeeping of the last webhook delivery processed for this source."""

    delivery_id: str | None = None
    idempotency_key: str | None = None
    provider: str | None = None
    external_id: str | None = None
    source_version: str | None = None
    attempts: Int32 | None = None
    status: str | None = None
    """synced, retrying or failed."""
    error: str | None = None
    received_at: Timestamp | None = None
    processed_at: Timestamp | None = None


class ImplementationSourceStatus(ResourceStatus):
    last_synced_at: Timestamp | None = None
    last_webhook: WebhookDelivery | None = None


class ImplementationSource(Resource[ImplementationSourceSpec, ImplementationSourceStatus]):
    """An issue tracker (GitHub or Linear) whose webhooks create ImplementationSpecs."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "ImplementationSource"

    spec: ImplementationSourceSpec
    status: ImplementationSourceStatus | None = None
