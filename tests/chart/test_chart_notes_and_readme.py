"""The README's literal commands and the rendered env against jangar's settings parser."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import REPO, VALUES_FILES, render


def test_readme_literal_commands(helm_bin: Path) -> None:
    """`helm lint charts/agents` and `helm template charts/agents --values charts/agents/values-local.yaml`
    from the repository root, exactly as the README shows them."""
    for args in (
        ["lint", "charts/agents"],
        ["template", "charts/agents", "--values", "charts/agents/values-local.yaml"],
    ):
        proc = subprocess.run([str(helm_bin), *args], cwd=REPO, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def _plain_env(env: dict[str, Any]) -> dict[str, str]:
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    plain.setdefault("JANGAR_POD_NAMESPACE", "agents")
    plain.setdefault("JANGAR_POD_NAME", "agents-0")
    return plain


@pytest.mark.parametrize("values_file", [None, *VALUES_FILES])
def test_rendered_env_parses_with_jangar_settings(helm_bin: Path, values_file: str | None) -> None:
    settings_mod = pytest.importorskip("jangar.settings")
    r = render(helm_bin, files=[values_file] if values_file else [])
    settings = settings_mod.Settings.from_env(_plain_env(r.env()))
    assert settings.http_port == 8080
    assert settings.leader_election.enabled


def test_split_and_tuned_env_parses(helm_bin: Path) -> None:
    settings_mod = pytest.importorskip("jangar.settings")
    values = yaml.safe_load(
        """
controllers: {enabled: true}
rbac: {clusterScoped: true}
controller:
  namespaces: ["*"]
  queue: {perNamespace: 0}
  repoConcurrency: {enabled: true, overrides: {proompteng/lab: 2}}
  admissionPolicy: {labels: {required: [team]}}
  vcsProviders: {enabled: false, prRateLimits: {github: {windowSeconds: 60, maxRequests: 5, backoffSeconds: 1}}}
  defaultWorkload: {nodeSelector: {pool: a}, imagePullSecrets: [reg]}
  authSecret: {name: codex-auth}
runner: {image: {pullPolicy: Always}}
logging: {level: warning}
"""
    )
    r = render(helm_bin, values)
    for deployment in ("agents", "agents-controllers"):
        settings = settings_mod.Settings.from_env(_plain_env(r.env(deployment)))
        assert settings.rbac_cluster_scoped
    ctl = settings_mod.Settings.from_env(_plain_env(r.env("agents-controllers")))
    assert ctl.agents_controller.namespaces == ("*",)
    assert ctl.queue.per_namespace == 0
    assert ctl.vcs.providers_enabled is False
    assert ctl.auth_secret is not None and ctl.auth_secret.mount_path == "/root/.codex"
    assert ctl.grpc.enabled is False
    main = settings_mod.Settings.from_env(_plain_env(r.env("agents")))
    assert main.agents_controller.enabled is False
    assert main.grpc.enabled is True


def test_docs_chart_env_table_names_each_variable_once() -> None:
    """docs/chart.md's env table: one row per variable (two merged branches had each added a
    JANGAR_AGENT_RUNNER_RESOURCES row)."""
    import re

    text = (REPO / "docs" / "chart.md").read_text()
    section = text[text.index("### Environment (main Deployment") : text.index("## Install modes")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    first_cells = [re.findall(r"`([A-Z][A-Z0-9_]+)", row.split(" | ")[0]) for row in rows]
    names = [name for cell in first_cells for name in cell]
    assert "JANGAR_AGENT_RUNNER_RESOURCES" in names
    assert sorted({n for n in names if names.count(n) > 1}) == []
