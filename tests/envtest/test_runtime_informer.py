"""The runtime's informers against a real kube-apiserver + etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.runtime import Client, FuncHandler, GoneError, ReflectorOptions, SharedInformer
from jangar.runtime.resources import CONFIGMAPS
from tests.support.waiting import eventually

FAST = ReflectorOptions(watchdog_timeout=20, backoff_initial=0.1, backoff_cap=1.0)


@pytest_asyncio.fixture
async def rt_client(kube_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(kube_client, timeout=10)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    def handler(self) -> FuncHandler:
        return FuncHandler(
            add=lambda o, initial: self.events.append(("add", o["metadata"]["name"], initial)),
            update=lambda old, new: self.events.append(("update", new["metadata"]["name"], new.get("data"))),
            delete=lambda o, unknown: self.events.append(("delete", o["metadata"]["name"], unknown)),
        )


def cm(name: str, ns: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "data": data}


async def compact_etcd(etcd_url: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{etcd_url}/v3/kv/range", json={"key": "AA=="}) as r:
            revision = (await r.json())["header"]["revision"]
        async with s.post(f"{etcd_url}/v3/kv/compaction", json={"revision": revision, "physical": True}) as r:
            assert r.status == 200, await r.text()


async def keys_from_fresh_list(client: Client, ns: str) -> dict[str, str]:
    listed = await client.list(CONFIGMAPS, ns)
    return {f"{ns}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in listed.items}


def keys_from_cache(inf: SharedInformer) -> dict[str, str]:
    return {k: inf.store.get(k)["metadata"]["resourceVersion"] for k in inf.store}  # type: ignore[index]


async def test_informer_sees_create_update_delete_in_order(rt_client: Client, namespace: str) -> None:
    await rt_client.create(CONFIGMAPS, cm("before", namespace, v="0"))
    inf = SharedInformer(rt_client, CONFIGMAPS, namespace=namespace, options=FAST)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=10)
        assert rec.events == [("add", "before", True)]
        assert "managedFields" not in inf.store.get(f"{namespace}/before")["metadata"]  # type: ignore[index]
        await rt_client.create(CONFIGMAPS, cm("x", namespace, v="1"))
        await rt_client.patch(CONFIGMAPS, "x", {"data": {"v": "2"}}, namespace=namespace)
        await rt_client.patch(CONFIGMAPS, "x", {"data": {"v": "3"}}, namespace=namespace)
        await rt_client.delete(CONFIGMAPS, "x", namespace)
        await eventually(lambda: len(rec.events) == 5)
        assert rec.events[1:] == [
            ("add", "x", False),
            ("update", "x", {"v": "2"}),
            ("update", "x", {"v": "3"}),
            ("delete", "x", False),
        ]
        assert keys_from_cache(inf) == await keys_from_fresh_list(rt_client, namespace)
    finally:
        await inf.stop()


async def test_watch_from_an_expired_version_is_gone(rt_client: Client, namespace: str, envtest: Any) -> None:
    """Our own 410 parsing against the real server (watch cache + compacted etcd after restart)."""
    created = await rt_client.create(CONFIGMAPS, cm("a", namespace))
    await compact_etcd(envtest.etcd_url)
    await asyncio.to_thread(envtest.restart_apiserver)
    with pytest.raises(GoneError):
        async for _ in rt_client.watch(
            CONFIGMAPS, namespace, resource_version=created["metadata"]["resourceVersion"]
        ):
            pass


async def test_410_relists_and_reports_deletes_from_the_gap(
    rt_client: Client, namespace: str, envtest: Any
) -> None:
    for name in ("keep", "gone", "changed"):
        await rt_client.create(CONFIGMAPS, cm(name, namespace, v="1"))
    inf = SharedInformer(rt_client, CONFIGMAPS, namespace=namespace, options=FAST)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    assert await inf.wait_for_sync(timeout=10)
    await inf.stop()  # the gap: the informer sees nothing from here on
    await rt_client.delete(CONFIGMAPS, "gone", namespace)
    await rt_client.patch(CONFIGMAPS, "changed", {"data": {"v": "2"}}, namespace=namespace)
    await rt_client.create(CONFIGMAPS, cm("new", namespace, v="1"))
    await compact_etcd(envtest.etcd_url)
    await asyncio.to_thread(envtest.restart_apiserver)  # the watch cache no longer has our version
    inf.start()  # resumes the watch from the last version -> 410 -> relist
    try:
        await eventually(lambda: inf.reflector.lists == 2, timeout=20)
        await eventually(lambda: len(rec.events) >= 6)
        assert rec.events[3] == ("delete", "gone", True)
        assert sorted(rec.events[4:], key=lambda e: e[1]) == [
            ("update", "changed", {"v": "2"}),
            ("add", "new", False),
        ]
        assert keys_from_cache(inf) == await keys_from_fresh_list(rt_client, namespace)
    finally:
        await inf.stop()


async def test_apiserver_restart_mid_watch_loses_nothing(
    rt_client: Client, namespace: str, envtest: Any
) -> None:
    inf = SharedInformer(rt_client, CONFIGMAPS, namespace=namespace, options=FAST)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=10)
        await rt_client.create(CONFIGMAPS, cm("before-restart", namespace))
        await asyncio.to_thread(envtest.restart_apiserver, 1.0)
        await rt_client.create(CONFIGMAPS, cm("after-restart", namespace))
        await rt_client.patch(CONFIGMAPS, "before-restart", {"data": {"v": "after"}}, namespace=namespace)
        await eventually(lambda: ("add", "after-restart", False) in rec.events, timeout=30)
        await eventually(lambda: ("update", "before-restart", {"v": "after"}) in rec.events, timeout=30)
        assert ("add", "before-restart", False) in rec.events
        assert keys_from_cache(inf) == await keys_from_fresh_list(rt_client, namespace)
    finally:
        await inf.stop()


async def test_a_paged_list_fills_the_cache_page_by_page_where_the_watch_cache_would_not_page(
    rt_client: Client, namespace: str
) -> None:
    """The reflector's lists are consistent reads because the real server pages only those: asked for
    `resourceVersion=0` with a limit it answers from the watch cache in one response."""
    labels = {"bench": "paged"}

    def labelled(i: int) -> dict[str, Any]:
        obj = cm(f"p{i:02}", namespace, v=str(i))
        obj["metadata"]["labels"] = labels
        return obj

    await asyncio.gather(*(rt_client.create(CONFIGMAPS, labelled(i)) for i in range(25)))
    whole = await rt_client.list_page(
        CONFIGMAPS, namespace, label_selector=labels, limit=10, resource_version="0"
    )
    assert len(whole.items) == 25 and whole.continue_token is None  # the watch cache ignores the limit
    transformed: list[str] = []

    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        transformed.append(obj["metadata"]["name"])
        obj["data"] = {"kept": obj["data"]["v"]}
        return obj

    inf = SharedInformer(
        rt_client,
        CONFIGMAPS,
        namespace=namespace,
        label_selector=labels,
        transform=transform,
        options=ReflectorOptions(watchdog_timeout=20, page_size=10),
    )
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=30)
        assert inf.reflector.lists == 1 and inf.reflector.list_pages == 3  # 10 + 10 + 5
        assert sorted(transformed) == [f"p{i:02}" for i in range(25)]
        assert {o["metadata"]["name"]: o["data"] for o in inf.store.values()} == {
            f"p{i:02}": {"kept": str(i)} for i in range(25)
        }
    finally:
        await inf.stop()
