"""A resource cached in several scopes (`ResourceCacheOptions.also`): label selectors cannot express OR,
so each label a controller relies on gets its own informers, and reads are their union."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.runtime.cache import Cache, CacheOptions, CacheScope, InformerNotRegistered, ResourceCacheOptions
from jangar.runtime.client import Client
from jangar.runtime.informer import FuncHandler
from jangar.runtime.resources import ResourceRef
from tests.fakes.apiserver import FakeApiServer

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")
COLL = "example.com/v1/widgets"


def widget(name: str, ns: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
    }


def names(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs)


async def test_scopes_are_a_union_with_their_own_namespaces_and_selectors(
    client: Client, fake: FakeApiServer
) -> None:
    fake.put(COLL, widget("agent-job", "a", run="1"))
    fake.put(COLL, widget("tool-job", "a", tool="1"))
    fake.put(COLL, widget("both", "a", run="1", tool="1"))
    fake.put(COLL, widget("tool-elsewhere", "b", tool="1"))
    fake.put(COLL, widget("agent-elsewhere", "b", run="1"))
    fake.put(COLL, widget("unlabelled", "a"))
    options = CacheOptions(
        by_resource={
            WIDGETS: ResourceCacheOptions(
                namespaces=["a"],
                label_selector="run=1",
                also=(CacheScope(namespaces=["a", "b"], label_selector="tool=1"),),
            )
        }
    )
    cache = Cache(client, options)
    group = cache.informer(WIDGETS)
    assert len(group.all_informers) == 3  # (a, run) + (a, tool) + (b, tool)
    seen: list[str] = []
    cache.add_event_handler(WIDGETS, FuncHandler(add=lambda o, _: seen.append(o["metadata"]["name"])))
    cache.start()
    try:
        assert await cache.wait_for_sync(5)
        assert names(cache.list(WIDGETS, "a")) == ["a/agent-job", "a/both", "a/tool-job"]
        assert names(cache.list(WIDGETS, "b")) == ["b/tool-elsewhere"]
        assert names(cache.list(WIDGETS)) == ["a/agent-job", "a/both", "a/tool-job", "b/tool-elsewhere"]
        assert names(cache.list(WIDGETS, "a", labels={"tool": "1"})) == ["a/both", "a/tool-job"]
        assert cache.get(WIDGETS, "tool-elsewhere", "b") is not None
        assert cache.get(WIDGETS, "agent-elsewhere", "b") is None
        assert cache.get(WIDGETS, "unlabelled", "a") is None
        # Events come from every informer holding the object: `both` is delivered twice.
        assert sorted(seen) == ["agent-job", "both", "both", "tool-elsewhere", "tool-job"]
        with pytest.raises(InformerNotRegistered):
            cache.list(WIDGETS, "c")
    finally:
        await cache.stop()


async def test_a_scope_inherits_the_resource_options(client: Client, fake: FakeApiServer) -> None:
    fake.put(COLL, widget("x", "a", tool="1"))
    fake.put(COLL, widget("y", "z", tool="1"))
    cache = Cache(
        client,
        CacheOptions(
            namespaces=["a"],
            by_resource={
                WIDGETS: ResourceCacheOptions(
                    label_selector="run=1", also=(CacheScope(label_selector="tool=1"),)
                )
            },
        ),
    )
    cache.informer(WIDGETS)
    cache.start()
    try:
        assert await cache.wait_for_sync(5)
        assert names(cache.list(WIDGETS)) == ["a/x"]  # the scope inherits namespaces=["a"]
    finally:
        await cache.stop()
