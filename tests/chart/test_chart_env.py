"""Every env the chart renders parses into Settings, and the values reach the right fields.

This ties the chart (charts/agents) to the settings parser: a variable the chart renders in a form the
parser rejects (a float, a JSON shape, a boolean spelling) fails here rather than at pod start.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jangar.admission import AdmissionLimits
from jangar.settings import ArtifactSettings, ControllerTuning, Settings, describe

CHART = Path(__file__).resolve().parents[2] / "charts" / "agents"

RICH_VALUES = {
    "controllers": {"enabled": True},
    "rbac": {"clusterScoped": True},
    "controller": {
        "namespaces": ["*"],
        "repoConcurrency": {"enabled": True, "default": 2, "overrides": {"Acme/Demo": 1}},
        "authSecret": {"name": "codex-auth"},
        "admissionPolicy": {"labels": {"required": ["team"]}, "images": {"denied": ["evil/*"]}},
        "defaultWorkload": {
            "serviceAccountName": "runner",
            "nodeSelector": {"pool": "agents"},
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "imagePullSecrets": ["regcred"],
            "priorityClassName": "low",
            "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
        },
        "agentRunRetentionSeconds": 2592000,
        "workers": {"agentRun": 16, "supporting": 3},
        "reconcileTimeoutSeconds": 120,
        "gracePeriods": {
            "referenceSeconds": 30,
            "imagePullSeconds": 0.5,
            "schedulingSeconds": 1200,
            "missingJobSeconds": 90,
        },
        "artifacts": {"maxPerRun": 7, "defaultTtlDays": 14},
    },
}

#: Variables the chart renders that are not jangar settings (read by the runtime, the runner or libraries).
NOT_SETTINGS = {"CODEX_HOME", "CODEX_AUTH", "NATS_URL", "NATS_USER", "NATS_PASSWORD"}


def render(helm: Path, tmp_path: Path, *value_files: Path) -> list[dict[str, Any]]:
    args = [str(helm), "template", "agents", str(CHART), "--namespace", "agents"]
    for f in value_files:
        args += ["-f", str(f)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def container_envs(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    envs: dict[str, dict[str, str]] = {}
    for doc in docs:
        if doc.get("kind") != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
            env.setdefault("JANGAR_POD_NAMESPACE", "agents")  # a fieldRef in the chart
            envs[doc["metadata"]["name"]] = env
    return envs


@pytest.mark.parametrize("values", [None, *sorted(p.name for p in CHART.glob("values-*.yaml"))])
def test_chart_env_parses(helm_bin: Path, tmp_path: Path, values: str | None) -> None:
    docs = render(helm_bin, tmp_path, *([CHART / values] if values else []))
    envs = container_envs(docs)
    assert envs, "the chart renders no Deployment"
    for env in envs.values():
        Settings.from_env(env)


def test_rich_values_reach_the_settings(helm_bin: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(RICH_VALUES))
    envs = container_envs(render(helm_bin, tmp_path, values))
    controllers = Settings.from_env(next(v for k, v in envs.items() if k.endswith("-controllers")))
    assert controllers.agents_controller.namespaces == ("*",)
    assert AdmissionLimits.from_settings(controllers).repo_limit("acme/demo") == 1
    assert controllers.auth_secret is not None and controllers.auth_secret.name == "codex-auth"
    assert controllers.admission_policy.images_denied == ("evil/*",)
    assert controllers.agentrun_retention_seconds == 2_592_000
    workload = controllers.runner.default_workload
    assert workload.service_account_name == "runner"
    assert workload.node_selector == {"pool": "agents"}
    assert workload.image_pull_secrets == ("regcred",)
    assert workload.resources == {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}
    assert controllers.database.migrations == "skip"
    assert controllers.tuning == ControllerTuning(
        agentrun_workers=16,
        supporting_workers=3,
        reconcile_timeout_seconds=120.0,
        reference_grace_seconds=30.0,
        image_pull_grace_seconds=0.5,
        scheduling_grace_seconds=1200.0,
        missing_job_grace_seconds=90.0,
    )
    assert (controllers.artifacts.max_per_run, controllers.artifacts.default_ttl_days) == (7, 14)
    # The API-only Deployment runs no controllers and gets no controller knobs.
    main = envs["agents"]
    assert not {"JANGAR_AGENTRUN_WORKERS", "JANGAR_REFERENCE_GRACE_SECONDS"} & set(main)
    assert not {"JANGAR_ARTIFACTS_MAX_PER_RUN", "JANGAR_ARTIFACTS_DEFAULT_TTL_DAYS"} & set(main)


def test_default_tuning_renders_the_settings_defaults(helm_bin: Path, tmp_path: Path) -> None:
    env = container_envs(render(helm_bin, tmp_path))["agents"]
    assert env["JANGAR_AGENTRUN_WORKERS"] == "4"
    assert env["JANGAR_SCHEDULING_GRACE_SECONDS"] == "600"
    assert Settings.from_env(env).tuning == ControllerTuning()


def test_null_tuning_key_leaves_the_default(helm_bin: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"controller": {"workers": {"agentRun": None}, "gracePeriods": None}}))
    env = container_envs(render(helm_bin, tmp_path, values))["agents"]
    assert "JANGAR_AGENTRUN_WORKERS" not in env and "JANGAR_IMAGE_PULL_GRACE_SECONDS" not in env
    assert env["JANGAR_SUPPORTING_CONTROLLER_WORKERS"] == "2"
    assert Settings.from_env(env).tuning == ControllerTuning()


def test_every_rendered_variable_is_a_declared_setting(helm_bin: Path, tmp_path: Path) -> None:
    """A variable the chart renders but no setting reads is a typo or a dead value."""
    declared = {row.env for row in describe()}
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(RICH_VALUES))
    for files in (
        [],
        [values],
        *([CHART / name] for name in sorted(p.name for p in CHART.glob("values-*.yaml"))),
        [Path(__file__).parent / "values" / "values-0.9.29.yaml"],
    ):
        for name, env in container_envs(render(helm_bin, tmp_path, *files)).items():
            # env.vars entries are the user's own (a 0.9.29 file passes AGENTS_* names through), not the chart's
            unknown = {n for n in set(env) - declared - NOT_SETTINGS if not n.startswith("AGENTS_")}
            assert not unknown, f"{name} renders {sorted(unknown)}, which jangar does not read"
            literal = {k: v for k, v in env.items() if isinstance(v, str)}
            Settings.from_env(literal)  # and what it renders parses (a bad value would make serve exit 2)


def test_artifact_values_render_the_settings_defaults_and_null_leaves_them(
    helm_bin: Path, tmp_path: Path
) -> None:
    env = container_envs(render(helm_bin, tmp_path))["agents"]
    assert (env["JANGAR_ARTIFACTS_MAX_PER_RUN"], env["JANGAR_ARTIFACTS_DEFAULT_TTL_DAYS"]) == ("50", "0")
    assert Settings.from_env(env).artifacts == ArtifactSettings()
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"controller": {"artifacts": {"maxPerRun": None, "defaultTtlDays": 30}}})
    )
    env = container_envs(render(helm_bin, tmp_path, values))["agents"]
    assert "JANGAR_ARTIFACTS_MAX_PER_RUN" not in env
    assert Settings.from_env(env).artifacts == ArtifactSettings(max_per_run=50, default_ttl_days=30)
