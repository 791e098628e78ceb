"""VCS resolution for a run: policy, branches, mode, and credentials only by reference."""

from __future__ import annotations

from typing import Any

from jangar.scheduler.contract import build_metadata
from jangar.settings import Settings
from jangar.validation.problems import Problem
from jangar.vcs import check_auth, repository_denial, resolve_run_vcs
from tests.unit.scheduler.objects import agent, agent_run


def vcs_provider(**spec: Any) -> dict[str, Any]:
    base = {
        "provider": "github",
        "auth": {"method": "token", "token": {"secretRef": {"name": "gh-token"}, "type": "fine_grained"}},
        "defaults": {
            "baseBranch": "main",
            "branchTemplate": "codex/{{issueNumber}}",
            "commitAuthorName": "codex",
            "commitAuthorEmail": "codex@example.com",
        },
    }
    return {"metadata": {"name": "github"}, "spec": base | spec}


def resolve(run: dict[str, Any] | None = None, provider: Any = "default", **kw: Any) -> Any:
    run = run or agent_run(
        vcsRef={"name": "github"}, parameters={"repository": "acme/demo", "issueNumber": "7"}
    )
    params = run["spec"].get("parameters") or {}
    args: dict[str, Any] = {
        "run": run,
        "agent": agent(),
        "implementation": {"text": "x"},
        "parameters": params,
        "metadata": build_metadata(params, {"text": "x"}),
        "provider": vcs_provider() if provider == "default" else provider,
        "settings": Settings(),
    }
    args.update(kw)
    return resolve_run_vcs(**args)


def env_of(result: Any) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in result.runtime.env}


def test_token_auth_env_uses_secret_refs_only() -> None:
    result = resolve()
    assert result.outcome == "ok"
    env = env_of(result)
    ref = {"secretKeyRef": {"name": "gh-token", "key": "token"}}
    assert env["VCS_TOKEN"] == env["GITHUB_TOKEN"] == env["GH_TOKEN"] == ref
    assert all(
        "value" not in e for e in result.runtime.env if e["name"] in ("VCS_TOKEN", "GITHUB_TOKEN", "GH_TOKEN")
    )
    assert env["VCS_REPOSITORY"] == "acme/demo"
    assert env["VCS_BASE_BRANCH"] == "main"
    assert env["VCS_HEAD_BRANCH"] == "codex/7"
    assert env["VCS_API_BASE_URL"] == "https://api.github.com"
    assert env["VCS_USERNAME"] == env["GIT_ASKPASS_USERNAME"] == "x-access-token"
    assert env["GIT_AUTHOR_EMAIL"] == "codex@example.com"
    assert (env["VCS_WRITE_ENABLED"], env["VCS_PULL_REQUESTS_ENABLED"], env["VCS_PR_DRAFT"]) == (
        "true",
        "true",
        "false",
    )
    assert env["VCS_MODE"] == "read-write"
    assert result.status == {
        "provider": "github",
        "repository": "acme/demo",
        "baseBranch": "main",
        "headBranch": "codex/7",
        "mode": "read-write",
        "writeEnabled": True,
        "pullRequestsEnabled": True,
    }
    assert result.parameters["base"] == "main" and result.parameters["head"] == "codex/7"
    assert result.runtime.secret_names == ("gh-token",)


def test_existing_branch_parameters_are_not_overridden() -> None:
    run = agent_run(
        vcsRef={"name": "github"}, parameters={"repository": "a/b", "baseRef": "dev", "branch": "mine"}
    )
    result = resolve(run)
    assert "base" not in result.parameters and "head" not in result.parameters
    assert result.status["baseBranch"] == "dev"


def test_no_ref_is_a_silent_skip_unless_required() -> None:
    run = agent_run(parameters={"repository": "a/b"})
    result = resolve(run)
    assert (result.outcome, result.reason) == ("skip", None)
    run["spec"]["vcsPolicy"] = {"required": True}
    assert (resolve(run).outcome, resolve(run).reason) == ("fail", "MissingVcsProvider")


def test_missing_provider_and_repository() -> None:
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "a/b"}, vcsPolicy={"required": True})
    result = resolve(run, provider=None)
    assert (result.outcome, result.reason) == ("fail", "MissingVcsProvider")
    norepo = agent_run(vcsRef={"name": "github"}, vcsPolicy={"required": True})
    assert (resolve(norepo).outcome, resolve(norepo).reason) == ("fail", "MissingRepository")
    norepo["spec"]["vcsPolicy"] = {}
    assert (resolve(norepo).outcome, resolve(norepo).reason) == ("skip", "MissingRepository")


