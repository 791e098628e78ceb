"""scripts/agents/kind-e2e.sh cannot run here (no Docker), so it is checked by construction:
shellcheck-clean, strict mode, and its --dry-run prints exactly the commands of the kind quickstart."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.chart.helm import CHART, REPO

SCRIPT = REPO / "scripts" / "agents" / "kind-e2e.sh"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def dry_run(tmp_path: Path, *args: str, **env: str) -> list[str]:
    full_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env}
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if IN_CI:
            pytest.fail("shellcheck is not installed (apt-get install -y shellcheck)")
        pytest.skip("shellcheck is not installed")
    proc = subprocess.run(
        [shellcheck, "--severity=style", "-x", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_strict_mode_and_executable() -> None:
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(SCRIPT, os.X_OK)


def test_dry_run_commands(tmp_path: Path) -> None:
    commands = dry_run(tmp_path, "--dry-run")
    assert commands[0] == "kind create cluster --name agents --wait 120s"
    assert commands[1] == "kubectl config use-context kind-agents"
    assert commands[2] == "kubectl create namespace agents"
    build = commands[3]
    assert build.startswith(f"docker build --file {REPO}/deploy/Dockerfile --tag jangar-local:kind")
    assert build.endswith(str(REPO))
    assert (REPO / "deploy" / "Dockerfile").exists()
    assert commands[4] == "kind load docker-image jangar-local:kind --name agents"
    assert commands[5].startswith("kubectl --namespace agents apply --filename ")
    assert (
        commands[6] == "kubectl --namespace agents rollout status deployment/agents-postgres --timeout=180s"
    )
    assert commands[7].startswith("kubectl --namespace agents apply --filename ")
    assert commands[8] == (
        f"helm upgrade --install agents {CHART} --namespace agents --values {CHART}/values-kind.yaml "
        "--set image.repository=jangar-local --set image.tag=kind"
    )
    assert commands[9] == "kubectl --namespace agents rollout status deployment/agents --timeout=180s"
    assert commands[10] == "helm test agents --namespace agents --timeout 120s"
    applied = [c.rsplit("/", 1)[-1] for c in commands[11:15]]
    assert applied == [
        "agentprovider-smoke.yaml",
        "agent-smoke.yaml",
        "implementationspec-smoke.yaml",
        "agentrun-workflow-smoke.yaml",
    ]
    for name in applied:
        assert (CHART / "examples" / name).exists()
    assert commands[15] == (
        "kubectl --namespace agents wait --for=condition=Succeeded agentrun/agents-workflow-smoke --timeout=300s"
    )
    assert commands[16] == "kubectl --namespace agents get agentruns agents-workflow-smoke -o wide"
    assert len(commands) == 17


def test_dry_run_env_overrides(tmp_path: Path) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text("{}")
    commands = dry_run(
        tmp_path,
        DRY_RUN="1",
        CLUSTER_NAME="dev",
        NAMESPACE="team-a",
        BUILD_IMAGE="0",
        IMAGE_REPOSITORY="me/jangar",
        IMAGE_TAG="t1",
        CODEX_AUTH_PATH=str(auth),
        HELM_TEST="0",
        KUBECTL_CONTEXT="ctx",
        POSTGRES_RELEASE="pg",
    )
    assert commands[0] == "kind create cluster --name dev --wait 120s"
    assert "kubectl config use-context ctx" in commands
    assert not any(c.startswith("docker ") for c in commands)
    assert "kind load docker-image me/jangar:t1 --name dev" in commands
    assert "kubectl --namespace team-a rollout status deployment/pg --timeout=180s" in commands
    assert (
        f"kubectl --namespace team-a create secret generic codex-auth --from-file=auth.json={auth}"
        in commands
    )
    helm = next(c for c in commands if c.startswith("helm upgrade"))
    assert "--namespace team-a" in helm and "--set controller.authSecret.name=codex-auth" in helm
    assert "--set image.repository=me/jangar --set image.tag=t1" in helm
    assert not any(c.startswith("helm test") for c in commands)
    assert all("--namespace agents" not in c for c in commands)


def test_values_kind_follows_the_namespace() -> None:
    """values-kind.yaml must not pin a namespace, so NAMESPACE=... keeps RBAC and the watch scope aligned."""
    import yaml

    values = yaml.safe_load((CHART / "values-kind.yaml").read_text())
    assert values["controller"]["namespaces"] == []
    assert values["database"]["secretRef"] == {"name": "jangar-db-app", "key": "uri"}


def test_help(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "--dry-run" in proc.stdout
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
