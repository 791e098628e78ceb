"""Settings parsing: the reference's defaults, one truthiness rule, and errors that name the variable."""

from __future__ import annotations

import pytest

from jangar.admission import AdmissionLimits
from jangar.settings import DEFAULT_NAMESPACES, Settings, SettingsError


def test_defaults_match_reference() -> None:
    s = Settings.from_env({})
    assert s.agents_controller.enabled is True
    assert s.agents_controller.namespaces == DEFAULT_NAMESPACES == ("agents",)
    # One default namespace list: the primitives reconciler no longer defaults to `jangar`.
    assert s.primitives_reconciler.namespaces == ("agents",)
    assert s.control_plane_cache.enabled is False
    assert (s.concurrency.per_namespace, s.concurrency.per_agent, s.concurrency.cluster) == (10, 5, 100)
    assert (s.queue.per_namespace, s.queue.per_repo, s.queue.cluster) == (200, 50, 1000)
    rate = s.rate
    assert (rate.window_seconds, rate.per_namespace, rate.per_repo, rate.cluster) == (60, 120, 30, 600)
    assert s.agentrun_retention_seconds == 2_592_000
    assert s.runner.job_ttl_seconds == 600
    assert s.runner.log_retention_seconds == 604_800
    assert s.vcs.deprecated_token_types == {"github": ("pat",)}
    assert s.vcs.providers_enabled is True
    assert s.auth_secret is None
    assert s.database.migrations == "auto"
    assert s.grpc.enabled is False and s.grpc.bind_address == "127.0.0.1:50051"
    assert s.leader_election.lease_duration_seconds == 15.0


def test_chart_default_env_parses() -> None:
    """The env the reference chart renders with all defaults (chart §3.2), with Helm floats."""
    env = {
        "JANGAR_MIGRATIONS": "auto",
        "NODE_ENV": "production",
        "PORT": "8080",
        "JANGAR_IMAGE": "ghcr.io/proompteng/jangar:latest",
        "JANGAR_AGENT_RUNNER_IMAGE": "registry.ide-newton.ts.net/lab/codex-universal:latest",
        "JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": "600",
        "JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS": "604800",
        "JANGAR_SERVICE_ACCOUNT_NAME": "agents-sa",
        "JANGAR_POD_NAMESPACE": "agents",
        "JANGAR_PROMETHEUS_METRICS_ENABLED": "true",
        "JANGAR_RBAC_CLUSTER_SCOPED": "false",
        "JANGAR_PRIMITIVES_NAMESPACES": "agents",
        "JANGAR_AGENTS_CONTROLLER_ENABLED": "1",
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents",
        "JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS": "2.592e+06",
        "JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES": '{"github":["pat"]}',
        "JANGAR_GRPC_ENABLED": "true",
        "JANGAR_GRPC_HOST": "0.0.0.0",
        "JANGAR_GRPC_PORT": "50051",
    }
    s = Settings.from_env(env)
    assert s.agentrun_retention_seconds == 2_592_000
    assert s.runner.default_image == "registry.ide-newton.ts.net/lab/codex-universal:latest"
    assert s.grpc.bind_address == "0.0.0.0:50051"
    assert s.leader_election.namespace == "agents"


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "y", "on", " On "])
def test_truthy_values(value: str) -> None:
    assert Settings.from_env({"JANGAR_GRPC_ENABLED": value}).grpc.enabled is True


@pytest.mark.parametrize("value", ["0", "false", "no", "n", "off"])
def test_falsy_values(value: str) -> None:
    assert Settings.from_env({"JANGAR_AGENTS_CONTROLLER_ENABLED": value}).agents_controller.enabled is False


def test_invalid_boolean_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_ENABLED"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_ENABLED": "maybe"})


@pytest.mark.parametrize("value", ["ten", "-1", "1.5", "nan"])
def test_invalid_integer_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT": value})
    assert info.value.name == "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT"
    assert "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT" in str(info.value)


def test_zero_turns_a_limit_off_instead_of_meaning_the_default() -> None:
    s = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "0"})
    assert s.queue.per_namespace == 0


