"""Run validation with a 0.9.29 AgentProvider: its ServiceAccount and its secretEnv Secrets go through the
same policy as a run's own; its image satisfies the image requirement."""

from __future__ import annotations

from typing import Any

from jangar.settings import Settings
from jangar.validation import resolve_run, validate_agent_run
from tests.unit.scheduler.objects import agent_run, provider
from tests.unit.validation.test_agentrun import FakeLookup, kinded, reasons, world


def with_provider(agent_spec: dict[str, Any] | None = None, **spec: Any) -> FakeLookup:
    return world(kinded("AgentProvider", provider(**spec)), agent_spec=agent_spec)


def test_the_provider_service_account_is_subject_to_the_agent_allow_list() -> None:
    allowed = {"security": {"allowedServiceAccounts": ["codex-runner"]}}
    assert reasons(agent_run(), with_provider(allowed, workload={"serviceAccountName": "codex-runner"})) == []
    assert reasons(agent_run(), with_provider(allowed, workload={"serviceAccountName": "admin"})) == [
        "ServiceAccountNotAllowed"
    ]
    # the run's own choice still wins over the provider's
    run = agent_run(config={"serviceAccount": "codex-runner"})
    assert reasons(run, with_provider(allowed, workload={"serviceAccountName": "admin"})) == []


def test_secret_env_secrets_follow_the_agent_allow_list_without_a_binding() -> None:
    secret_env = [{"name": "OPENAI_API_KEY", "secretKeyRef": {"name": "openai"}}]
    assert reasons(agent_run(), with_provider(secretEnv=secret_env)) == []
    restricted = {"security": {"allowedSecrets": ["other"]}}
    assert reasons(agent_run(), with_provider(restricted, secretEnv=secret_env)) == ["SecretNotAllowed"]
    blocked = {"JANGAR_AGENTS_CONTROLLER_BLOCKED_SECRETS": "openai"}
    assert reasons(agent_run(), with_provider(secretEnv=secret_env), blocked) == ["SecretBlocked"]


def test_a_provider_image_is_enough_without_a_controller_default() -> None:
    run = agent_run()
    no_default = Settings.from_env({})
    problems = validate_agent_run(run, resolve_run(run, world()), no_default)
    assert [p.reason for p in problems] == ["MissingWorkloadImage"]
    lookup = with_provider(workload={"image": "ghcr.io/acme/codex:1"})
    assert validate_agent_run(run, resolve_run(run, lookup), no_default) == []


def test_a_system_prompt_secret_follows_the_agent_allow_list_and_the_block_list() -> None:
    """An Agent's `systemPromptRef` Secret is mounted into every runner pod of the Agent: a Secret the
    controller blocks (its own auth Secret, say) must not reach the pod through it."""
    prompt = {"defaults": {"systemPromptRef": {"kind": "Secret", "name": "prompt-secret"}}}
    assert reasons(agent_run(), with_provider(prompt)) == []
    restricted = {**prompt, "security": {"allowedSecrets": ["other"]}}
    assert reasons(agent_run(), with_provider(restricted)) == ["SecretNotAllowed"]
    blocked = {"JANGAR_AGENTS_CONTROLLER_BLOCKED_SECRETS": "prompt-secret"}
    assert reasons(agent_run(), with_provider(prompt), blocked) == ["SecretBlocked"]
    configmap = {"defaults": {"systemPromptRef": {"kind": "ConfigMap", "name": "prompt-secret"}}}
    assert reasons(agent_run(), with_provider(configmap), blocked) == []  # a ConfigMap is no Secret
