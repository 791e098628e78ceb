"""The envtest tier works: a real kube-apiserver stores, serves and streams objects."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import watch


async def test_server_reports_pinned_version(kube_client: k8s.ApiClient) -> None:
    info = await k8s.VersionApi(kube_client).get_code()
    # The ldflags in scripts/k8s-assets.sh must reach the binary: helm and kwokctl read this.
    assert info.git_version.startswith("v1.36."), info.git_version
    assert info.major == "1"


async def test_configmap_roundtrip_and_watch(kube_client: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(kube_client)
    ns = await core.read_namespace(namespace)
    assert ns.metadata.name == namespace

    created = await core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="settings"), data={"mode": "a"})
    )
    read = await core.read_namespaced_config_map("settings", namespace)
    assert read.data == {"mode": "a"}

    seen: list[tuple[str, str]] = []

    async def follow() -> None:
        async with watch.Watch() as w:
            async for event in w.stream(
                core.list_namespaced_config_map,
                namespace,
                resource_version=created.metadata.resource_version,
                timeout_seconds=30,
            ):
                obj = event["object"]
                seen.append((event["type"], (obj.data or {}).get("mode", "")))
                if event["type"] == "DELETED":
                    return

    watcher = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    await core.patch_namespaced_config_map("settings", namespace, {"data": {"mode": "b"}})
    await core.delete_namespaced_config_map("settings", namespace)
    await asyncio.wait_for(watcher, timeout=30)
    assert seen == [("MODIFIED", "b"), ("DELETED", "b")]