def test_deny_wins_and_blocks_non_none_modes_even_when_not_required() -> None:
    spec = {"deny": ["acme/*"], "allow": ["acme/demo"]}
    assert repository_denial(spec | {}, "acme/demo") is None  # no repositoryPolicy key: allowed
    assert (
        repository_denial({"repositoryPolicy": spec}, "acme/demo")
        == "repository acme/demo is denied by policy"
    )
    assert "allow list" in (repository_denial({"repositoryPolicy": {"allow": ["x/*"]}}, "acme/demo") or "")
    result = resolve(provider=vcs_provider(repositoryPolicy=spec))
    assert (result.outcome, result.reason) == ("fail", "VcsPolicyDenied")
    run = agent_run(
        vcsRef={"name": "github"}, parameters={"repository": "acme/demo"}, vcsPolicy={"mode": "none"}
    )
    assert (resolve(run, provider=vcs_provider(repositoryPolicy=spec)).outcome) == "skip"


def test_mode_none_skips() -> None:
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "a/b"}, vcsPolicy={"mode": "none"})
    assert (resolve(run).outcome, resolve(run).reason) == ("skip", "VcsDisabled")


def test_capabilities_downgrade_or_fail_when_required() -> None:
    provider = vcs_provider(capabilities={"write": False})
    result = resolve(provider=provider)
    assert result.outcome == "ok" and result.status["mode"] == "read-only"
    assert env_of(result)["VCS_WRITE_ENABLED"] == "false"
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "a/b"}, vcsPolicy={"required": True})
    assert resolve(run, provider=provider).reason == "VcsCapabilityDenied"


def test_write_needs_auth() -> None:
    provider = vcs_provider(auth={"method": "none"})
    assert resolve(provider=provider).status["mode"] == "read-only"
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "a/b"}, vcsPolicy={"required": True})
    result = resolve(run, provider=provider)
    assert (result.outcome, result.reason, result.message) == (
        "fail",
        "VcsAuthUnavailable",
        "vcs write access is unavailable",
    )


def test_secret_policy_and_missing_key() -> None:
    def deny(secret: str, purpose: str) -> Problem | None:
        return Problem("SecretNotBound", f"{secret} for {purpose}")

    result = resolve(secret_policy=deny)
    assert (result.outcome, result.reason) == ("skip", "SecretNotBound")
    result = resolve(secret_has_key=lambda name, key: False)
    assert (result.outcome, result.reason) == ("skip", "VcsAuthUnavailable")
    provider = vcs_provider(auth={"method": "token", "token": {}})
    assert resolve(provider=provider).reason == "MissingVcsAuth"


def test_ssh_volumes() -> None:
    provider = vcs_provider(
        auth={
            "method": "ssh",
            "ssh": {
                "privateKeySecretRef": {"name": "deploy-key"},
                "knownHostsConfigMapRef": {"name": "hosts"},
            },
        }
    )
    result = resolve(provider=provider)
    env = env_of(result)
    assert env["VCS_SSH_KEY_PATH"] == "/var/run/secrets/agents/vcs/ssh/privateKey"
    assert env["VCS_SSH_KNOWN_HOSTS_PATH"] == "/var/run/secrets/agents/vcs/known-hosts/known_hosts"
    assert "VCS_USERNAME" not in env
    volumes = {v["name"]: v for v in result.runtime.volumes}
    assert volumes["run-1-vcs-ssh"]["secret"]["secretName"] == "deploy-key"
    assert volumes["run-1-vcs-known-hosts"]["configMap"]["name"] == "hosts"
    assert all(m["readOnly"] for m in result.runtime.volume_mounts)


def test_github_app_requests_a_token_secret() -> None:
    provider = vcs_provider(
        apiBaseUrl="https://ghe.example.com/api/v3",
        auth={
            "method": "app",
            "app": {
                "appId": 12,
                "installationId": "34",
                "privateKeySecretRef": {"name": "app-key"},
                "tokenTtlSeconds": 900,
            },
        },
    )
    result = resolve(provider=provider)
    request = result.app_token
    assert request is not None
    assert (request.api_base_url, request.app_id, request.installation_id) == (
        "https://ghe.example.com/api/v3",
        "12",
        "34",
    )
    assert (request.private_key_secret, request.private_key_key, request.token_ttl_seconds) == (
        "app-key",
        "privateKey",
        900,
    )
    assert request.secret_name == "run-1-vcs-token"
    env = env_of(result)
    # issue 12: the token is refreshed in the Secret; the pod gets the file (kept current by the kubelet)
    # and a git credential helper reading it; the reference's variables reference the Secret, never a literal.
    token_ref = {"secretKeyRef": {"name": "run-1-vcs-token", "key": "token"}}
    assert env["VCS_TOKEN"] == env["GITHUB_TOKEN"] == env["GH_TOKEN"] == token_ref
    assert env["VCS_TOKEN_FILE"] == "/var/run/secrets/agents/vcs/token/token"
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"]) == ("1", "credential.helper")
    assert "$VCS_TOKEN_FILE" in env["GIT_CONFIG_VALUE_0"]
    volume = next(
        v for v in result.runtime.volumes if v.get("secret", {}).get("secretName") == "run-1-vcs-token"
    )
    mount = next(m for m in result.runtime.volume_mounts if m["name"] == volume["name"])
    assert mount["mountPath"] == "/var/run/secrets/agents/vcs/token" and mount["readOnly"]
    assert "subPath" not in mount  # a subPath mount is never updated by the kubelet
    missing = vcs_provider(auth={"method": "app", "app": {"privateKeySecretRef": {"name": "k"}}})
    assert resolve(provider=missing).reason == "MissingVcsAuth"


