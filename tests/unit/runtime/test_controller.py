import asyncio
import functools
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import structlog

from jangar.runtime import (
    Builder,
    CacheOptions,
    Client,
    GenerationChanged,
    LabelsChanged,
    Manager,
    ManagerOptions,
    ReflectorOptions,
    Request,
    ResourceRef,
    Result,
    TerminalError,
    requests_for_owner,
)
from jangar.runtime.controller import ControllerOptions
from jangar.runtime.ratelimiter import ItemExponentialFailureRateLimiter
from jangar.runtime.resources import CONFIGMAPS
from tests.fakes.apiserver import FakeApiServer
from tests.support.waiting import eventually as shared_eventually

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")
COLL = "example.com/v1/widgets"
FAST_CACHE = CacheOptions(
    reflector=ReflectorOptions(watchdog_timeout=5, backoff_initial=0.01, backoff_cap=0.05)
)


def widget(name: str, ns: str = "ns", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": ns, **meta},
    }


# The shared `eventually` with this module's bounds: 3 s, polling every 10 ms.
eventually = functools.partial(shared_eventually, timeout=3.0, interval=0.01)


@pytest_asyncio.fixture
async def manager(client: Client) -> AsyncIterator[Manager]:
    mgr = Manager(
        client, ManagerOptions(bind_address="127.0.0.1:0", cache=FAST_CACHE, graceful_shutdown_timeout=2)
    )
    yield mgr
    mgr.request_stop()


async def run(mgr: Manager) -> asyncio.Task[None]:
    task = asyncio.create_task(mgr.start())
    await eventually(lambda: mgr.cache.has_synced() and mgr.http_port is not None)
    return task


def test_owner_mapper_matches_group_and_kind_and_controller_flag() -> None:
    mapper = requests_for_owner(WIDGETS)
    child = {
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "ownerReferences": [
                {
                    "apiVersion": "example.com/v2",
                    "kind": "Widget",
                    "name": "w1",
                    "uid": "1",
                    "controller": True,
                },
                {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w2", "uid": "2"},
                {
                    "apiVersion": "other.com/v1",
                    "kind": "Widget",
                    "name": "w3",
                    "uid": "3",
                    "controller": True,
                },
            ],
        }
    }
    assert list(mapper(child)) == [
        Request("ns", "w1")
    ]  # version ignored; non-controller and other group skipped
    assert sorted(requests_for_owner(WIDGETS, controller_only=False)(child)) == [
        Request("ns", "w1"),
        Request("ns", "w2"),
    ]


def test_predicates() -> None:
    old = widget("a", generation=1, labels={"x": "1"}, resourceVersion="5")
    new = widget("a", generation=1, labels={"x": "2"}, resourceVersion="6")
    assert not GenerationChanged().update(old, new)
    assert LabelsChanged().update(old, new)
    assert GenerationChanged().update(old, widget("a", generation=2))
    assert GenerationChanged().create(new) and GenerationChanged().delete(new)


async def test_owns_reconciles_the_owner_when_a_child_changes(
    manager: Manager, client: Client, fake: FakeApiServer
) -> None:
    seen: list[Request] = []

    async def reconcile(req: Request) -> Result:
        seen.append(req)
        return Result()

    Builder(manager).for_(WIDGETS).owns(CONFIGMAPS).complete(reconcile)
    w = fake.put(COLL, widget("parent"))
    task = await run(manager)
    await eventually(lambda: Request("ns", "parent") in seen)
    seen.clear()
    owner_ref = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "parent",
        "uid": w["metadata"]["uid"],
        "controller": True,
    }
    await client.create(
        CONFIGMAPS, {"metadata": {"name": "child", "namespace": "ns", "ownerReferences": [owner_ref]}}
    )
    await eventually(lambda: Request("ns", "parent") in seen)
    seen.clear()
    await client.patch(CONFIGMAPS, "child", {"data": {"k": "v"}}, namespace="ns")
    await eventually(lambda: Request("ns", "parent") in seen)
    # the reconciler reads the child from the cache, as a deep copy
    child = manager.cache.list(CONFIGMAPS, "ns", index=("controller-uid", w["metadata"]["uid"]))
    assert [c["metadata"]["name"] for c in child] == ["child"]
    child[0]["data"]["k"] = "mutated"
    assert manager.cache.get(CONFIGMAPS, "child", "ns")["data"]["k"] == "v"  # type: ignore[index]
    manager.request_stop()
    await task


