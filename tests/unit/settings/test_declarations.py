"""The single-declaration mechanism: one default per setting, one parser rule per kind, errors that name
the variable, the listing, and the controller runtime knobs (`settings.tuning`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from jangar import settings as settings_mod
from jangar.settings import ControllerTuning, Settings, SettingsError, describe, env_table_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "settings.md"

#: Every variable the settings parser read before the declarations were unified; none may disappear.
CONTRACT_VARS = {
    "DATABASE_URL",
    "PGCONNECT_TIMEOUT_MS",
    "PGQUERY_TIMEOUT_MS",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS",
    "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_KEY",
    "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH",
    "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME",
    "JANGAR_AGENTS_CONTROLLER_BLOCKED_SECRETS",
    "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT",
    "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_CLUSTER",
    "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE",
    "JANGAR_AGENTS_CONTROLLER_ENABLED",
    "JANGAR_AGENTS_CONTROLLER_IMAGES_ALLOWED",
    "JANGAR_AGENTS_CONTROLLER_IMAGES_DENIED",
    "JANGAR_AGENTS_CONTROLLER_LABELS_ALLOWED",
    "JANGAR_AGENTS_CONTROLLER_LABELS_DENIED",
    "JANGAR_AGENTS_CONTROLLER_LABELS_REQUIRED",
    "JANGAR_AGENTS_CONTROLLER_NAMESPACES",
    "JANGAR_AGENTS_CONTROLLER_QUEUE_CLUSTER",
    "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE",
    "JANGAR_AGENTS_CONTROLLER_QUEUE_REPO",
    "JANGAR_AGENTS_CONTROLLER_RATE_CLUSTER",
    "JANGAR_AGENTS_CONTROLLER_RATE_NAMESPACE",
    "JANGAR_AGENTS_CONTROLLER_RATE_REPO",
    "JANGAR_AGENTS_CONTROLLER_RATE_WINDOW_SECONDS",
    "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_DEFAULT",
    "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_ENABLED",
    "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_OVERRIDES",
    "JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES",
    "JANGAR_AGENTS_CONTROLLER_VCS_PROVIDERS_ENABLED",
    "JANGAR_AGENTS_CONTROLLER_VCS_PR_RATE_LIMITS",
    "JANGAR_AGENTS_CONTROLLER_WEBHOOK_QUEUE_SIZE",
    "JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_BASE_DELAY_SECONDS",
    "JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_MAX_ATTEMPTS",
    "JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_MAX_DELAY_SECONDS",
    "JANGAR_AGENT_COMMS_SUBJECTS",
    "JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED",
    "JANGAR_AGENT_IMAGE",
    "JANGAR_AGENT_RUNNER_AFFINITY",
    "JANGAR_AGENT_RUNNER_IMAGE",
    "JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY",
    "JANGAR_AGENT_RUNNER_IMAGE_PULL_SECRETS",
    "JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS",
    "JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS",
    "JANGAR_AGENT_RUNNER_NODE_SELECTOR",
    "JANGAR_AGENT_RUNNER_POD_SECURITY_CONTEXT",
    "JANGAR_AGENT_RUNNER_PRIORITY_CLASS",
    "JANGAR_AGENT_RUNNER_SCHEDULER_NAME",
    "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT",
    "JANGAR_AGENT_RUNNER_TOLERATIONS",
    "JANGAR_AGENT_RUNNER_TOPOLOGY_SPREAD_CONSTRAINTS",
    "JANGAR_BUILD_SHA",
    "JANGAR_BUILD_TIME",
    "JANGAR_CODEX_RERUN_ORCHESTRATION",
    "JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE",
    "JANGAR_CODEX_WORKFLOW_NAMESPACE",
    "JANGAR_CONTROL_PLANE_CACHE_CLUSTER",
    "JANGAR_CONTROL_PLANE_CACHE_ENABLED",
    "JANGAR_CONTROL_PLANE_CACHE_NAMESPACES",
    "JANGAR_DB_CA_CERT",
    "JANGAR_GRPC_ADDRESS",
    "JANGAR_GRPC_ENABLED",
    "JANGAR_GRPC_HOST",
    "JANGAR_GRPC_PORT",
    "JANGAR_GRPC_PROTO_PATH",
    "JANGAR_GRPC_TOKEN",
    "JANGAR_HTTP_PORT",
    "JANGAR_IMAGE",
    "JANGAR_LEADER_ELECTION_ENABLED",
    "JANGAR_LEADER_ELECTION_LEASE_DURATION_SECONDS",
    "JANGAR_LEADER_ELECTION_LEASE_NAME",
    "JANGAR_LEADER_ELECTION_NAMESPACE",
    "JANGAR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS",
    "JANGAR_LEADER_ELECTION_RETRY_PERIOD_SECONDS",
    "JANGAR_LOG_LEVEL",
    "JANGAR_MIGRATIONS",
    "JANGAR_NAMESPACE",
    "JANGAR_ORCHESTRATION_CONTROLLER_ENABLED",
    "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES",
    "JANGAR_POD_NAME",
    "JANGAR_POD_NAMESPACE",
    "JANGAR_PRIMITIVES_NAMESPACES",
    "JANGAR_PRIMITIVES_RECONCILER",
    "JANGAR_PROMETHEUS_METRICS_ENABLED",
    "JANGAR_PROMETHEUS_METRICS_PATH",
    "JANGAR_RBAC_CLUSTER_SCOPED",
    "JANGAR_SCHEDULE_RUNNER_IMAGE",
    "JANGAR_SCHEDULE_SERVICE_ACCOUNT",
    "JANGAR_SERVICE_ACCOUNT_NAME",
    "JANGAR_SKIP_MIGRATIONS",
    "JANGAR_SUPPORTING_CONTROLLER_ENABLED",
    "JANGAR_SUPPORTING_CONTROLLER_NAMESPACES",
    "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION",
    "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE",
    "JANGAR_VERSION",
}

TUNING_VARS = {
    "JANGAR_AGENTRUN_WORKERS": "agentrun_workers",
    "JANGAR_SUPPORTING_CONTROLLER_WORKERS": "supporting_workers",
    "JANGAR_RECONCILE_TIMEOUT_SECONDS": "reconcile_timeout_seconds",
    "JANGAR_REFERENCE_GRACE_SECONDS": "reference_grace_seconds",
    "JANGAR_IMAGE_PULL_GRACE_SECONDS": "image_pull_grace_seconds",
    "JANGAR_SCHEDULING_GRACE_SECONDS": "scheduling_grace_seconds",
    "JANGAR_MISSING_JOB_GRACE_SECONDS": "missing_job_grace_seconds",
}

#: jangar's own variables beyond the reference's and the tuning knobs, one set per feature
WORKSPACE_ARTIFACT_VARS = {
    "JANGAR_ARTIFACTS_MAX_PER_RUN",
    "JANGAR_ARTIFACTS_DEFAULT_TTL_DAYS",
    "JANGAR_AGENTRUN_ARTIFACTS_STRICT",
}
#: issue 12: the runner ServiceAccount jangar creates in a run's namespace
RUNNER_SA_VARS = {
    "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE",
    "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_ANNOTATIONS",
    "JANGAR_AGENT_RUNNER_CLUSTER_ROLE",
}
# issue 12: how the surfaces authenticate callers (docs/security.md)
AUTH_VARS = {
    "JANGAR_AUTH_TOKEN_REVIEW",
    "JANGAR_AUTH_CACHE_TTL_SECONDS",
    "JANGAR_AUTH_DENIED_CACHE_TTL_SECONDS",
}
RECORDS_VARS = {"JANGAR_RECORDS_BUFFER_MAX"}  # issue 12: the bounded run-record buffer
# issue 13 item 3: the retention sweep and runtime-debris cleanup (docs/retention.md)
SWEEP_VARS = {
    "JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE",
    "JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS",
    "JANGAR_RETENTION_SWEEP_INTERVAL_SECONDS",
    "JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE",
    "JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS",
    "JANGAR_RUNTIME_DEBRIS_CLEANUP_MAX_DELETES_PER_NAMESPACE",
}
#: issue 13 item 3 (0.9.29 drift rows 10, 22): provider health cool-down, default runner resources
PROVIDER_VARS = {"JANGAR_PROVIDER_HEALTH_COOLDOWN_SECONDS", "JANGAR_AGENT_RUNNER_RESOURCES"}
# issue 13 item 3: the 0.9.29 system-prompt policy and spec immutability
SPEC_POLICY_VARS = {"JANGAR_AGENT_SYSTEM_PROMPT_REQUIRED", "JANGAR_AGENTRUN_SPEC_IMMUTABILITY_ENFORCED"}
#: issue 13: 0.9.29 workflow step loops, off by default as in the reference
WORKFLOW_LOOP_VARS = {"JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED"}

#: issue 13: durable idempotency keys and the audit sink (0.9.29's `AGENTS_AGENTRUN_IDEMPOTENCY_*`, `audit.sink.*`).
IDEMPOTENCY_AUDIT_VARS = {
    "JANGAR_AGENTRUN_IDEMPOTENCY_ENABLED",
    "JANGAR_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS",
    "JANGAR_AUDIT_SINK_TYPE",
    "JANGAR_AUDIT_SINK_URL",
    "JANGAR_AUDIT_SINK_HEADERS",
    "JANGAR_AUDIT_SINK_TIMEOUT_MS",
}
CORS_VARS = {"JANGAR_CORS_ALLOWED_ORIGINS"}  # issue 13 item 2: CORS of the HTTP API
METRICS_VARS = {"JANGAR_METRICS_AGENTS_NAMES"}  # issue 13: the agents_* twin metric names (0.9.29)


# --- the declarations ---------------------------------------------------------------------------


def _groups(cls: type[Any] = Settings) -> list[type[Any]]:
    found = [cls]
    for f in dataclasses.fields(cls):
        group = f.metadata.get(settings_mod._SPEC)
        if group is not None and group.group is not None:
            found += _groups(group.group)
    return found


def test_every_field_of_every_group_is_declared() -> None:
    for cls in _groups():
        undeclared = [f.name for f in dataclasses.fields(cls) if settings_mod._SPEC not in f.metadata]
        assert undeclared == [], f"{cls.__name__}: {undeclared} have no variable"


def test_one_default_the_constructor_and_the_empty_environment_agree() -> None:
    assert Settings() == Settings.from_env({})
    assert ControllerTuning() == Settings.from_env({}).tuning


def test_mutable_defaults_are_not_shared() -> None:
    a, b = Settings(), Settings.from_env({})
    assert a.vcs.deprecated_token_types == {"github": ("pat",)}
    assert a.vcs.deprecated_token_types is not b.vcs.deprecated_token_types
    assert a.repo_concurrency.overrides is not Settings().repo_concurrency.overrides


def test_listing_covers_the_contract_and_is_unique() -> None:
    rows = list(describe())
    names = [row.env for row in rows]
    assert len(names) == len(set(names)), "a variable is declared twice"
    assert set(names) >= CONTRACT_VARS
    extra = set().union(
        RUNNER_SA_VARS,
        AUTH_VARS,
        RECORDS_VARS,
        SWEEP_VARS,
        PROVIDER_VARS,
        SPEC_POLICY_VARS,
        WORKFLOW_LOOP_VARS,
        IDEMPOTENCY_AUDIT_VARS,
        CORS_VARS,
        METRICS_VARS,
    )
    assert set(names) - CONTRACT_VARS - WORKSPACE_ARTIFACT_VARS - extra == set(TUNING_VARS)
    assert all(row.doc for row in rows)
    by_env = {row.env: row for row in rows}
    assert by_env["JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE"].path == "queue.per_namespace"
    assert by_env["JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE"].default == "200"
    assert by_env["JANGAR_AGENTRUN_WORKERS"].path == "tuning.agentrun_workers"
    assert by_env["JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED"].default == "false"
    assert by_env["JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED"].default == "true"  # inverted flag
    assert by_env["JANGAR_LEADER_ELECTION_NAMESPACE"].default == "$JANGAR_POD_NAMESPACE"


def test_docs_table_is_generated_from_the_declarations() -> None:
    assert settings_mod.main(["--check", str(DOC)]) == 0, (
        "docs/settings.md is stale: run python -m jangar.settings --write docs/settings.md"
    )
    assert env_table_markdown() in DOC.read_text()


def test_check_reports_a_stale_table(tmp_path: Path) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text(
        DOC.read_text().replace("`JANGAR_AGENTRUN_WORKERS` | `tuning.", "`JANGAR_OLD` | `tuning.")
    )
    assert settings_mod.main(["--check", str(stale)]) == 1
    assert settings_mod.main(["--write", str(stale)]) == 0
    assert stale.read_text() == DOC.read_text()


# --- one rule per kind ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.592e+06", 2_592_000), (" 7 ", 7), ("0", 0), ("", 10), ("   ", 10)],
)
def test_integer_rule(value: str, expected: int) -> None:
    s = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": value})
    assert s.concurrency.per_namespace == expected


@pytest.mark.parametrize(("value", "problem"), [("65536", "must be <= 65535"), ("0", "must be >= 1")])
def test_integer_bounds(value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem) as info:
        Settings.from_env({"JANGAR_HTTP_PORT": value})
    assert info.value.name == "JANGAR_HTTP_PORT"


@pytest.mark.parametrize(("value", "expected"), [("15", 15.0), ("30s", 30.0), ("0.5", 0.5), (" 2 ", 2.0)])
def test_seconds_rule(value: str, expected: float) -> None:
    s = Settings.from_env({"JANGAR_REFERENCE_GRACE_SECONDS": value})
    assert s.tuning.reference_grace_seconds == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [("0", "must be > 0"), ("-5", "must be > 0"), ("inf", "must be > 0"), ("soon", "expected seconds")],
)
def test_seconds_errors_name_the_variable(value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem) as info:
        Settings.from_env({"JANGAR_IMAGE_PULL_GRACE_SECONDS": value})
    assert info.value.name == "JANGAR_IMAGE_PULL_GRACE_SECONDS"
    assert str(info.value).startswith("JANGAR_IMAGE_PULL_GRACE_SECONDS: ")


def test_inverted_flag() -> None:
    assert Settings.from_env({}).agent_comms.enabled is False
    assert Settings.from_env({"JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED": "0"}).agent_comms.enabled is True
    assert Settings.from_env({"JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED": "yes"}).agent_comms.enabled is False
    with pytest.raises(SettingsError, match="JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED"):
        Settings.from_env({"JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED": "sometimes"})


def test_text_fallbacks_and_checks() -> None:
    assert Settings.from_env({"JANGAR_POD_NAMESPACE": "ops"}).leader_election.namespace == "ops"
    s = Settings.from_env({"JANGAR_POD_NAMESPACE": "ops", "JANGAR_LEADER_ELECTION_NAMESPACE": "le"})
    assert s.leader_election.namespace == "le"
    with pytest.raises(SettingsError, match="not a valid DNS-1123 label") as info:
        Settings.from_env({"JANGAR_LEADER_ELECTION_LEASE_NAME": "Bad_Name"})
    assert info.value.name == "JANGAR_LEADER_ELECTION_LEASE_NAME"
    # The fallback chain of the native-workflow namespaces, in order.
    env = {"JANGAR_POD_NAMESPACE": "pod", "JANGAR_NAMESPACE": "ns"}
    assert Settings.from_env(env).native_workflows.rerun_orchestration_namespace == "ns"
    assert Settings.from_env(
        {"JANGAR_POD_NAMESPACE": "pod"}
    ).native_workflows.rerun_orchestration_namespace == ("pod")
    s = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "a",
            "JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH": "/x/",
        }
    )
    assert s.auth_secret is not None and s.auth_secret.mount_path == "/x"


def test_choice_is_case_insensitive_with_aliases() -> None:
    assert Settings.from_env({"JANGAR_LOG_LEVEL": "Debug"}).log_level == "debug"
    assert Settings.from_env({"JANGAR_LOG_LEVEL": "warn"}).log_level == "warning"
    with pytest.raises(SettingsError, match=r"expected debug, info, warning or error, got 'LOUD'"):
        Settings.from_env({"JANGAR_LOG_LEVEL": "LOUD"})


def test_json_object_rules() -> None:
    with pytest.raises(SettingsError, match="values must be strings") as info:
        Settings.from_env({"JANGAR_AGENT_RUNNER_NODE_SELECTOR": '{"pool": 1}'})
    assert info.value.name == "JANGAR_AGENT_RUNNER_NODE_SELECTOR"
    with pytest.raises(SettingsError, match="expected a JSON object"):
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_VCS_PR_RATE_LIMITS": "[]"})
    with pytest.raises(SettingsError, match="expected a JSON array of objects"):
        Settings.from_env({"JANGAR_AGENT_RUNNER_TOPOLOGY_SPREAD_CONSTRAINTS": "[1]"})


def test_group_checks_run_after_the_group_is_read() -> None:
    with pytest.raises(SettingsError, match="less than the renew deadline") as info:
        Settings.from_env({"JANGAR_LEADER_ELECTION_RETRY_PERIOD_SECONDS": "10"})
    assert info.value.name == "JANGAR_LEADER_ELECTION_RETRY_PERIOD_SECONDS"


def test_optional_group_is_absent_until_its_key_variable_is_set() -> None:
    # The other auth variables alone do not create the group (and are not validated).
    assert (
        Settings.from_env({"JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH": "relative"}).auth_secret is None
    )


def test_namespace_lists_inherit_in_declaration_order() -> None:
    s = Settings.from_env({"JANGAR_PRIMITIVES_NAMESPACES": "p"})
    assert s.agents_controller.namespaces == ("agents",)
    assert s.primitives_reconciler.namespaces == ("p",)
    assert s.control_plane_cache.namespaces == ("p",)  # falls back to the primitives list


# --- controller runtime knobs ----------------------------------------------------------------------


def test_tuning_defaults() -> None:
    t = Settings.from_env({}).tuning
    assert (t.agentrun_workers, t.supporting_workers) == (4, 2)
    assert t.reconcile_timeout_seconds == 60.0
    assert (t.reference_grace_seconds, t.image_pull_grace_seconds) == (300.0, 300.0)
    assert (t.scheduling_grace_seconds, t.missing_job_grace_seconds) == (600.0, 60.0)


def test_tuning_from_env() -> None:
    env = {
        "JANGAR_AGENTRUN_WORKERS": "16",
        "JANGAR_SUPPORTING_CONTROLLER_WORKERS": "3",
        "JANGAR_RECONCILE_TIMEOUT_SECONDS": "120",
        "JANGAR_REFERENCE_GRACE_SECONDS": "5",
        "JANGAR_IMAGE_PULL_GRACE_SECONDS": "0.5",
        "JANGAR_SCHEDULING_GRACE_SECONDS": "900s",
        "JANGAR_MISSING_JOB_GRACE_SECONDS": "30",
    }
    assert Settings.from_env(env).tuning == ControllerTuning(
        agentrun_workers=16,
        supporting_workers=3,
        reconcile_timeout_seconds=120.0,
        reference_grace_seconds=5.0,
        image_pull_grace_seconds=0.5,
        scheduling_grace_seconds=900.0,
        missing_job_grace_seconds=30.0,
    )


@pytest.mark.parametrize("var", ["JANGAR_AGENTRUN_WORKERS", "JANGAR_SUPPORTING_CONTROLLER_WORKERS"])
@pytest.mark.parametrize(
    ("value", "problem"), [("0", "must be >= 1"), ("-2", "must be >= 1"), ("x", "integer")]
)
def test_workers_must_be_positive(var: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem) as info:
        Settings.from_env({var: value})
    assert info.value.name == var


@pytest.mark.parametrize("var", [v for v, f in TUNING_VARS.items() if f.endswith("_seconds")])
def test_tuning_seconds_must_be_positive(var: str) -> None:
    with pytest.raises(SettingsError, match="must be > 0") as info:
        Settings.from_env({var: "0"})
    assert info.value.name == var
    field = TUNING_VARS[var]
    assert getattr(Settings.from_env({var: "7"}).tuning, field) == 7.0


def test_records_buffer_max_has_a_default_and_bounds() -> None:
    assert Settings.from_env({}).database.records_buffer_max == 10000
    assert Settings.from_env({"JANGAR_RECORDS_BUFFER_MAX": "50"}).database.records_buffer_max == 50
    for bad in ("0", "-1", "1000001", "many"):
        with pytest.raises(SettingsError) as info:
            Settings.from_env({"JANGAR_RECORDS_BUFFER_MAX": bad})
        assert info.value.name == "JANGAR_RECORDS_BUFFER_MAX"
