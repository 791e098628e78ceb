"""`helm install --wait` on the kwok cluster (fake nodes): the Deployments roll out and become Available.

kwok runs no containers, so probes and `helm test` (a bare Pod that kwok never completes) are out of reach
here; the kind quickstart (scripts/agents/kind-e2e.sh) runs `helm test`."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube


@pytest.fixture(scope="module")
def kube(kwok_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(kwok_crds.kubeconfig, kubectl_bin, helm_bin)


async def test_helm_install_wait_rolls_out(
    kube: Kube, kwok_client: k8s.ApiClient, kwok_namespace: str
) -> None:
    values = {"replicaCount": 2, "controllers": {"enabled": True}, "podDisruptionBudget": {"enabled": True}}
    kube.install("agents", kwok_namespace, values, extra=("--wait", "--timeout", "180s"))
    apps = k8s.AppsV1Api(kwok_client)
    for name, replicas in (("agents", 2), ("agents-controllers", 1)):
        dep = await apps.read_namespaced_deployment(name, kwok_namespace)
        assert dep.status.available_replicas == replicas, name
    kube.helm("uninstall", "agents", "--namespace", kwok_namespace, "--wait")
