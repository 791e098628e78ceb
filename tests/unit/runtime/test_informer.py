import asyncio
import dataclasses
import functools
from typing import Any

import pytest

from jangar.runtime.client import Client
from jangar.runtime.informer import FuncHandler, SharedInformer
from jangar.runtime.reflector import ReflectorOptions
from jangar.runtime.resources import ResourceRef
from jangar.runtime.store import OWNER_UID_INDEX, Store, index_by_label
from tests.fakes.apiserver import FakeApiServer
from tests.support.waiting import eventually as shared_eventually

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")
COLL = "example.com/v1/widgets"
# watchdog 2 s: the fake sends no bookmarks, so an idle watch is re-opened every `watchdog_timeout`; a
# short one made checks like "exactly one watch" race the reconnect on a loaded machine.
FAST = ReflectorOptions(watchdog_timeout=2.0, backoff_initial=0.01, backoff_cap=0.05)


def widget(name: str, ns: str = "ns", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": ns, **meta},
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    def handler(self) -> FuncHandler:
        return FuncHandler(
            add=lambda o, initial: self.events.append(("add", o["metadata"]["name"], initial)),
            update=lambda old, new: self.events.append(
                ("update", new["metadata"]["name"], new["metadata"]["resourceVersion"])
            ),
            delete=lambda o, unknown: self.events.append(("delete", o["metadata"]["name"], unknown)),
        )


# The shared `eventually` with this module's bounds: 3 s, polling every 10 ms.
eventually = functools.partial(shared_eventually, timeout=3.0, interval=0.01)


def test_store_indexes_follow_updates_and_deletes() -> None:
    store = Store()
    store.add_indexer("app", index_by_label("app"))
    a = widget("a", labels={"app": "x"}, ownerReferences=[{"uid": "u1", "controller": True}])
    store.upsert(a)
    store.upsert(widget("b", ns="other", labels={"app": "x"}))
    assert [o["metadata"]["name"] for o in store.by_index("app", "x")] == ["a", "b"]
    assert store.index_keys("namespace", "other") == ["other/b"]
    assert store.index_keys(OWNER_UID_INDEX, "u1") == ["ns/a"]
    store.upsert(widget("a", labels={"app": "y"}))  # label and owner changed
    assert store.index_keys("app", "x") == ["other/b"]
    assert store.index_keys("app", "y") == ["ns/a"]
    assert store.index_keys(OWNER_UID_INDEX, "u1") == []
    store.delete_key("other/b")
    assert store.index_values("app") == ["y"]
    assert "ns/a" in store and len(store) == 1


async def test_informer_sees_create_update_delete_in_order(client: Client, fake: FakeApiServer) -> None:
    fake.put(COLL, widget("pre", managedFields=[{"manager": "x"}]))
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        assert rec.events == [("add", "pre", True)]
        assert "managedFields" not in inf.store.get("ns/pre")["metadata"]  # type: ignore[index]
        created = await client.create(WIDGETS, widget("w"))
        await client.patch(WIDGETS, "w", {"spec": {"a": 1}}, namespace="ns")
        await client.delete(WIDGETS, "w", "ns")
        await eventually(lambda: len(rec.events) == 4)
        assert [e[:2] for e in rec.events[1:]] == [("add", "w"), ("update", "w"), ("delete", "w")]
        assert rec.events[1][2] is False and rec.events[3][2] is False
        assert int(rec.events[2][2]) > int(created["metadata"]["resourceVersion"])
        fresh = await client.list(WIDGETS, "ns")
        assert sorted(inf.store.keys()) == sorted(f"ns/{o['metadata']['name']}" for o in fresh.items)
    finally:
        await inf.stop()


async def test_410_relists_and_reports_objects_deleted_in_the_gap(
    client: Client, fake: FakeApiServer
) -> None:
    for name in ("keep", "gone", "changed"):
        fake.put(COLL, widget(name))
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        await eventually(lambda: len(fake.watchers) == 1)
        # A gap: the watch dies, changes happen unseen, history is compacted.
        fake.stall_watches()
        fake.remove_silently(COLL, "ns", "gone")
        obj = fake.objects[(COLL, "ns", "changed")]
        obj["spec"] = {"v": 2}
        fake.put(COLL, obj)
        fake.put(COLL, widget("new"))
        fake.compact()
        fake.drop_watches()  # reconnect from the old RV -> 410 -> relist
        await eventually(lambda: inf.reflector.lists == 2)
        await eventually(lambda: ("delete", "gone", True) in rec.events)
        tail = rec.events[3:]
        assert tail[0] == ("delete", "gone", True)  # deletes first, as tombstones
        assert {e[:2] for e in tail[1:]} == {("update", "changed"), ("add", "new")}
        assert sorted(inf.store.keys()) == ["ns/changed", "ns/keep", "ns/new"]
    finally:
        await inf.stop()


async def test_watchdog_reconnects_a_silently_stalled_stream(client: Client, fake: FakeApiServer) -> None:
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        await eventually(lambda: len(fake.watchers) == 1)
        fake.stall_watches()  # connection stays open, nothing arrives
        fake.put(COLL, widget("during-stall"))  # lost to the stalled stream
        await eventually(lambda: inf.reflector.stalls >= 1, timeout=15)
        # The new watch resumes from the last RV, replays the missed event, and no relist happened.
        await eventually(lambda: ("add", "during-stall", False) in rec.events)
        assert inf.reflector.lists == 1
    finally:
        await inf.stop()


async def test_bookmarks_advance_the_resource_version(client: Client, fake: FakeApiServer) -> None:
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        await eventually(lambda: len(fake.watchers) == 1)
        fake.put("example.com/v1/other", widget("elsewhere"))  # bumps the global RV only
        fake.bookmark()
        await eventually(lambda: inf.reflector.last_resource_version == str(fake.current_rv))
        assert fake.requests[-1][2]["allowWatchBookmarks"] == "true"
    finally:
        await inf.stop()


async def test_list_errors_back_off_and_recover(client: Client, fake: FakeApiServer) -> None:
    fake.put(COLL, widget("a"))
    fake.fail_next(6, 500)  # the client retries 4 times, so the reflector sees at least one failure
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=5)
        assert inf.store.keys() == ["ns/a"]
    finally:
        await inf.stop()