async def test_errors_are_retried_with_exponential_backoff(manager: Manager, fake: FakeApiServer) -> None:
    times: list[float] = []

    async def reconcile(req: Request) -> Result:
        times.append(time.monotonic())
        if len(times) < 4:
            raise RuntimeError("transient")
        return Result()

    Builder(manager).for_(WIDGETS).with_options(
        rate_limiter=lambda: ItemExponentialFailureRateLimiter[Request](0.05, 10)
    ).complete(reconcile)
    fake.put(COLL, widget("w"))
    with structlog.testing.capture_logs(
        [structlog.contextvars.merge_contextvars]
    ) as logs:  # keeps slow console tracebacks out of the timing
        task = await run(manager)
        await eventually(lambda: len(times) == 4)
    failures = [e for e in logs if e["event"] == "reconcile failed"]
    assert [e["retries"] for e in failures] == [1, 2, 3]
    assert all(e["controller"] == "widget" and e["request"] == "ns/w" for e in failures)
    assert len({e["reconcile_id"] for e in failures}) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 0.045 <= gaps[0] < gaps[1] < gaps[2]  # 50, 100, 200 ms
    assert gaps[2] >= 0.19
    get = manager.metrics.registry.get_sample_value
    assert get("controller_runtime_reconcile_errors_total", {"controller": "widget"}) == 3
    assert get("controller_runtime_reconcile_total", {"controller": "widget", "result": "success"}) == 1
    await asyncio.sleep(0.3)
    assert len(times) == 4  # success forgets: no further retries
    manager.request_stop()
    await task


async def test_terminal_errors_are_not_retried_and_requeue_after_is_honoured(
    manager: Manager, fake: FakeApiServer
) -> None:
    calls: dict[str, int] = {"term": 0, "later": 0}

    async def reconcile(req: Request) -> Result:
        calls[req.name] += 1
        if req.name == "term":
            raise TerminalError("bad spec")
        return Result(requeue_after=0.1)

    Builder(manager).for_(WIDGETS).complete(reconcile)
    fake.put(COLL, widget("term"))
    fake.put(COLL, widget("later"))
    task = await run(manager)
    await eventually(lambda: calls["later"] >= 3, timeout=2)
    assert calls["term"] == 1
    get = manager.metrics.registry.get_sample_value
    assert get("controller_runtime_terminal_reconcile_errors_total", {"controller": "widget"}) == 1
    assert get("controller_runtime_reconcile_total", {"controller": "widget", "result": "requeue_after"}) >= 3
    manager.request_stop()
    await task


async def test_reconcile_timeout_cancels_and_retries(manager: Manager, fake: FakeApiServer) -> None:
    calls = 0

    async def reconcile(req: Request) -> Result:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)
        return Result()

    Builder(manager).for_(WIDGETS).with_options(reconcile_timeout=0.1).complete(reconcile)
    fake.put(COLL, widget("slow"))
    task = await run(manager)
    await eventually(lambda: calls == 2)
    get = manager.metrics.registry.get_sample_value
    assert get("controller_runtime_reconcile_timeouts_total", {"controller": "widget"}) == 1
    manager.request_stop()
    await task


async def test_concurrency_is_bounded_and_keys_are_exclusive(
    manager: Manager, client: Client, fake: FakeApiServer
) -> None:
    running: set[str] = set()
    peak = 0
    done: list[str] = []

    async def reconcile(req: Request) -> Result:
        nonlocal peak
        assert req.name not in running
        running.add(req.name)
        peak = max(peak, len(running))
        await asyncio.sleep(0.05)
        running.discard(req.name)
        done.append(req.name)
        return Result()

    Builder(manager).for_(WIDGETS).with_options(max_concurrent_reconciles=3).complete(reconcile)
    for i in range(8):
        fake.put(COLL, widget(f"w{i}"))
    task = await run(manager)
    for _ in range(5):  # hammer one key while it is being processed
        await client.patch(WIDGETS, "w0", {"spec": {"n": time.time()}}, namespace="ns")
    await eventually(lambda: len(set(done)) == 8, timeout=5)
    assert peak == 3
    get = manager.metrics.registry.get_sample_value
    assert get("controller_runtime_max_concurrent_reconciles", {"controller": "widget"}) == 3
    manager.request_stop()
    await task


