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
    ConflictError,
    GenerationChanged,
    LabelsChanged,
    Manager,
    ManagerOptions,
    ReflectorOptions,
    Request,
    ResourceRef,
    Result,
    RunnableFailed,
    TerminalError,
    requests_for_owner,
)
from jangar.runtime.controller import ControllerOptions
from jangar.runtime.ratelimiter import ItemExponentialFailureRateLimiter
from jangar.runtime.resources import CONFIGMAPS
from jangar.runtime.testing import FakeClock
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
    clock = FakeClock()
    times: list[float] = []

    async def reconcile(req: Request) -> Result:
        times.append(clock.now())
        if len(times) < 4:
            raise RuntimeError("transient")
        return Result()

    Builder(manager).for_(WIDGETS).with_options(
        rate_limiter=lambda: ItemExponentialFailureRateLimiter[Request](0.05, 10), clock=clock
    ).complete(reconcile)
    fake.put(COLL, widget("w"))
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        task = await run(manager)
        for n, delay in enumerate((0.05, 0.1, 0.2), start=1):
            await eventually(lambda n=n: len(times) == n and clock.waiters == 1)  # type: ignore[misc]
            clock.step(delay * 0.99)
            await asyncio.sleep(0.02)
            assert len(times) == n  # not before the backoff delay
            assert clock.step_to_next_timer()
        await eventually(lambda: len(times) == 4)
    failures = [e for e in logs if e["event"] == "reconcile failed"]
    assert [e["retries"] for e in failures] == [1, 2, 3]
    assert all(e["controller"] == "widget" and e["request"] == "ns/w" for e in failures)
    assert len({e["reconcile_id"] for e in failures}) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.05, 0.1, 0.2])
    get = manager.metrics.registry.get_sample_value
    assert get("controller_runtime_reconcile_errors_total", {"controller": "widget"}) == 3
    assert get("controller_runtime_reconcile_total", {"controller": "widget", "result": "success"}) == 1
    assert clock.waiters == 0  # success forgets: no further retries
    manager.request_stop()
    await task


async def test_conflicts_are_quiet_rate_limited_retries(manager: Manager, fake: FakeApiServer) -> None:
    clock = FakeClock()
    calls = 0

    async def reconcile(req: Request) -> Result:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConflictError(409, "Conflict", "the object has been modified")
        return Result()

    Builder(manager).for_(WIDGETS).with_options(
        rate_limiter=lambda: ItemExponentialFailureRateLimiter[Request](1, 10), clock=clock
    ).complete(reconcile)
    fake.put(COLL, widget("w"))
    with structlog.testing.capture_logs() as logs:
        task = await run(manager)
        await eventually(lambda: calls == 1 and clock.waiters == 1)
        clock.step(1)  # first retry after the limiter's base delay
        await eventually(lambda: calls == 2 and clock.waiters == 1)
        clock.step(1.9)
        await asyncio.sleep(0.02)
        assert calls == 2  # the second retry backs off exponentially (2 s)
        assert clock.next_timer_at() == pytest.approx(clock.now() + 0.1)
        assert clock.step_to_next_timer()
        await eventually(lambda: calls == 3)
    conflicts = [e for e in logs if e["event"] == "conflict, retrying"]
    assert [e["log_level"] for e in conflicts] == ["debug", "debug"]
    assert [e["retries"] for e in conflicts] == [1, 2]
    assert not any("exc_info" in e for e in conflicts)
    assert not [e for e in logs if e["log_level"] in ("error", "warning")]
    get = manager.metrics.registry.get_sample_value
    assert get("controller_runtime_reconcile_errors_total", {"controller": "widget"}) == 2
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

    clock = FakeClock()
    Builder(manager).for_(WIDGETS).with_options(clock=clock).complete(reconcile)
    fake.put(COLL, widget("term"))
    fake.put(COLL, widget("later"))
    task = await run(manager)
    for n in (1, 2, 3):
        await eventually(lambda n=n: calls["later"] == n and clock.waiters == 1)  # type: ignore[misc]
        clock.step(0.1)
    await eventually(lambda: calls["later"] == 4)
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
    with pytest.raises(TypeError):
        Builder(manager).with_options(max_concurent_reconciles=2)  # type: ignore[call-arg]
    b = Builder(manager).for_(CONFIGMAPS).with_options(reconcile_timeout=5, max_concurrent_reconciles=2)
    ctrl = b.with_options(reconcile_timeout=None).named("cm").complete(reconcile)
    assert ctrl.options.reconcile_timeout is None and ctrl.options.max_concurrent_reconciles == 2
    assert ctrl.options.cache_sync_timeout == ControllerOptions().cache_sync_timeout


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


class _Recording:
    def __init__(self, name: str, log: list[str], fail_start: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail_start = fail_start
        self.need_leader_election = False

    async def start(self) -> None:
        if self.fail_start:
            raise OSError("port 9999 already in use")
        self.log.append(f"start {self.name}")

    async def stop(self, timeout: float) -> None:
        self.log.append(f"stop {self.name}")


def _failure_logs(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "runnable failed, stopping the manager"]


async def test_a_runnable_whose_start_raises_stops_the_manager(manager: Manager) -> None:
    steps: list[str] = []
    manager.add(_Recording("first", steps))
    manager.add(_Recording("broken", steps, fail_start=True))
    manager.add(_Recording("never", steps))
    with structlog.testing.capture_logs() as logs, pytest.raises(RunnableFailed) as info:
        await asyncio.wait_for(manager.start(), 5)
    assert info.value.runnable == "broken" and isinstance(info.value.__cause__, OSError)
    assert steps == ["start first", "stop first"]
    (failure,) = _failure_logs(logs)
    assert failure["log_level"] == "error" and failure["runnable"] == "broken"
    assert "port 9999 already in use" in failure["error"]


async def test_a_crashing_background_runnable_stops_the_manager_gracefully(
    manager: Manager, fake: FakeApiServer
) -> None:
    finished: list[str] = []

    async def reconcile(req: Request) -> Result:
        await asyncio.sleep(0.2)
        finished.append(req.name)
        return Result()

    Builder(manager).for_(WIDGETS).complete(reconcile)
    fake.put(COLL, widget("w"))

    async def sync_loop() -> None:
        await asyncio.sleep(0.05)
        raise KeyError("missing-config")

    manager.add_func(sync_loop, name="sync-loop", need_leader_election=False)
    with structlog.testing.capture_logs() as logs, pytest.raises(RunnableFailed, match="sync-loop"):
        await asyncio.wait_for(manager.start(), 5)
    assert finished == ["w"]  # the in-flight reconcile was allowed to finish
    (failure,) = _failure_logs(logs)
    assert failure["runnable"] == "sync-loop" and "missing-config" in failure["error"]


async def test_a_dead_controller_worker_stops_the_manager(manager: Manager, fake: FakeApiServer) -> None:
    async def reconcile(req: Request) -> Result:
        return Result()

    ctrl = Builder(manager).for_(WIDGETS).complete(reconcile)

    async def broken_get() -> Request:
        raise RuntimeError("queue bug")

    ctrl.queue.get = broken_get  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs, pytest.raises(RunnableFailed) as info:
        await asyncio.wait_for(manager.start(), 5)
    assert info.value.runnable == "widget" and "queue bug" in str(info.value)
    assert len(_failure_logs(logs)) == 1
