"""Version control for AgentRuns: provider auth rules, repository policy, branches, runner env and
volumes (credentials only by Secret reference), and GitHub App installation tokens (reference §5)."""

from jangar.vcs.adapters import ADAPTERS, AuthCheck, adapter_for, check_auth, normalize_token_type
from jangar.vcs.branches import resolve_head_branch
from jangar.vcs.github_app import (
    GitHubAppError,
    GitHubAppTokenMinter,
    InstallationToken,
    app_jwt,
    token_secret_manifest,
    token_secret_name,
)
from jangar.vcs.policy import repository_denial
from jangar.vcs.provider import ProviderCheck, check_provider
from jangar.vcs.resolve import AppTokenRequest, VcsResolution, resolve_run_vcs

__all__ = [
    "ADAPTERS",
    "AppTokenRequest",
    "AuthCheck",
    "GitHubAppError",
    "GitHubAppTokenMinter",
    "InstallationToken",
    "ProviderCheck",
    "VcsResolution",
    "adapter_for",
    "app_jwt",
    "check_auth",
    "check_provider",
    "normalize_token_type",
    "repository_denial",
    "resolve_head_branch",
    "resolve_run_vcs",
    "token_secret_manifest",
    "token_secret_name",
]
