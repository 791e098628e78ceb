"""The runtime client against a real kube-apiserver: custom resources, patches, SSA, status, deletes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.runtime import (
    Cache,
    CacheOptions,
    Client,
    ConflictError,
    NotFoundError,
    PatchType,
    PropagationPolicy,
    ResourceRef,
)
from jangar.runtime.cache import InformerNotRegistered
from jangar.runtime.resources import CONFIGMAPS, CUSTOM_RESOURCE_DEFINITIONS, NAMESPACES

GROUP = "runtime-test.jangar.dev"
GADGETS = ResourceRef(GROUP, "v1", "Gadget", "gadgets")
CRD = {
    "metadata": {"name": f"gadgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer"},
                                    "color": {"type": "string"},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}, "observed": {"type": "integer"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest_asyncio.fixture
async def rt_client(kube_client: k8s.ApiClient) -> AsyncIterator[Client]:
    client = Client(kube_client, timeout=10)
    with contextlib.suppress(ConflictError):
        await client.create(CUSTOM_RESOURCE_DEFINITIONS, CRD)
    async with asyncio.timeout(30):
        while True:
            try:
                await client.list(GADGETS, limit=1)
                break
            except NotFoundError:
                await asyncio.sleep(0.1)
    yield client


def gadget(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


async def test_custom_resource_merge_json_and_status_patches(rt_client: Client, namespace: str) -> None:
    created = await rt_client.create(GADGETS, gadget("g", namespace, size=1, tags=["a"]))
    assert created["metadata"]["generation"] == 1
    merged = await rt_client.patch(GADGETS, "g", {"spec": {"color": "red"}}, namespace=namespace)
    assert merged["spec"] == {"size": 1, "tags": ["a"], "color": "red"}
    jsonp = await rt_client.patch(
        GADGETS,
        "g",
        [{"op": "add", "path": "/spec/tags/-", "value": "b"}],
        namespace=namespace,
        patch_type=PatchType.JSON,
    )
    assert jsonp["spec"]["tags"] == ["a", "b"]
    status = await rt_client.patch_status(GADGETS, "g", {"status": {"phase": "Ready"}}, namespace=namespace)
    assert status["status"] == {"phase": "Ready"}
    assert status["metadata"]["generation"] == 3  # status writes do not bump generation
    # The status subresource ignores spec changes, and the main resource ignores status.
    ignored = await rt_client.patch(GADGETS, "g", {"status": {"phase": "Nope"}}, namespace=namespace)
    assert ignored["status"] == {"phase": "Ready"}


async def test_optimistic_concurrency(rt_client: Client, namespace: str) -> None:
    g = await rt_client.create(GADGETS, gadget("g", namespace, size=1))
    stale = g["metadata"]["resourceVersion"]
    g["spec"]["size"] = 2
    fresh = await rt_client.update(GADGETS, g)
    g["spec"]["size"] = 3
    with pytest.raises(ConflictError):
        await rt_client.update(GADGETS, g)
    with pytest.raises(ConflictError):
        await rt_client.patch(
            GADGETS, "g", {"spec": {"size": 4}}, namespace=namespace, resource_version=stale
        )
    with pytest.raises(Exception) as err:  # a failed JSON-patch "test" op is a 422
        await rt_client.patch(
            GADGETS,
            "g",
            [{"op": "replace", "path": "/spec/size", "value": 5}],
            namespace=namespace,
            patch_type=PatchType.JSON,
            resource_version=stale,
        )
    assert getattr(err.value, "status", None) in (409, 422)
    fresh["status"] = {"observed": 2}
    updated = await rt_client.update_status(GADGETS, fresh)
    assert updated["status"] == {"observed": 2}


async def test_server_side_apply_with_field_managers_and_force(rt_client: Client, namespace: str) -> None:
    applied = await rt_client.apply(
        GADGETS, gadget("g", namespace, size=1, color="red"), field_manager="alice"
    )
    assert applied["spec"] == {"size": 1, "color": "red"}
    with pytest.raises(ConflictError):
        await rt_client.apply(GADGETS, gadget("g", namespace, size=2), field_manager="bob")
    forced = await rt_client.apply(GADGETS, gadget("g", namespace, size=2), field_manager="bob", force=True)
    assert forced["spec"] == {"size": 2, "color": "red"}
    # alice re-applies without color: she releases it, and nobody else owns it, so it goes.
    released = await rt_client.apply(GADGETS, gadget("g", namespace), field_manager="alice")
    assert released["spec"] == {"size": 2}
    status = await rt_client.apply_status(
        GADGETS,
        {"metadata": {"name": "g", "namespace": namespace}, "status": {"phase": "Up"}},
        field_manager="ctl",
    )
    assert status["status"] == {"phase": "Up"}
    managers = {(m["manager"], m.get("subresource", "")) for m in status["metadata"]["managedFields"]}
    assert ("ctl", "status") in managers and ("bob", "") in managers


async def test_delete_preconditions_and_propagation(rt_client: Client, namespace: str) -> None:
    g = await rt_client.create(GADGETS, gadget("g", namespace))
    with pytest.raises(ConflictError):
        await rt_client.delete(GADGETS, "g", namespace, uid="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ConflictError):
        await rt_client.delete(GADGETS, "g", namespace, resource_version="1")
    await rt_client.delete(
        GADGETS, "g", namespace, uid=g["metadata"]["uid"], propagation_policy=PropagationPolicy.FOREGROUND
    )
    # Foreground deletion leaves the object with a finalizer until the GC (absent here) acts.
    remaining = await rt_client.get(GADGETS, "g", namespace)
    assert "foregroundDeletion" in remaining["metadata"]["finalizers"]
    await rt_client.patch(GADGETS, "g", {"metadata": {"finalizers": None}}, namespace=namespace)
    with pytest.raises(NotFoundError):
        await rt_client.get(GADGETS, "g", namespace)
    assert await rt_client.delete(GADGETS, "g", namespace, ignore_not_found=True) is None


async def test_cache_scopes_namespaces_and_selectors(rt_client: Client, namespace: str) -> None:
    other = f"{namespace}-b"
    outside = f"{namespace}-c"
    for ns in (other, outside):
        await rt_client.create(NAMESPACES, {"metadata": {"name": ns}})
    try:
        for ns in (namespace, other, outside):
            await rt_client.create(
                CONFIGMAPS, {"metadata": {"name": "app", "namespace": ns, "labels": {"team": "x"}}}
            )
            await rt_client.create(CONFIGMAPS, {"metadata": {"name": "noise", "namespace": ns}})
        cache = Cache(rt_client, CacheOptions(namespaces=[namespace, other], label_selector={"team": "x"}))
        cache.informer(CONFIGMAPS)
        cache.start()
        try:
            assert await cache.wait_for_sync(10)
            names = sorted(
                f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in cache.list(CONFIGMAPS)
            )
            assert names == sorted([f"{namespace}/app", f"{other}/app"])  # selector applied, outside excluded
            assert cache.get(CONFIGMAPS, "app", other) is not None
            assert cache.get(CONFIGMAPS, "noise", other) is None
            with pytest.raises(InformerNotRegistered):
                cache.get(CONFIGMAPS, "app", outside)
            with pytest.raises(InformerNotRegistered):
                cache.list(GADGETS)
        finally:
            await cache.stop()
        by_field = Cache(
            rt_client, CacheOptions(namespaces=[namespace], field_selector="metadata.name=noise")
        )
        by_field.informer(CONFIGMAPS)
        by_field.start()
        try:
            assert await by_field.wait_for_sync(10)
            assert [o["metadata"]["name"] for o in by_field.list(CONFIGMAPS)] == ["noise"]
        finally:
            await by_field.stop()
    finally:
        for ns in (other, outside):
            await rt_client.delete(NAMESPACES, ns, ignore_not_found=True)
