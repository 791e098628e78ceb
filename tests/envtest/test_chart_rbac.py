"""RBAC of each install mode, checked against the real authorizer: impersonating the chart's ServiceAccount,
every verb the controllers need is allowed and what lies outside the scope is denied."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube, can, extra_namespace, missing_grants, wait_allowed


@pytest.fixture(scope="module")
def kube(envtest_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(envtest_crds.kubeconfig, kubectl_bin, helm_bin)


def sa_user(namespace: str, name: str = "agents-sa") -> str:
    return f"system:serviceaccount:{namespace}:{name}"


async def test_namespaced_install(kube: Kube, kube_client: k8s.ApiClient, namespace: str) -> None:
    other = f"t-{uuid.uuid4().hex[:10]}"
    async with extra_namespace(kube_client, other):
        kube.install("agents", namespace)
        user = sa_user(namespace)
        await wait_allowed(
            kube_client, user, "list", "agentruns", group="agents.proompteng.ai", namespace=namespace
        )
        assert await missing_grants(kube_client, user, namespace) == []
        for verb in ("get", "create", "update"):
            assert await can(
                kube_client, user, verb, "leases", group="coordination.k8s.io", namespace=namespace
            )
        # Outside the release namespace: nothing.
        assert not await can(kube_client, user, "get", "secrets", namespace=other)
        assert not await can(kube_client, user, "create", "jobs", group="batch", namespace=other)
        assert not await can(
            kube_client, user, "list", "agentruns", group="agents.proompteng.ai", namespace=other
        )
        assert not await can(
            kube_client, user, "create", "leases", group="coordination.k8s.io", namespace=other
        )
        # Cluster-wide: nothing.
        assert not await can(kube_client, user, "list", "agentruns", group="agents.proompteng.ai")
        assert not await can(kube_client, user, "list", "namespaces")
        # Secrets: read, and create/patch only for minted VCS tokens (vcsProviders.enabled); never delete.
        assert await can(kube_client, user, "create", "secrets", namespace=namespace)
        for verb in ("update", "delete"):
            assert not await can(kube_client, user, verb, "secrets", namespace=namespace)
        kube.helm("uninstall", "agents", "--namespace", namespace)


async def test_namespaced_install_watching_another_namespace(
    kube: Kube, kube_client: k8s.ApiClient, namespace: str
) -> None:
    watched = f"t-{uuid.uuid4().hex[:10]}"
    async with extra_namespace(kube_client, watched):
        kube.install(
            "agents",
            namespace,
            {
                "controller": {"namespaces": [watched]},
                "orchestrationController": {"namespaces": [watched]},
                "supportingController": {"namespaces": [watched]},
            },
        )
        user = sa_user(namespace)
        await wait_allowed(
            kube_client, user, "list", "agentruns", group="agents.proompteng.ai", namespace=watched
        )
        assert await missing_grants(kube_client, user, watched) == []
        # Leader election stays in the release namespace.
        assert await can(
            kube_client, user, "update", "leases", group="coordination.k8s.io", namespace=namespace
        )
        kube.helm("uninstall", "agents", "--namespace", namespace)


@pytest.mark.parametrize("mode", ["several", "all"])
async def test_cluster_scoped_install(
    kube: Kube, kube_client: k8s.ApiClient, namespace: str, mode: str
) -> None:
    a, b, outside = (f"t-{uuid.uuid4().hex[:10]}" for _ in range(3))
    async with (
        extra_namespace(kube_client, a),
        extra_namespace(kube_client, b),
        extra_namespace(kube_client, outside),
    ):
        namespaces = [a, b] if mode == "several" else ["*"]
        kube.install(
            "agents", namespace, {"rbac": {"clusterScoped": True}, "controller": {"namespaces": namespaces}}
        )
        user = sa_user(namespace)
        await wait_allowed(kube_client, user, "list", "agentruns", group="agents.proompteng.ai", namespace=a)
        for ns in (a, b):
            assert await missing_grants(kube_client, user, ns) == []
        if mode == "all":
            assert await missing_grants(kube_client, user, None) == []  # cluster-wide list/watch
            for verb in ("get", "list", "watch"):
                assert await can(kube_client, user, verb, "namespaces")
        assert await can(
            kube_client, user, "update", "leases", group="coordination.k8s.io", namespace=namespace
        )
        assert not await can(
            kube_client, user, "update", "leases", group="coordination.k8s.io", namespace=outside
        )
        # Minted VCS tokens may be written in watched namespaces only (with `*`, every namespace is watched).
        for verb in ("update", "delete") if mode == "all" else ("create", "update", "delete"):
            assert not await can(kube_client, user, verb, "secrets", namespace=outside)
        assert not await can(kube_client, user, "create", "deployments", group="apps", namespace=outside)
        assert not await can(kube_client, user, "create", "clusterroles", group="rbac.authorization.k8s.io")
        kube.helm("uninstall", "agents", "--namespace", namespace)


async def test_impersonated_controller_calls(
    kube: Kube, envtest: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    """Real API calls as the ServiceAccount: what the controllers do works, the rest is 403."""
    other = f"t-{uuid.uuid4().hex[:10]}"
    async with extra_namespace(kube_client, other):
        kube.install("agents", namespace)
        user = sa_user(namespace)
        await wait_allowed(kube_client, user, "create", "jobs", group="batch", namespace=namespace)
        api = await k8s_config.new_client_from_config(config_file=str(envtest.kubeconfig))
        api.set_default_header("Impersonate-User", user)
        try:
            core, batch = k8s.CoreV1Api(api), k8s.BatchV1Api(api)
            custom = k8s.CustomObjectsApi(api)
            coordination = k8s.CoordinationV1Api(api)
            await core.create_namespaced_config_map(
                namespace,
                k8s.V1ConfigMap(
                    metadata=k8s.V1ObjectMeta(
                        name="run-spec", labels={"agents.proompteng.ai/agent-run": "r"}
                    ),
                    data={"run.json": "{}"},
                ),
            )
            await batch.create_namespaced_job(
                namespace,
                k8s.V1Job(
                    metadata=k8s.V1ObjectMeta(name="run-1"),
                    spec=k8s.V1JobSpec(
                        template=k8s.V1PodTemplateSpec(
                            spec=k8s.V1PodSpec(
                                restart_policy="Never",
                                containers=[k8s.V1Container(name="c", image="busybox")],
                            )
                        )
                    ),
                ),
            )
            await coordination.create_namespaced_lease(
                namespace,
                k8s.V1Lease(
                    metadata=k8s.V1ObjectMeta(name="agents-controller"),
                    spec=k8s.V1LeaseSpec(holder_identity="pod-a", lease_duration_seconds=15),
                ),
            )
            await core.create_namespaced_event(
                namespace,
                k8s.CoreV1Event(
                    metadata=k8s.V1ObjectMeta(name="e1"),
                    reason="Test",
                    message="m",
                    type="Normal",
                    involved_object=k8s.V1ObjectReference(
                        kind="ConfigMap", name="run-spec", namespace=namespace
                    ),
                ),
            )
            run = {
                "apiVersion": "agents.proompteng.ai/v1alpha1",
                "kind": "AgentRun",
                "metadata": {"name": "r1"},
                "spec": {
                    "agentRef": {"name": "a"},
                    "implementationSpecRef": {"name": "i"},
                    "runtime": {"type": "job"},
                },
            }
            await custom.create_namespaced_custom_object(
                "agents.proompteng.ai", "v1alpha1", namespace, "agentruns", run
            )
            await custom.patch_namespaced_custom_object_status(
                "agents.proompteng.ai",
                "v1alpha1",
                namespace,
                "agentruns",
                "r1",
                {"status": {"phase": "Running"}},
                _content_type="application/merge-patch+json",
            )
            await custom.delete_namespaced_custom_object(
                "agents.proompteng.ai", "v1alpha1", namespace, "agentruns", "r1"
            )
            # A minted GitHub App token goes into a run-owned Secret in a watched namespace.
            await core.create_namespaced_secret(
                namespace,
                k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="run-1-vcs-token"), string_data={"token": "t"}),
            )
            await core.patch_namespaced_secret("run-1-vcs-token", namespace, {"stringData": {"token": "u"}})
            denied = [
                core.read_namespaced_secret("anything", other),
                core.list_namespaced_secret(other),
                batch.create_namespaced_job(other, k8s.V1Job(metadata=k8s.V1ObjectMeta(name="x"))),
                core.create_namespaced_secret(other, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="x"))),
                core.delete_namespaced_secret("run-1-vcs-token", namespace),
                core.list_namespace(),
            ]
            for call in denied:
                with pytest.raises(k8s.ApiException) as err:
                    await call
                assert err.value.status == 403
        finally:
            await api.close()
        kube.helm("uninstall", "agents", "--namespace", namespace)