def test_rate_window_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="RATE_WINDOW_SECONDS"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_RATE_WINDOW_SECONDS": "0"})


def test_wildcard_namespace_requires_cluster_scope() -> None:
    with pytest.raises(SettingsError, match=r"rbac\.clusterScoped=true") as info:
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "*"})
    assert info.value.name == "JANGAR_AGENTS_CONTROLLER_NAMESPACES"
    s = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "*", "JANGAR_RBAC_CLUSTER_SCOPED": "true"})
    assert s.agents_controller.all_namespaces
    # The wildcard is inherited by the lists that fall back to the agents-controller list.
    assert s.primitives_reconciler.namespaces == ("*",)


def test_wildcard_cannot_be_mixed() -> None:
    with pytest.raises(SettingsError, match="cannot be combined"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "*,a", "JANGAR_RBAC_CLUSTER_SCOPED": "1"})


def test_namespace_list_is_trimmed_deduplicated_and_validated() -> None:
    s = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": " a, b,,a "})
    assert s.agents_controller.namespaces == ("a", "b")
    assert s.orchestration_controller.namespaces == ("a", "b")
    with pytest.raises(SettingsError, match="Bad_NS"):
        Settings.from_env({"JANGAR_SUPPORTING_CONTROLLER_NAMESPACES": "Bad_NS"})


