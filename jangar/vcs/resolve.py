"""Resolve a run's version control: which provider, repository, branches and mode, and what the runner pod
needs (env, volumes) — with credentials only as Secret references (reference §5.2).

`resolve_run_vcs` is pure. Lookups it cannot do itself (whether a Secret has a key, the secret policy) are
passed in as callables. GitHub App runs get `app_token`: the reconciler mints the token
(`GitHubAppTokenMinter`), creates the Secret from `token_secret_manifest`, then the Job, whose env and
volume already point at that Secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jangar.api.shape import as_map
from jangar.scheduler.context import VcsRuntime
from jangar.scheduler.contract import BASE_KEYS, HEAD_KEYS
from jangar.scheduler.naming import dns_label
from jangar.settings import Settings
from jangar.validation.problems import Problem
from jangar.vcs.adapters import adapter_for, check_auth
from jangar.vcs.branches import resolve_head_branch
from jangar.vcs.github_app import TOKEN_SECRET_KEY, token_secret_name
from jangar.vcs.policy import repository_denial

__all__ = [
    "GIT_CREDENTIAL_HELPER",
    "KNOWN_HOSTS_DIR",
    "SSH_DIR",
    "TOKEN_DIR",
    "TOKEN_FILE",
    "AppTokenRequest",
    "VcsResolution",
    "resolve_run_vcs",
]

SSH_DIR = "/var/run/secrets/agents/vcs/ssh"
KNOWN_HOSTS_DIR = "/var/run/secrets/agents/vcs/known-hosts"
TOKEN_DIR = "/var/run/secrets/agents/vcs/token"
#: The GitHub App installation token of a run, kept fresh by the controller (docs/security.md): read it at
#: each use; an env copy would go stale when the token is refreshed.
TOKEN_FILE = f"{TOKEN_DIR}/{TOKEN_SECRET_KEY}"
#: git's credential helper for App tokens: reads TOKEN_FILE at every fetch and push (git >= 2.31 reads
#: GIT_CONFIG_COUNT/KEY/VALUE from the environment).
GIT_CREDENTIAL_HELPER = '!f() { test "$1" = get || exit 0; echo username=x-access-token; echo "password=$(cat "$VCS_TOKEN_FILE")"; }; f'

Outcome = Literal["ok", "skip", "fail"]
SecretPolicy = Callable[[str, str], Problem | None]
KeyCheck = Callable[[str, str], bool]


@dataclass(frozen=True)
class AppTokenRequest:
    """A GitHub App token the reconciler must mint into Secret `secret_name` before creating the Job."""

    api_base_url: str
    app_id: str
    installation_id: str
    private_key_secret: str
    private_key_key: str
    token_ttl_seconds: int | None
    secret_name: str


@dataclass(frozen=True)
class VcsResolution:
    """`ok`: use `runtime`. `skip`: run without VCS (`reason` → `VcsSkipped=True`, if set).
    `fail`: the run fails with `InvalidSpec=True/<reason>`. `warnings` → `Warning=True` on the run."""

    outcome: Outcome
    reason: str | None = None
    message: str = ""
    runtime: VcsRuntime | None = None
    status: dict[str, Any] | None = None
    warnings: list[Problem] = field(default_factory=list)
    app_token: AppTokenRequest | None = None
    parameters: dict[str, str] = field(default_factory=dict)


def _ref_name(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
        return str(ref["name"]).strip()
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _bool(value: Any, default: bool = True) -> bool:
    return value if isinstance(value, bool) else default


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def resolve_run_vcs(
    *,
    run: Mapping[str, Any],
    agent: Mapping[str, Any] | None,
    implementation: Mapping[str, Any] | None,
    parameters: Mapping[str, str],
    metadata: Mapping[str, str],
    provider: Mapping[str, Any] | None,
    settings: Settings,
    active_runs: Iterable[Mapping[str, Any]] = (),
    secret_policy: SecretPolicy = lambda secret, purpose: None,
    secret_has_key: KeyCheck = lambda name, key: True,
    configmap_has_key: KeyCheck = lambda name, key: True,
    name_suffix: str = "",
) -> VcsResolution:
    spec = as_map(run.get("spec"))
    params = dict(parameters)
    if not settings.vcs.providers_enabled:
        return VcsResolution(
            "skip", "VcsProvidersDisabled", "version control providers are disabled", parameters=params
        )
    policy = as_map(spec.get("vcsPolicy"))
    required = policy.get("required") is True
    desired = _text(policy.get("mode")) or "read-write"
    agent_spec = (agent or {}).get("spec") or {}
    vcs_ref = (
        _ref_name(spec.get("vcsRef"))
        or _ref_name((implementation or {}).get("vcsRef"))
        or _ref_name(agent_spec.get("vcsRef"))
    )

    def problem(reason: str, message: str, *, hard: bool | None = None) -> VcsResolution:
        is_hard = (required and desired != "none") if hard is None else hard
        if is_hard:
            return VcsResolution("fail", reason, message, parameters=params)
        return VcsResolution("skip", reason, message, parameters=params)

    if vcs_ref is None:
        if required:
            return problem(
                "MissingVcsProvider",
                "vcsPolicy.required is set but no vcsRef is given (run, implementation or agent)",
            )
        return VcsResolution("skip", None, "", parameters=params)
    if provider is None:
        return problem("MissingVcsProvider", f"version control provider {vcs_ref!r} not found")
    provider_spec = as_map(provider.get("spec"))
    repository = _text(metadata.get("repository"))
    if not repository:
        return problem(
            "MissingRepository", "no repository: set the repository parameter (or repo, issueRepository)"
        )
    denial = repository_denial(provider_spec, repository)
    if denial is not None:
        return problem("VcsPolicyDenied", f"{denial} (provider {vcs_ref})", hard=desired != "none")
    if desired == "none":
        return VcsResolution("skip", "VcsDisabled", "vcsPolicy.mode is none", parameters=params)

    capabilities = as_map(provider_spec.get("capabilities"))
    can_read = _bool(capabilities.get("read"))
    can_write = _bool(capabilities.get("write"))
    mode = desired
    if mode == "read-write" and not can_write:
        mode = "read-only"
    if mode == "read-only" and not can_read:
        mode = "none"
    if required and mode != desired:
        return problem(
            "VcsCapabilityDenied", f"provider {vcs_ref} allows {mode} access, but {desired} is required"
        )

    defaults = as_map(provider_spec.get("defaults"))
    base = _text(metadata.get("base")) or _text(defaults.get("baseBranch"))
    head = (
        resolve_head_branch(
            run=run,
            defaults=defaults,
            parameters=params,
            metadata=metadata,
            repository=repository,
            active_runs=active_runs,
            writes=mode == "read-write",
        )
        or ""
    )

    auth_check = check_auth(provider_spec, settings)
    if auth_check.problems:
        return problem("UnsupportedVcsAuth", "; ".join(p.message for p in auth_check.problems))
    adapter = adapter_for(provider_spec.get("provider"))
    auth = as_map(provider_spec.get("auth"))
    method = auth_check.method
    username = _text(auth.get("username")) or (adapter.username if method in ("token", "app") else "")

    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    secrets: list[str] = []
    app_token: AppTokenRequest | None = None
    run_name = str(as_map(run.get("metadata")).get("name"))

    def check_secret(name: str | None, key: str, what: str) -> VcsResolution | None:
        if not name:
            return problem("MissingVcsAuth", f"provider {vcs_ref} has no {what} secret")
        policy_problem = secret_policy(name, f"VCS {what} of provider {vcs_ref}")
        if policy_problem is not None:
            return problem(policy_problem.reason, policy_problem.message)
        if not secret_has_key(name, key):
            return problem(
                "VcsAuthUnavailable", f"secret {name!r} has no key {key!r} ({what} of provider {vcs_ref})"
            )
        secrets.append(name)
        return None

    token_names = ["VCS_TOKEN", *(["GITHUB_TOKEN", "GH_TOKEN"] if adapter.name == "github" else [])]
    if method == "token":
        token = as_map(auth.get("token"))
        name, key = (
            _ref_name(token.get("secretRef")),
            _text(as_map(token.get("secretRef")).get("key")) or "token",
        )
        if (failed := check_secret(name, key, "token")) is not None:
            return failed
        assert name is not None
        env.extend(_secret_env(n, name, key) for n in token_names)
    elif method == "app":
        app = as_map(auth.get("app"))
        name = _ref_name(app.get("privateKeySecretRef"))
        key = _text(as_map(app.get("privateKeySecretRef")).get("key")) or "privateKey"
        app_id, installation_id = (
            str(app.get("appId") or "").strip(),
            str(app.get("installationId") or "").strip(),
        )
        if not app_id or not installation_id:
            return problem(
                "MissingVcsAuth", f"provider {vcs_ref} needs auth.app.appId and auth.app.installationId"
            )
        if (failed := check_secret(name, key, "GitHub App private key")) is not None:
            return failed
        assert name is not None
        ttl = app.get("tokenTtlSeconds")
        app_token = AppTokenRequest(
            api_base_url=_text(provider_spec.get("apiBaseUrl"))
            or adapter.api_base_url
            or "https://api.github.com",
            app_id=app_id,
            installation_id=installation_id,
            private_key_secret=name,
            private_key_key=key,
            token_ttl_seconds=int(ttl) if isinstance(ttl, int) and ttl > 0 else None,
            secret_name=token_secret_name(run_name),
        )
        # The current token is the file, refreshed by the kubelet when the controller re-mints the Secret,
        # and git reads it through a credential helper. The reference's variables stay for agents written
        # against it, as secretKeyRefs (never literals): they hold the token of the container's start.
        volume = dns_label(run_name, "vcs-token", name_suffix)
        volumes.append(
            {
                "name": volume,
                "secret": {
                    "secretName": app_token.secret_name,
                    "items": [{"key": TOKEN_SECRET_KEY, "path": TOKEN_SECRET_KEY}],
                },
            }
        )
        mounts.append({"name": volume, "mountPath": TOKEN_DIR, "readOnly": True})
        env.append(_env("VCS_TOKEN_FILE", TOKEN_FILE))
        env.extend(_secret_env(n, app_token.secret_name, TOKEN_SECRET_KEY) for n in token_names)
        env.extend(
            (
                _env("GIT_CONFIG_COUNT", "1"),
                _env("GIT_CONFIG_KEY_0", "credential.helper"),
                _env("GIT_CONFIG_VALUE_0", GIT_CREDENTIAL_HELPER),
            )
        )
    elif method == "ssh":
        ssh = as_map(auth.get("ssh"))
        name = _ref_name(ssh.get("privateKeySecretRef"))
        key = _text(as_map(ssh.get("privateKeySecretRef")).get("key")) or "privateKey"
        if (failed := check_secret(name, key, "ssh private key")) is not None:
            return failed
        volume = dns_label(run_name, "vcs-ssh", name_suffix)
        volumes.append(
            {
                "name": volume,
                "secret": {"secretName": name, "items": [{"key": key, "path": key}], "defaultMode": 0o400},
            }
        )
        mounts.append({"name": volume, "mountPath": SSH_DIR, "readOnly": True})
        env.append(_env("VCS_SSH_KEY_PATH", f"{SSH_DIR}/{key}"))
        known = as_map(ssh.get("knownHostsConfigMapRef"))
        known_name, known_key = _ref_name(known), _text(known.get("key")) or "known_hosts"
        if known_name:
            if not configmap_has_key(known_name, known_key):
                return problem(
                    "VcsAuthUnavailable",
                    f"configmap {known_name!r} has no key {known_key!r} (ssh known hosts)",
                )
            kh_volume = dns_label(run_name, "vcs-known-hosts", name_suffix)
            volumes.append(
                {
                    "name": kh_volume,
                    "configMap": {"name": known_name, "items": [{"key": known_key, "path": known_key}]},
                }
            )
            mounts.append({"name": kh_volume, "mountPath": KNOWN_HOSTS_DIR, "readOnly": True})
            env.append(_env("VCS_SSH_KNOWN_HOSTS_PATH", f"{KNOWN_HOSTS_DIR}/{known_key}"))

    has_auth = method in ("token", "app", "ssh")
    write_enabled = mode == "read-write" and can_write and has_auth
    if desired == "read-write" and not write_enabled:
        if required:
            return problem("VcsAuthUnavailable", "vcs write access is unavailable")
        mode = "read-only" if can_read else "none"
    if mode == "none":
        return VcsResolution("skip", "VcsDisabled", f"provider {vcs_ref} allows no access", parameters=params)
    pull_request = as_map(defaults.get("pullRequest"))
    prs_enabled = (
        write_enabled and _bool(capabilities.get("pullRequests")) and pull_request.get("enabled") is not False
    )

    if not any(params.get(k) for k in BASE_KEYS) and base:
        params["base"] = base
    if not any(params.get(k) for k in HEAD_KEYS) and head:
        params["head"] = head

    author_name, author_email = (
        _text(defaults.get("commitAuthorName")),
        _text(defaults.get("commitAuthorEmail")),
    )
    api_base = _text(provider_spec.get("apiBaseUrl")) or (adapter.api_base_url or "")
    plain = [
        ("VCS_PROVIDER", adapter.name if provider_spec.get("provider") else ""),
        ("VCS_PROVIDER_NAME", vcs_ref),
        ("VCS_API_BASE_URL", api_base),
        ("VCS_CLONE_BASE_URL", _text(provider_spec.get("cloneBaseUrl"))),
        ("VCS_WEB_BASE_URL", _text(provider_spec.get("webBaseUrl"))),
        ("VCS_REPOSITORY", repository),
        ("VCS_BASE_BRANCH", base),
        ("VCS_HEAD_BRANCH", head),
        ("VCS_CLONE_PROTOCOL", _text(provider_spec.get("cloneProtocol"))),
        ("VCS_SSH_HOST", _text(provider_spec.get("sshHost"))),
        ("VCS_SSH_USER", _text(provider_spec.get("sshUser"))),
        ("VCS_USERNAME", username),
        ("GIT_ASKPASS_USERNAME", username),
        ("VCS_BRANCH_TEMPLATE", _text(defaults.get("branchTemplate"))),
        ("VCS_BRANCH_CONFLICT_SUFFIX_TEMPLATE", _text(defaults.get("branchConflictSuffixTemplate"))),
        ("VCS_COMMIT_AUTHOR_NAME", author_name),
        ("VCS_COMMIT_AUTHOR_EMAIL", author_email),
        ("GIT_AUTHOR_NAME", author_name),
        ("GIT_COMMITTER_NAME", author_name),
        ("GIT_AUTHOR_EMAIL", author_email),
        ("GIT_COMMITTER_EMAIL", author_email),
        ("VCS_PR_TITLE_TEMPLATE", _text(pull_request.get("titleTemplate"))),
        ("VCS_PR_BODY_TEMPLATE", _text(pull_request.get("bodyTemplate"))),
        (
            "VCS_PR_RATE_LIMITS",
            json.dumps(dict(settings.vcs.pr_rate_limits), sort_keys=True)
            if settings.vcs.pr_rate_limits
            else "",
        ),
        ("VCS_MODE", mode),
    ]
    flags = [
        ("VCS_PR_DRAFT", pull_request.get("draft") is True),
        ("VCS_WRITE_ENABLED", write_enabled),
        ("VCS_PULL_REQUESTS_ENABLED", prs_enabled),
    ]
    full_env = [_env(n, v) for n, v in plain if v]
    full_env += [_env(n, "true" if v else "false") for n, v in flags]
    full_env += env

    context: dict[str, Any] = {
        "provider": vcs_ref,
        "providerType": adapter.name,
        "repository": repository,
        "baseBranch": base or None,
        "headBranch": head or None,
        "mode": mode,
        "writeEnabled": write_enabled,
        "pullRequestsEnabled": prs_enabled,
        "authMethod": method,
        "username": username or None,
        "apiBaseUrl": api_base or None,
        "cloneBaseUrl": _text(provider_spec.get("cloneBaseUrl")) or None,
        "webBaseUrl": _text(provider_spec.get("webBaseUrl")) or None,
        "cloneProtocol": _text(provider_spec.get("cloneProtocol")) or None,
        "commitAuthor": {"name": author_name or None, "email": author_email or None},
        "pullRequest": {
            "draft": pull_request.get("draft") is True,
            "titleTemplate": _text(pull_request.get("titleTemplate")) or None,
            "bodyTemplate": _text(pull_request.get("bodyTemplate")) or None,
        },
    }
    status = {
        "provider": vcs_ref,
        "repository": repository,
        "baseBranch": base or None,
        "headBranch": head or None,
        "mode": mode,
        "writeEnabled": write_enabled,
        "pullRequestsEnabled": prs_enabled,
    }
    runtime = VcsRuntime(
        context=context,
        env=tuple(full_env),
        volumes=tuple(volumes),
        volume_mounts=tuple(mounts),
        secret_names=tuple(secrets),
    )
    return VcsResolution(
        "ok",
        None,
        "",
        runtime=runtime,
        status={k: v for k, v in status.items() if v is not None},
        warnings=list(auth_check.warnings),
        app_token=app_token,
        parameters=params,
    )
