"""The runner ServiceAccount under `controller.namespaces=["*"]`, with the chart's real RBAC (issue 12).

The chart is installed cluster-scoped for all namespaces with `runnerServiceAccount.create` and its RBAC;
then, impersonating the controller's ServiceAccount, the controller's own code (`ensure_service_account`)
creates the runner RoleBinding and ServiceAccount in a namespace the chart never heard of. Binding any
other ClusterRole is refused by the API server (no escalation through the binder rights).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from jangar.controllers.kinds import ROLEBINDINGS, SERVICEACCOUNTS
from jangar.controllers.runner_sa import ensure_service_account, role_binding_manifest
from jangar.dev.cluster import LocalCluster
from jangar.runtime import ApiError, Client
from jangar.settings import Settings
from tests.chart.envtest_support import Kube, extra_namespace, wait_allowed


@pytest.fixture(scope="module")
def kube(envtest_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(envtest_crds.kubeconfig, kubectl_bin, helm_bin)


async def test_the_controller_may_create_the_runner_sa_and_binding_anywhere_and_nothing_more(
    kube: Kube, envtest: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    elsewhere = f"t-{uuid.uuid4().hex[:10]}"
    async with extra_namespace(kube_client, elsewhere):
        kube.install(
            "agents",
            namespace,
            {
                "rbac": {"clusterScoped": True},
                "controller": {"namespaces": ["*"]},
                "runnerServiceAccount": {"create": True, "rbac": {"create": True}},
            },
        )
        try:
            user = f"system:serviceaccount:{namespace}:agents-sa"
            await wait_allowed(
                kube_client,
                user,
                "create",
                "rolebindings",
                group="rbac.authorization.k8s.io",
                namespace=elsewhere,
            )
            api = await k8s_config.new_client_from_config(config_file=str(envtest.kubeconfig))
            api.set_default_header("Impersonate-User", user)
            try:
                as_controller = Client(api, timeout=10, field_manager="jangar")
                runner_role = f"{namespace}-agents-runner"
                settings = Settings.from_env(
                    {
                        "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "agents-runner",
                        "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE": "true",
                        "JANGAR_AGENT_RUNNER_CLUSTER_ROLE": runner_role,
                    }
                )
                await ensure_service_account(as_controller, "agents-runner", elsewhere, settings)
                await ensure_service_account(
                    as_controller, "agents-runner", elsewhere, settings
                )  # idempotent
                admin = Client(kube_client, timeout=10, field_manager="test")
                binding = await admin.get(ROLEBINDINGS, "agents-runner", elsewhere)
                assert binding["roleRef"]["name"] == runner_role
                assert (await admin.get(SERVICEACCOUNTS, "agents-runner", elsewhere))["metadata"]["name"]
                # Binding any other ClusterRole is an escalation the API server refuses.
                with pytest.raises(ApiError) as info:
                    await as_controller.create(
                        ROLEBINDINGS, role_binding_manifest("evil", elsewhere, "cluster-admin")
                    )
                assert info.value.status == 403
            finally:
                await api.close()
        finally:
            kube.helm("uninstall", "agents", "--namespace", namespace)