async def test_late_handler_gets_initial_adds_and_resync_redelivers(
    client: Client, fake: FakeApiServer
) -> None:
    fake.put(COLL, widget("a"))
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST, resync_period=0.1)
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        rec = Recorder()
        reg = inf.add_event_handler(rec.handler())
        await asyncio.wait_for(reg.wait_for_sync(), 2)
        assert reg.has_synced and rec.events[0] == ("add", "a", True)
        await eventually(lambda: any(e[0] == "update" for e in rec.events))
    finally:
        await inf.stop()


async def test_a_failing_handler_does_not_stop_delivery(client: Client, fake: FakeApiServer) -> None:
    seen: list[str] = []

    def add(obj: Any, _: bool) -> None:
        seen.append(obj["metadata"]["name"])
        raise RuntimeError("boom")

    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    inf.add_event_handler(FuncHandler(add=add))
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        fake.put(COLL, widget("a"))
        fake.put(COLL, widget("b"))
        await eventually(lambda: seen == ["a", "b"])
    finally:
        await inf.stop()


async def test_watch_handles_objects_larger_than_the_read_buffer(client: Client, fake: FakeApiServer) -> None:
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=FAST)
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        await eventually(lambda: len(fake.watchers) == 1)
        big = widget("big")
        big["spec"] = {"blob": "x" * (5 * 2**20)}  # 5 MiB: more than aiohttp's 2 MiB read buffer
        fake.put(COLL, big)
        fake.put(COLL, widget("small"))
        await eventually(lambda: "ns/small" in inf.store, timeout=10)
        assert len(inf.store.get("ns/big")["spec"]["blob"]) == 5 * 2**20  # type: ignore[index]
    finally:
        await inf.stop()


