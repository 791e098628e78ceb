"""issue 13 item 2 against a real kube-apiserver: the 0.9.29-style values file renders manifests the server
accepts (strict field validation), and `helm install` turns rolloutChecksums into the sha256 of the Secret
and ConfigMap it finds with lookup."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube

V0929 = str(Path(__file__).resolve().parents[1] / "chart" / "values" / "values-0.9.29.yaml")


@pytest.fixture(scope="module")
def kube(envtest_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(envtest_crds.kubeconfig, kubectl_bin, helm_bin)


def _here(namespace: str) -> dict[str, Any]:
    """The file names the namespace "agents"; the test's own namespace replaces it."""
    native = {"rerunOrchestrationNamespace": namespace, "systemImprovementOrchestrationNamespace": namespace}
    return {
        "controller": {"leaderElection": {"leaseNamespace": namespace}},
        "agentRuntime": {"native": native},
    }


async def test_0929_manifests_pass_server_dry_run(kube: Kube, namespace: str) -> None:
    manifest = kube.template("agents", namespace, _here(namespace), (V0929,))
    kinds = {line.split(":", 1)[1].strip() for line in manifest.splitlines() if line.startswith("kind:")}
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Deployment"} <= kinds
    proc = kube.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=manifest, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "agents-controllers-grpc created (server dry run)" in proc.stdout


async def test_rollout_checksums_hash_what_lookup_finds(
    kube: Kube, kube_client: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_client)
    data = {"TOKEN": "czNjcjN0"}
    await core.create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="agents-env"), data=data)
    )
    kube.install("agents", namespace, _here(namespace), (V0929,))
    try:
        apps = k8s.AppsV1Api(kube_client)
        for name in ("agents", "agents-controllers"):
            dep = await apps.read_namespaced_deployment(name, namespace)
            annotations = dep.spec.template.metadata.annotations
            # Go's json.Marshal of the map: sorted keys, no spaces
            expected = hashlib.sha256(
                json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
            ).hexdigest()
            assert annotations["checksum/secret-agents-env"] == expected
            assert annotations["checksum/secret-agents-db"] == ""  # not there: empty, the render goes on
            assert annotations["checksum/configmap-agents-config"] == ""
    finally:
        kube.helm("uninstall", "agents", "--namespace", namespace, "--wait")
