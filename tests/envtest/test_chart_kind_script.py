"""The manifests scripts/agents/kind-e2e.sh generates (Postgres and the database Secret) pass a server-side
dry run, and the chart installed the way the script installs it renders the Secret reference it creates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube
from tests.chart.helm import REPO

SCRIPT = REPO / "scripts" / "agents" / "kind-e2e.sh"


def test_generated_manifests_server_dry_run(
    envtest: LocalCluster, kubectl_bin: Path, helm_bin: Path, namespace: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WORK_DIR": str(work), "NAMESPACE": namespace}
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    kube = Kube(envtest.kubeconfig, kubectl_bin, helm_bin)
    for name in ("postgres.yaml", "db-secret.yaml"):
        out = kube.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(work / name)
        )
        assert "(server dry run)" in out.stdout
    secret = yaml.safe_load((work / "db-secret.yaml").read_text())
    url = secret["stringData"]["uri"]
    assert url == (
        f"postgresql://agents:agents@agents-postgres.{namespace}.svc.cluster.local:5432/agents?sslmode=disable"
    )
    # The chart, as the script installs it, reads DATABASE_URL from that Secret.
    manifest = kube.template("agents", namespace, files=["values-kind.yaml"])
    assert "name: jangar-db-app" in manifest and "key: uri" in manifest