async def test_graceful_shutdown_finishes_in_flight_reconciles(manager: Manager, fake: FakeApiServer) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def reconcile(req: Request) -> Result:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(req.name)
        return Result()

    Builder(manager).for_(WIDGETS).complete(reconcile)
    fake.put(COLL, widget("a"))
    fake.put(COLL, widget("b"))
    task = await run(manager)
    await asyncio.wait_for(started.wait(), 2)
    manager.request_stop()
    await asyncio.wait_for(task, 3)
    assert finished == ["a"]  # in-flight finished, queued "b" was not started


async def test_http_probes_and_metrics(manager: Manager, fake: FakeApiServer) -> None:
    async def reconcile(req: Request) -> Result:
        return Result()

    Builder(manager).for_(WIDGETS).complete(reconcile)
    manager.add_readyz_check("db", lambda: False)
    fake.put(COLL, widget("a"))
    task = await run(manager)
    base = f"http://127.0.0.1:{manager.http_port}"
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/healthz") as r:
            assert r.status == 200 and await r.text() == "ok"
        async with s.get(base + "/readyz") as r:
            body = await r.text()
            assert r.status == 500
            assert "[+]cache-sync ok" in body and "[-]db failed" in body
        async with s.get(base + "/readyz?exclude=db") as r:
            assert r.status == 200
        async with s.get(base + "/readyz/cache-sync") as r:
            assert r.status == 200
        await eventually(
            lambda: (
                manager.metrics.registry.get_sample_value(
                    "controller_runtime_reconcile_total", {"controller": "widget", "result": "success"}
                )
                == 1
            )
        )
        async with s.get(base + "/metrics") as r:
            text = await r.text()
    for name in (
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        "controller_runtime_max_concurrent_reconciles",
        "controller_runtime_active_workers",
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_queue_duration_seconds_bucket",
        "workqueue_work_duration_seconds_bucket",
        "workqueue_retries_total",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "rest_client_requests_total",
    ):
        assert f"\n{name}{{" in text, name
    assert 'controller_runtime_reconcile_total{controller="widget",result="success"} 1.0' in text
    assert 'workqueue_adds_total{controller="widget",name="widget"} 1.0' in text
    assert "_created" not in text
    manager.request_stop()
    await task


async def test_builder_validation(manager: Manager) -> None:
    async def reconcile(req: Request) -> Result:
        return Result()

    with pytest.raises(ValueError, match="for_"):
        Builder(manager).owns(CONFIGMAPS).complete(reconcile)
    Builder(manager).for_(WIDGETS).complete(reconcile)
    with pytest.raises(ValueError, match="already exists"):
        Builder(manager).for_(WIDGETS).complete(reconcile)
    with pytest.raises(ValueError):
        ControllerOptions(max_concurrent_reconciles=0) and Builder(manager).named("x").for_(
            WIDGETS
        ).with_options(max_concurrent_reconciles=0).complete(reconcile)


async def test_healthz_fails_when_a_reflector_task_dies(manager: Manager, fake: FakeApiServer) -> None:
    async def reconcile(req: Request) -> Result:
        return Result()

    Builder(manager).for_(WIDGETS).complete(reconcile)
    task = await run(manager)
    assert [ok for name, ok, _ in await manager.healthz.run() if name == "informers"] == [True]
    informer = manager.cache.informer(WIDGETS).informers[None]
    informer._tasks[0].cancel()
    await asyncio.sleep(0.01)
    assert [ok for name, ok, _ in await manager.healthz.run() if name == "informers"] == [False]
    manager.request_stop()
    await task
