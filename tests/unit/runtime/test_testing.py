"""The public test doubles in jangar.runtime.testing behave like the real pieces."""

import asyncio
from typing import Any

import pytest

from jangar.runtime import InformerNotRegistered, ResourceRef, owner_reference
from jangar.runtime.cache import CacheReader
from jangar.runtime.events import Recorder
from jangar.runtime.resources import CONFIGMAPS
from jangar.runtime.store import index_by_label
from jangar.runtime.testing import FakeCache, FakeClock, FakeEventRecorder, RecordedEvent

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")
NODES = ResourceRef("", "v1", "Node", "nodes", namespaced=False)


def obj(name: str, ns: str | None = "ns", **meta: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, **meta}
    if ns is not None:
        m["namespace"] = ns
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": m}


def test_fake_clock_fires_due_timers_in_order_each_at_its_own_time() -> None:
    clock = FakeClock(start=0)
    seen: list[tuple[str, float]] = []
    clock.call_later(2, lambda: seen.append(("b", clock.now())))
    clock.call_later(1, lambda: seen.append(("a", clock.now())))
    cancelled = clock.call_later(1.5, lambda: seen.append(("x", clock.now())))
    cancelled.cancel()

    def chained() -> None:  # scheduled inside the step and still due within it
        seen.append(("c", clock.now()))
        clock.call_later(0.5, lambda: seen.append(("d", clock.now())))

    clock.call_later(2.5, chained)
    assert clock.waiters == 3
    assert clock.step(0.5) == 0
    assert clock.step(10) == 4
    assert seen == [("a", 1), ("b", 2), ("c", 2.5), ("d", 3)]
    assert clock.now() == 10.5
    assert clock.waiters == 0 and not clock.has_waiters()
    with pytest.raises(ValueError):
        clock.step(-1)


async def test_fake_clock_sleep_wakes_on_step_and_cancels_cleanly() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(30))
    await asyncio.sleep(0)
    assert clock.waiters == 1 and not sleeper.done()
    assert clock.next_timer_at() == clock.now() + 30
    assert clock.step_to_next_timer()
    await asyncio.wait_for(sleeper, 1)
    other = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    other.cancel()
    with pytest.raises(asyncio.CancelledError):
        await other
    assert clock.waiters == 0
    assert not clock.step_to_next_timer()


def test_fake_cache_reads_like_the_real_cache() -> None:
    cache = FakeCache(WIDGETS, CONFIGMAPS)
    reader: CacheReader = cache  # it satisfies the protocol reconcilers use
    owner = obj("w", uid="u1")
    child = {"metadata": {"name": "c", "namespace": "ns", "labels": {"app": "x"}}, "data": {"k": "v"}}
    child["metadata"]["ownerReferences"] = [owner_reference(owner, WIDGETS)]
    cache.add(WIDGETS, owner, obj("w2", ns="other", labels={"app": "x"}))
    cache.add(CONFIGMAPS, child)
    child["data"]["k"] = "changed after add"  # add() copies

    got = reader.get(CONFIGMAPS, "c", "ns")
    assert got is not None and got["data"]["k"] == "v"
    got["data"]["k"] = "mutated"  # reads copy too
    assert reader.get(CONFIGMAPS, "c", "ns")["data"]["k"] == "v"  # type: ignore[index]
    assert reader.get(CONFIGMAPS, "c", "other") is None
    assert [o["metadata"]["name"] for o in reader.list(WIDGETS)] == ["w", "w2"]
    assert [o["metadata"]["name"] for o in reader.list(WIDGETS, "other")] == ["w2"]
    assert [o["metadata"]["name"] for o in reader.list(WIDGETS, labels={"app": "x"})] == ["w2"]
    assert [o["metadata"]["name"] for o in reader.list(CONFIGMAPS, index=("controller-uid", "u1"))] == ["c"]
    assert reader.list(CONFIGMAPS, "elsewhere", index=("controller-uid", "u1")) == []
    assert [o["metadata"]["name"] for o in reader.list(CONFIGMAPS, index=("owner-uid", "u1"))] == ["c"]

    with pytest.raises(KeyError):
        reader.list(WIDGETS, index=("by-app", "x"))  # like the real store: add the index first
    cache.add_index(WIDGETS, "by-app", index_by_label("app"))  # existing objects are indexed
    assert [o["metadata"]["name"] for o in reader.list(WIDGETS, index=("by-app", "x"))] == ["w2"]

    cache.update(WIDGETS, obj("w2", ns="other", labels={"app": "y"}))  # indexes follow updates
    assert reader.list(WIDGETS, index=("by-app", "x")) == []
    assert cache.delete(WIDGETS, "w", "ns") is not None
    assert reader.get(WIDGETS, "w", "ns") is None
    assert reader.list(CONFIGMAPS, copy=False)[0] is reader.list(CONFIGMAPS, copy=False)[0]


def test_fake_cache_cluster_scoped_unregistered_and_strict() -> None:
    cache = FakeCache()
    cache.add(NODES, obj("n1", ns=None))
    assert cache.get(NODES, "n1") is not None
    assert cache.get(NODES, "n1", "ignored-namespace") is not None  # cluster-scoped: namespace ignored
    assert cache.get(WIDGETS, "w", "ns") is None  # unregistered reads as empty
    assert cache.list(WIDGETS, "ns") == []
    with pytest.raises(ValueError):
        cache.add(WIDGETS, obj("no-namespace", ns=None))
    strict = FakeCache(WIDGETS, strict=True)
    assert strict.list(WIDGETS) == []
    with pytest.raises(InformerNotRegistered):
        strict.get(CONFIGMAPS, "c", "ns")
    strict.add(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "ns"}})
    assert strict.get(CONFIGMAPS, "c", "ns") is not None
    strict.clear()
    assert strict.list(CONFIGMAPS) == []


async def test_fake_event_recorder_keeps_events() -> None:
    rec = FakeEventRecorder()
    recorder: Recorder = rec
    recorder.normal(obj("w"), "Created", "made it")
    recorder.warning(obj("w"), "Failed", "boom")
    assert await recorder.flush(1) is True
    assert rec.reasons() == ["Created", "Failed"]
    assert rec.events[1] == RecordedEvent("Widget", "ns", "w", "Warning", "Failed", "boom")
    rec.clear()
    assert rec.events == []
