"""VersionControlProvider: a Git host, its credentials and the repository policy runs must follow."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from jangar.api import groups
from jangar.api.common import ConfigMapKeyRef, SecretKeyRef
from jangar.api.meta import KubeModel, Resource, ResourceStatus
from jangar.api.schema import Int32, IntOrStr, Rule, Timestamp, Url

VcsProviderType = Literal["github", "gitlab", "bitbucket", "gitea", "generic"]
VcsAuthMethod = Literal["token", "app", "ssh", "none"]
VcsTokenType = Literal["pat", "fine_grained", "api_token", "access_token"]
VcsMode = Literal["read-write", "read-only", "none"]
MAX_REPOSITORY_PATTERNS = 200


class TokenAuth(KubeModel):
    secret_ref: SecretKeyRef | None = None
    """The Secret with the token (default key `token`)."""
    type: VcsTokenType | None = None
    """Token kind; each provider has a default and may deprecate some kinds."""


class AppAuth(KubeModel):
    """GitHub App credentials; the controller mints short-lived installation tokens from them."""

    app_id: IntOrStr | None = None
    installation_id: IntOrStr | None = None
    private_key_secret_ref: SecretKeyRef | None = None
    """The Secret with the PEM private key (default key `privateKey`)."""
    token_ttl_seconds: Int32 | None = Field(default=None, ge=0)
    """Fallback lifetime when GitHub does not report one."""


class SshAuth(KubeModel):
    private_key_secret_ref: SecretKeyRef | None = None
    known_hosts_config_map_ref: ConfigMapKeyRef | None = None


class VcsAuth(KubeModel):
    cel_rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            rule="!has(self.method) || self.method != 'app' || (has(self.app) && has(self.app.appId) && "
            "has(self.app.installationId) && has(self.app.privateKeySecretRef))",
            message="auth.method app needs auth.app.appId, auth.app.installationId and "
            "auth.app.privateKeySecretRef",
        ),
        Rule(
            rule="!has(self.method) || self.method != 'token' || (has(self.token) && has(self.token.secretRef))",
            message="auth.method token needs auth.token.secretRef",
        ),
        Rule(
            rule="!has(self.method) || self.method != 'ssh' || (has(self.ssh) && has(self.ssh.privateKeySecretRef))",
            message="auth.method ssh needs auth.ssh.privateKeySecretRef",
        ),
    )

    method: VcsAuthMethod | None = None
    """How to authenticate; inferred from the refs present when unset."""
    username: str | None = None
    token: TokenAuth | None = None
    app: AppAuth | None = None
    ssh: SshAuth | None = None


class RepositoryPolicy(KubeModel):
    """Glob patterns (`*` matches anything) on `owner/repo`; deny wins over allow."""

    allow: list[str] | None = Field(default=None, max_length=MAX_REPOSITORY_PATTERNS)
    deny: list[str] | None = Field(default=None, max_length=MAX_REPOSITORY_PATTERNS)


class VcsCapabilities(KubeModel):
    """What runs may do; a missing value counts as true."""

    read: bool | None = None
    write: bool | None = None
    pull_requests: bool | None = None


class PullRequestDefaults(KubeModel):
    enabled: bool | None = None
    draft: bool | None = None
    title_template: str | None = None
    body_template: str | None = None


class VcsDefaults(KubeModel):
    base_branch: str | None = None
    branch_template: str | None = None
    """Head branch template, rendered with the run's metadata and parameters."""
    branch_conflict_suffix_template: str | None = None
    """Appended to the head branch when another active run already uses it."""
    commit_author_name: str | None = None
    commit_author_email: str | None = None
    pull_request: PullRequestDefaults | None = None


class VersionControlProviderSpec(KubeModel):
    provider: VcsProviderType
    api_base_url: Url | None = None
    clone_base_url: Url | None = None
    web_base_url: Url | None = None
    clone_protocol: Literal["https", "ssh"] | None = None
    ssh_host: str | None = None
    ssh_user: str | None = None
    auth: VcsAuth | None = None
    repository_policy: RepositoryPolicy | None = None
    capabilities: VcsCapabilities | None = None
    defaults: VcsDefaults | None = None


class VersionControlProviderStatus(ResourceStatus):
    last_validated_at: Timestamp | None = None
    """When the credentials were last checked."""


class VersionControlProvider(Resource[VersionControlProviderSpec, VersionControlProviderStatus]):
    """A Git host, the credentials runs use for it and the repositories they may touch."""

    GROUP: ClassVar[str] = groups.AGENTS
    KIND: ClassVar[str] = "VersionControlProvider"

    spec: VersionControlProviderSpec
    status: VersionControlProviderStatus | None = None