def test_branch_conflict_suffix_against_active_runs() -> None:
    provider = vcs_provider(
        defaults={
            "branchTemplate": "codex/{{issueNumber}}",
            "branchConflictSuffixTemplate": "-{{agentRun.name}}",
        }
    )
    other = agent_run("other", uid="u2", parameters={"repository": "ACME/demo"})
    other["status"] = {"phase": "Running", "vcs": {"repository": "acme/demo", "headBranch": "codex/7"}}
    finished = agent_run("done", uid="u3", parameters={"repository": "acme/demo", "head": "codex/7"})
    finished["status"] = {"phase": "Succeeded"}
    assert resolve(provider=provider, active_runs=[finished]).status["headBranch"] == "codex/7"
    assert resolve(provider=provider, active_runs=[other, finished]).status["headBranch"] == "codex/7-run-1"


def test_disabled_providers_skip() -> None:
    settings = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_VCS_PROVIDERS_ENABLED": "false"})
    result = resolve(settings=settings)
    assert (result.outcome, result.reason) == ("skip", "VcsProvidersDisabled")


def test_auth_adapters_and_deprecations() -> None:
    settings = Settings()
    pat = check_auth(
        {
            "provider": "github",
            "auth": {"token": {"secretRef": {"name": "s"}, "type": "personal-access-token"}},
        },
        settings,
    )
    assert (pat.method, pat.token_type) == ("token", "pat")
    assert [w.reason for w in pat.warnings] == ["DeprecatedAuth"]
    assert pat.warnings[0].message == "auth.token.type=pat is deprecated for github providers"
    cleared = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES": '{"github": []}'})
    assert (
        check_auth(
            {"provider": "github", "auth": {"method": "token", "token": {"type": "pat"}}}, cleared
        ).warnings
        == []
    )
    gitlab_app = check_auth({"provider": "gitlab", "auth": {"method": "app"}}, settings)
    assert [p.reason for p in gitlab_app.problems] == ["UnsupportedAuth"]
    bitbucket_pat = check_auth(
        {"provider": "bitbucket", "auth": {"method": "token", "token": {"type": "pat"}}}, settings
    )
    assert [p.reason for p in bitbucket_pat.problems] == ["UnsupportedAuth"]
    default_type = check_auth({"provider": "gitea", "auth": {"method": "token"}}, settings)
    assert default_type.token_type == "api_token"
    # Deprecated token types reach runs as warnings.
    provider = vcs_provider(auth={"method": "token", "token": {"secretRef": {"name": "gh"}, "type": "pat"}})
    assert [w.reason for w in resolve(provider=provider).warnings] == ["DeprecatedAuth"]


def test_the_git_credential_helper_reads_the_current_token_file(tmp_path: Any) -> None:
    """git asks the helper at every fetch/push: a token refreshed in the file is used at once."""
    import os
    import subprocess

    from jangar.vcs.resolve import GIT_CREDENTIAL_HELPER

    token = tmp_path / "token"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "VCS_TOKEN_FILE": str(token),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": GIT_CREDENTIAL_HELPER,
        "GIT_TERMINAL_PROMPT": "0",
    }

    def fill() -> dict[str, str]:
        out = subprocess.run(
            ["git", "credential", "fill"],
            input="protocol=https\nhost=github.com\n\n",
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    token.write_text("ghs_first")
    assert fill()["password"] == "ghs_first"
    assert fill()["username"] == "x-access-token"
    token.write_text("ghs_second")
    assert fill()["password"] == "ghs_second"


def _head(run: dict[str, Any], provider: dict[str, Any]) -> Any:
    return resolve(run, provider).status.get("headBranch")


def test_a_template_rendering_an_empty_segment_falls_back_to_the_run_name() -> None:
    """0.9.29: `codex/{{issueNumber}}` for a run without an issue gave `codex/` (git refuses it)."""
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "acme/demo"})
    name = run["metadata"]["name"]
    assert _head(run, vcs_provider()) == f"codex/{name}"
    nested = vcs_provider()
    nested["spec"]["defaults"]["branchTemplate"] = "team/{{issueNumber}}/work"
    assert _head(run, nested) == f"codex/{name}"


def test_a_writing_run_without_template_or_head_gets_the_fallback_branch() -> None:
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "acme/demo"})
    bare = vcs_provider()
    del bare["spec"]["defaults"]["branchTemplate"]
    assert _head(run, bare) == f"codex/{run['metadata']['name']}"
    run["spec"]["vcsPolicy"] = {"mode": "read-only"}
    assert resolve(run, bare).status.get("headBranch") in (None, "")


def test_a_well_formed_rendered_branch_is_kept() -> None:
    run = agent_run(vcsRef={"name": "github"}, parameters={"repository": "acme/demo", "issueNumber": "9"})
    assert _head(run, vcs_provider()) == "codex/9"
