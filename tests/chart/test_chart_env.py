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

from jangar.settings import Settings

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
        },
        "agentRunRetentionSeconds": 2592000,
    },
}


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
    assert controllers.repo_concurrency.limit_for("acme/demo") == 1
    assert controllers.auth_secret is not None and controllers.auth_secret.name == "codex-auth"
    assert controllers.admission_policy.images_denied == ("evil/*",)
    assert controllers.agentrun_retention_seconds == 2_592_000
    workload = controllers.runner.default_workload
    assert workload.service_account_name == "runner"
    assert workload.node_selector == {"pool": "agents"}
    assert workload.image_pull_secrets == ("regcred",)
    assert controllers.database.migrations == "skip"
