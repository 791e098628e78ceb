"""issue 13 item 2 on the kwok tier (kube-controller-manager, fake nodes): a 0.9.29 values file installs with
`helm install --wait`, and the controllers HPA really drives the controllers Deployment (it starts without
`replicas` and the HPA controller raises it to controllers.autoscaling.minReplicas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube
from tests.support.waiting import eventually

V0929 = str(Path(__file__).resolve().parents[1] / "chart" / "values" / "values-0.9.29.yaml")


@pytest.fixture(scope="module")
def kube(kwok_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(kwok_crds.kubeconfig, kubectl_bin, helm_bin)


def _here(namespace: str) -> dict[str, Any]:
    native = {"rerunOrchestrationNamespace": namespace, "systemImprovementOrchestrationNamespace": namespace}
    return {
        "controller": {"leaderElection": {"leaseNamespace": namespace}},
        "agentRuntime": {"native": native},
    }


async def test_0929_values_install_and_the_controllers_hpa_scales(
    kube: Kube, kwok_client: k8s.ApiClient, kwok_namespace: str
) -> None:
    kube.install(
        "agents", kwok_namespace, _here(kwok_namespace), (V0929,), extra=("--wait", "--timeout", "180s")
    )
    try:
        apps = k8s.AppsV1Api(kwok_client)
        main = await apps.read_namespaced_deployment("agents", kwok_namespace)
        assert main.spec.min_ready_seconds == 11 and main.spec.strategy.type == "RollingUpdate"

        async def controllers_at_min() -> bool:
            dep = await apps.read_namespaced_deployment("agents-controllers", kwok_namespace)
            return dep.spec.replicas == 2 and (dep.status.available_replicas or 0) == 2

        await eventually(controllers_at_min, 120, interval=1, what="the HPA scales agents-controllers to 2")
        policy = k8s.PolicyV1Api(kwok_client)
        pdb = await policy.read_namespaced_pod_disruption_budget("agents-controllers", kwok_namespace)
        await eventually(
            lambda: _healthy(policy, kwok_namespace), 60, interval=1, what="the controllers PDB sees its pods"
        )
        assert pdb.spec.min_available == 1
    finally:
        kube.helm("uninstall", "agents", "--namespace", kwok_namespace, "--wait")


async def _healthy(policy: k8s.PolicyV1Api, namespace: str) -> bool:
    pdb = await policy.read_namespaced_pod_disruption_budget("agents-controllers", namespace)
    return bool(pdb.status and pdb.status.current_healthy == 2)