def test_policy_lists_accept_json_or_csv() -> None:
    s = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_IMAGES_DENIED": '["evil/*", "bad:latest"]',
            "JANGAR_AGENTS_CONTROLLER_BLOCKED_SECRETS": "root-creds, admin",
        }
    )
    assert s.admission_policy.images_denied == ("evil/*", "bad:latest")
    assert s.admission_policy.blocked_secrets == ("root-creds", "admin")
    with pytest.raises(SettingsError, match="LABELS_REQUIRED"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_LABELS_REQUIRED": "[1, 2]"})


def test_repo_overrides_are_lowercased_and_validated() -> None:
    s = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_ENABLED": "true",
            "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_DEFAULT": "2",
            "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_OVERRIDES": '{" Acme/Demo ": 1}',
        }
    )
    assert AdmissionLimits.from_settings(s).repo_limit("ACME/demo") == 1
    assert AdmissionLimits.from_settings(s).repo_limit("other/repo") == 2
    with pytest.raises(SettingsError, match="OVERRIDES"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_OVERRIDES": '{"a": -1}'})


def test_deprecated_token_types_replace_and_validate() -> None:
    s = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES": '{"github": []}'})
    assert s.vcs.deprecated_token_types == {"github": ()}
    with pytest.raises(SettingsError, match="unknown token type"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES": '{"github": ["magic"]}'})


def test_default_workload_json() -> None:
    s = Settings.from_env(
        {
            "JANGAR_AGENT_RUNNER_NODE_SELECTOR": '{"pool": "agents"}',
            "JANGAR_AGENT_RUNNER_TOLERATIONS": '[{"key": "dedicated", "operator": "Exists"}]',
            "JANGAR_AGENT_RUNNER_IMAGE_PULL_SECRETS": '["regcred", {"name": "other"}]',
            "JANGAR_AGENT_RUNNER_PRIORITY_CLASS": "low",
            "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "runner",
        }
    )
    wl = s.runner.default_workload
    assert wl.node_selector == {"pool": "agents"}
    assert wl.tolerations == ({"key": "dedicated", "operator": "Exists"},)
    assert wl.image_pull_secrets == ("regcred", "other")
    assert wl.priority_class_name == "low"
    assert wl.service_account_name == "runner"
    with pytest.raises(SettingsError, match="JANGAR_AGENT_RUNNER_AFFINITY"):
        Settings.from_env({"JANGAR_AGENT_RUNNER_AFFINITY": "[]"})
    with pytest.raises(SettingsError, match="JANGAR_AGENT_RUNNER_TOLERATIONS"):
        Settings.from_env({"JANGAR_AGENT_RUNNER_TOLERATIONS": "{not json"})


def test_auth_secret() -> None:
    s = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "codex-auth"})
    assert s.auth_secret is not None
    assert (s.auth_secret.name, s.auth_secret.key, s.auth_secret.mount_path) == (
        "codex-auth",
        "auth.json",
        "/root/.codex",
    )
    with pytest.raises(SettingsError, match="MOUNT_PATH"):
        Settings.from_env(
            {
                "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "x",
                "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH": "relative",
            }
        )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "auto"),
        ({"JANGAR_MIGRATIONS": "skip"}, "skip"),
        ({"JANGAR_MIGRATIONS": "off"}, "skip"),
        ({"JANGAR_MIGRATIONS": "auto", "JANGAR_SKIP_MIGRATIONS": "1"}, "skip"),
    ],
)
def test_migrations(env: dict[str, str], expected: str) -> None:
    assert Settings.from_env(env).database.migrations == expected


def test_migrations_rejects_unknown() -> None:
    with pytest.raises(SettingsError, match="JANGAR_MIGRATIONS"):
        Settings.from_env({"JANGAR_MIGRATIONS": "sometimes"})


def test_leader_election() -> None:
    s = Settings.from_env(
        {
            "JANGAR_LEADER_ELECTION_ENABLED": "false",
            "JANGAR_LEADER_ELECTION_LEASE_NAME": "jangar-leader",
            "JANGAR_LEADER_ELECTION_NAMESPACE": "ops",
            "JANGAR_LEADER_ELECTION_LEASE_DURATION_SECONDS": "30s",
            "JANGAR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "20",
            "JANGAR_LEADER_ELECTION_RETRY_PERIOD_SECONDS": "5",
        }
    )
    le = s.leader_election
    assert (le.enabled, le.lease_name, le.namespace) == (False, "jangar-leader", "ops")
    assert (le.lease_duration_seconds, le.renew_deadline_seconds, le.retry_period_seconds) == (30, 20, 5)
    with pytest.raises(SettingsError, match="RENEW_DEADLINE"):
        Settings.from_env({"JANGAR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "15"})


def test_database_url() -> None:
    s = Settings.from_env({"DATABASE_URL": "postgresql://u:p@db/jangar"})
    assert s.database.url == "postgresql://u:p@db/jangar"


def test_process_settings_the_chart_emits() -> None:
    s = Settings.from_env(
        {
            "JANGAR_POD_NAME": "jangar-0",
            "JANGAR_HTTP_PORT": "9000",
            "JANGAR_LOG_LEVEL": "WARN",
            "JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY": "ifnotpresent",
        }
    )
    assert (s.pod_name, s.http_port, s.log_level) == ("jangar-0", 9000, "warning")
    assert s.runner.image_pull_policy == "IfNotPresent"
    with pytest.raises(SettingsError, match="JANGAR_LOG_LEVEL"):
        Settings.from_env({"JANGAR_LOG_LEVEL": "loud"})
    with pytest.raises(SettingsError, match="IMAGE_PULL_POLICY"):
        Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY": "Sometimes"})


def test_native_workflows_and_agent_comms() -> None:
    s = Settings.from_env({})
    assert s.native_workflows.rerun_orchestration is None
    assert s.native_workflows.rerun_orchestration_namespace == "agents"
    assert s.agent_comms.enabled is False
    s = Settings.from_env(
        {
            "JANGAR_CODEX_RERUN_ORCHESTRATION": "rerun",
            "JANGAR_CODEX_WORKFLOW_NAMESPACE": "workflows",
            "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE": "improve",
            "JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED": "false",
            "JANGAR_AGENT_COMMS_SUBJECTS": "a.b, c.d",
        }
    )
    assert s.native_workflows.rerun_orchestration == "rerun"
    assert s.native_workflows.rerun_orchestration_namespace == "workflows"
    assert s.native_workflows.system_improvement_orchestration_namespace == "improve"
    assert (s.agent_comms.enabled, s.agent_comms.subjects) == (True, ("a.b", "c.d"))
