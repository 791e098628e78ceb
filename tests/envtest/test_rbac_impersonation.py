"""RBAC is really on: an impersonated ServiceAccount is denied until a RoleBinding grants it access."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from jangar.dev.cluster import LocalCluster


async def test_service_account_denied_then_allowed(
    envtest: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_client)
    await core.create_namespaced_service_account(
        namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="reader"))
    )
    user = f"system:serviceaccount:{namespace}:reader"
    impersonated = await k8s_config.new_client_from_config(config_file=str(envtest.kubeconfig))
    impersonated.set_default_header("Impersonate-User", user)
    try:
        as_sa = k8s.CoreV1Api(impersonated)
        with pytest.raises(k8s.ApiException) as denied:
            await as_sa.list_namespaced_config_map(namespace)
        assert denied.value.status == 403

        rbac = k8s.RbacAuthorizationV1Api(kube_client)
        await rbac.create_namespaced_role(
            namespace,
            k8s.V1Role(
                metadata=k8s.V1ObjectMeta(name="cm-reader"),
                rules=[k8s.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
            ),
        )
        await rbac.create_namespaced_role_binding(
            namespace,
            k8s.V1RoleBinding(
                metadata=k8s.V1ObjectMeta(name="cm-reader"),
                role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="cm-reader"),
                subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
            ),
        )
        # The authorizer reads RBAC from an informer: allow a moment for the binding to arrive.
        for _ in range(50):
            try:
                result = await as_sa.list_namespaced_config_map(namespace)
                break
            except k8s.ApiException as err:
                assert err.status == 403
                await asyncio.sleep(0.1)
        else:
            pytest.fail("RoleBinding never took effect")
        assert isinstance(result.items, list)
        # Still denied outside the granted verbs and resources.
        with pytest.raises(k8s.ApiException) as still_denied:
            await as_sa.list_namespaced_secret(namespace)
        assert still_denied.value.status == 403
    finally:
        await impersonated.close()
