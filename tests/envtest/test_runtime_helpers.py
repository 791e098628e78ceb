"""The event recorder and the finalizer helpers against a real kube-apiserver + etcd (validation,
deletion with finalizers, resourceVersion preconditions)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.runtime import (
    Client,
    ConflictError,
    Manager,
    ManagerOptions,
    NotFoundError,
    ensure_finalizer,
    remove_finalizer_and_patch,
)
from jangar.runtime.resources import CONFIGMAPS, EVENTS

FINALIZER = "example.com/cleanup"


@pytest_asyncio.fixture
async def rt_client(kube_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(kube_client, timeout=10)


async def test_recorded_events_are_accepted_and_folded(rt_client: Client, namespace: str) -> None:
    cm = await rt_client.create(CONFIGMAPS, {"metadata": {"name": "watched", "namespace": namespace}})
    cm = {"apiVersion": "v1", "kind": "ConfigMap", **cm}
    mgr = Manager(rt_client, ManagerOptions(bind_address=None, reporting_instance="jangar-0"))
    rec = mgr.event_recorder("widget-controller")
    rec.normal(cm, "Synced", "all good")
    rec.normal(cm, "Synced", "all good")
    rec.warning(cm, "Failed", "é" * 2000)  # 4000 bytes: truncated to the API's 1 KiB
    assert await rec.flush(10)
    assert rec.dropped == 0
    events = (await rt_client.list(EVENTS, namespace)).items
    by_reason = {e["reason"]: e for e in events}
    assert set(by_reason) == {"Synced", "Failed"}
    synced = by_reason["Synced"]
    assert synced["count"] == 2
    assert synced["reportingComponent"] == "widget-controller"
    assert synced["reportingInstance"] == "jangar-0"
    assert synced["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert len(by_reason["Failed"]["message"].encode()) <= 1024
    assert by_reason["Failed"]["type"] == "Warning"


async def test_finalizer_helpers_hold_and_release_a_deletion(rt_client: Client, namespace: str) -> None:
    cm = await rt_client.create(CONFIGMAPS, {"metadata": {"name": "held", "namespace": namespace}})
    held = await ensure_finalizer(rt_client, CONFIGMAPS, cm, FINALIZER)
    assert held["metadata"]["finalizers"] == [FINALIZER]
    assert await ensure_finalizer(rt_client, CONFIGMAPS, held, FINALIZER) is held
    with pytest.raises(ConflictError):  # the original read is stale now
        await ensure_finalizer(rt_client, CONFIGMAPS, cm, "example.com/other")

    await rt_client.delete(CONFIGMAPS, "held", namespace)
    deleting = await rt_client.get(CONFIGMAPS, "held", namespace)
    assert deleting["metadata"].get("deletionTimestamp")  # held by the finalizer
    with pytest.raises(ConflictError):
        await remove_finalizer_and_patch(rt_client, CONFIGMAPS, held, FINALIZER)  # stale: before delete
    last = await remove_finalizer_and_patch(rt_client, CONFIGMAPS, deleting, FINALIZER)
    assert not last["metadata"].get("finalizers")
    with pytest.raises(NotFoundError):
        await rt_client.get(CONFIGMAPS, "held", namespace)  # released: the server deleted it
    gone = await remove_finalizer_and_patch(rt_client, CONFIGMAPS, deleting, FINALIZER)
    assert gone["metadata"]["finalizers"] == []