@pytest.mark.parametrize("page_size", [0, 500])
async def test_list_resource_versions(client: Client, fake: FakeApiServer, page_size: int) -> None:
    """Whole lists (page_size 0) follow client-go's rules; paged lists are always consistent reads."""
    fake.put(COLL, widget("a"))
    options = dataclasses.replace(FAST, page_size=page_size)
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=options)
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        await eventually(lambda: len(fake.watchers) == 1)
        fake.stall_watches()
        fake.put(COLL, widget("b"))
        fake.compact()
        fake.drop_watches()  # rewatch from an old version -> 410 -> consistent paginated relist
        await eventually(lambda: inf.reflector.lists == 2)
        await eventually(lambda: len(fake.watchers) == 1)
        fake.fail_next(1, 500, method="GET")  # the next watch fails: relist from the last version
        fake.drop_watches()
        await eventually(lambda: inf.reflector.lists == 3)
    finally:
        await inf.stop()
    lists = [q for method, _, q, _ in fake.requests if method == "GET" and "watch" not in q]
    if page_size:
        assert lists == [{"resourceVersion": "", "limit": "500"}] * 3
        return
    assert lists[0] == {"resourceVersion": "0"}  # watch cache, whole
    assert lists[1] == {"resourceVersion": ""}  # consistent after 410
    assert lists[2] == {"resourceVersion": str(fake.current_rv)}  # "not older than" what we saw


PAGED = dataclasses.replace(FAST, page_size=3)


async def test_a_list_over_several_pages_fills_the_cache_transformed_page_by_page(
    client: Client, fake: FakeApiServer
) -> None:
    for i in range(10):
        fake.put(COLL, widget(f"w{i:02}", managedFields=[{"manager": "x"}]))
    seen_pages: list[int] = []

    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        # Which list request was the last one when this object was transformed: each page must be
        # transformed before the next page is requested.
        seen_pages.append(sum(1 for m, _, q, _ in fake.requests if m == "GET" and "watch" not in q))
        obj["metadata"].pop("managedFields", None)
        return obj

    inf = SharedInformer(client, WIDGETS, namespace="ns", options=PAGED, transform=transform)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        assert sorted(inf.store.keys()) == [f"ns/w{i:02}" for i in range(10)]
        assert all("managedFields" not in o["metadata"] for o in inf.store.values())
        assert inf.reflector.lists == 1 and inf.reflector.list_pages == 4  # 3 + 3 + 3 + 1
        assert seen_pages == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
        await eventually(lambda: len(rec.events) == 10)
        assert {e[0] for e in rec.events} == {"add"}
        lists = [q for m, _, q, _ in fake.requests if m == "GET" and "watch" not in q]
        assert lists[0] == {"resourceVersion": "", "limit": "3"}  # consistent: the watch cache would not page
        assert [q.get("continue") for q in lists] == [None, "3", "6", "9"]
        assert all("resourceVersion" not in q for q in lists[1:])  # a continue carries the snapshot
    finally:
        await inf.stop()


async def test_an_expired_continue_restarts_the_list_from_the_first_page(
    client: Client, fake: FakeApiServer
) -> None:
    for i in range(7):
        fake.put(COLL, widget(f"w{i}"))
    fake.expire_next_continue()  # the second page of the first list gets 410 Expired
    inf = SharedInformer(client, WIDGETS, namespace="ns", options=PAGED)
    rec = Recorder()
    inf.add_event_handler(rec.handler())
    inf.start()
    try:
        assert await inf.wait_for_sync(timeout=3)
        assert sorted(inf.store.keys()) == [f"ns/w{i}" for i in range(7)]
        assert inf.reflector.list_restarts == 1
        assert inf.reflector.lists == 1 and inf.reflector.list_pages == 3  # the abandoned page not counted
        await eventually(lambda: len(rec.events) == 7)
        assert sorted(e[1] for e in rec.events) == [f"w{i}" for i in range(7)]  # each added once
        lists = [q for m, _, q, _ in fake.requests if m == "GET" and "watch" not in q]
        assert lists[:2] == [{"resourceVersion": "", "limit": "3"}, {"limit": "3", "continue": "3"}]
        assert lists[2] == {"resourceVersion": "", "limit": "3"}  # restarted from the first page
        assert [q.get("continue") for q in lists[2:]] == [None, "3", "6"]
    finally:
        await inf.stop()
