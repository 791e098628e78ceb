import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.ratelimiter import ItemExponentialFailureRateLimiter
from jangar.runtime.testing import FakeClock
from jangar.runtime.workqueue import LOW_PRIORITY, QueueShutDown, WorkQueue


async def test_dedupes_queued_keys() -> None:
    q = WorkQueue[str]()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert q.get_nowait() is None


async def test_key_in_flight_is_not_handed_out_again_until_done() -> None:
    q = WorkQueue[str]()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # dirty but processing: not ready
    assert q.get_nowait() is None
    q.done("a")
    assert len(q) == 1  # re-queued exactly once
    assert await q.get() == "a"
    q.done("a")
    assert q.get_nowait() is None


async def test_fifo_within_priority_and_low_priority_last() -> None:
    q = WorkQueue[str]()
    q.add("init1", LOW_PRIORITY)
    q.add("init2", LOW_PRIORITY)
    q.add("x")
    q.add("y")
    q.add("init2", 0)  # a real change to a low-priority key promotes it, keeps one copy
    got = [q.get_nowait() for _ in range(4)]
    assert got == ["x", "y", "init2", "init1"]
    assert q.get_nowait() is None


async def test_get_blocks_until_add() -> None:
    q = WorkQueue[str]()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.add("k")
    assert await asyncio.wait_for(getter, 1) == "k"


async def test_cancelled_getter_does_not_swallow_the_wakeup() -> None:
    q = WorkQueue[str]()
    g1 = asyncio.create_task(q.get())
    g2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")  # wakes g1
    g1.cancel()
    assert await asyncio.wait_for(g2, 1) == "k"


async def test_add_after_delays_and_earlier_time_wins() -> None:
    clock = FakeClock()
    q = WorkQueue[str](clock=clock)
    q.add_after("a", 0.3)
    q.add_after("a", 0.05)  # earlier wins
    q.add_after("a", 1.0)  # later ignored
    assert q.waiting == 1 and len(q) == 0
    assert clock.waiters == 1  # the 0.3 s timer was cancelled, the 1.0 s one never made
    clock.step(0.049)
    assert q.get_nowait() is None
    clock.step(0.001)
    assert q.get_nowait() == "a"
    q.done("a")
    clock.step(1.0)
    assert q.get_nowait() is None  # the 0.3 s timer was replaced, not kept


async def test_add_after_wakes_a_blocked_getter_when_the_clock_steps() -> None:
    clock = FakeClock()
    q = WorkQueue[str](clock=clock)
    getter = asyncio.create_task(q.get())
    q.add_after("a", 5)
    await asyncio.sleep(0)
    assert not getter.done()
    clock.step(5)
    assert await asyncio.wait_for(getter, 1) == "a"


async def test_add_after_with_the_real_clock() -> None:
    q = WorkQueue[str]()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.05)
    assert await asyncio.wait_for(q.get(), 2) == "a"
    assert loop.time() - start >= 0.04


async def test_rate_limited_adds_back_off_exponentially() -> None:
    clock = FakeClock()
    q = WorkQueue[str](ItemExponentialFailureRateLimiter[str](0.02, 10.0), clock=clock)
    for delay in (0.02, 0.04, 0.08):
        q.add_rate_limited("k")
        assert clock.next_timer_at() == pytest.approx(clock.now() + delay)
        clock.step(delay * 0.99)
        assert q.get_nowait() is None
        assert clock.step_to_next_timer()
        assert q.get_nowait() == "k"
        q.done("k")
    assert q.num_requeues("k") == 3
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_hands_out_queued_keys_then_raises_and_ignores_adds() -> None:
    clock = FakeClock()
    q = WorkQueue[str](clock=clock)
    q.add("a")
    q.add_after("delayed", 0.01)
    q.shutdown()
    assert clock.waiters == 0  # the delayed add's timer was cancelled
    q.add("b")
    assert await q.get() == "a"
    with pytest.raises(QueueShutDown):
        await q.get()
    clock.step(1)
    assert q.get_nowait() is None  # delayed keys are dropped on shutdown


async def test_shutdown_wakes_blocked_getters() -> None:
    q = WorkQueue[str]()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(r, QueueShutDown) for r in results)


async def test_shutdown_with_drain_waits_for_in_flight_work() -> None:
    q = WorkQueue[str]()
    finished: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            await asyncio.sleep(0.05)
            finished.append(key)
            q.done(key)

    for k in "abc":
        q.add(k)
    workers = [asyncio.create_task(worker()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert await q.shutdown_with_drain(timeout=2) is True
    assert sorted(finished) == ["a", "b", "c"]
    await asyncio.gather(*workers)


async def test_shutdown_with_drain_times_out_on_stuck_worker() -> None:
    q = WorkQueue[str]()
    q.add("a")
    await q.get()  # never done
    assert await q.shutdown_with_drain(timeout=0.05) is False


@settings(max_examples=30, deadline=None)
@given(
    ops=st.lists(st.tuples(st.sampled_from("abcde"), st.floats(0, 0.003)), min_size=1, max_size=60),
    workers=st.integers(1, 6),
)
def test_property_no_concurrent_processing_and_every_add_is_seen(
    ops: list[tuple[str, float]], workers: int
) -> None:
    """Random adds racing random workers: a key is never processed twice at once, and every
    add is followed by a processing of that key that starts after the add."""

    async def scenario() -> None:
        q = WorkQueue[str]()
        in_flight: set[str] = set()
        last_add: dict[str, int] = {}
        last_start: dict[str, int] = {}
        clock = [0]

        async def worker() -> None:
            while True:
                try:
                    key = await q.get()
                except QueueShutDown:
                    return
                assert key not in in_flight, f"{key} processed concurrently"
                in_flight.add(key)
                clock[0] += 1
                last_start[key] = clock[0]
                await asyncio.sleep(random.random() * 0.002)
                in_flight.discard(key)
                q.done(key)

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        for key, pause in ops:
            clock[0] += 1
            last_add[key] = clock[0]
            q.add(key)
            await asyncio.sleep(pause)
        assert await q.shutdown_with_drain(timeout=5)
        await asyncio.gather(*tasks)
        for key, added_at in last_add.items():
            assert last_start[key] > added_at, f"add of {key} at {added_at} never processed"

    asyncio.run(scenario())


async def test_metrics_count_adds_depth_retries_and_in_flight_work() -> None:
    m = RuntimeMetrics()
    clock = FakeClock()
    q = WorkQueue[str](
        ItemExponentialFailureRateLimiter[str](0.01, 1),
        name="widgets",
        metrics=m.queue_metrics("widgets"),
        clock=clock,
    )
    q.add("a")
    q.add("a")  # deduped: not counted
    q.add("b")
    labels = {"name": "widgets", "controller": "widgets"}
    get = m.registry.get_sample_value
    assert get("workqueue_adds_total", labels) == 2
    assert get("workqueue_depth", {**labels, "priority": ""}) == 2
    await q.get()
    assert get("workqueue_depth", {**labels, "priority": ""}) == 1
    clock.step(2.5)
    assert get("workqueue_unfinished_work_seconds", labels) == 2.5
    assert get("workqueue_longest_running_processor_seconds", labels) == 2.5
    q.done("a")
    assert get("workqueue_work_duration_seconds_sum", labels) == 2.5
    assert get("workqueue_unfinished_work_seconds", labels) == 0
    assert get("workqueue_work_duration_seconds_count", labels) == 1
    q.add_rate_limited("a")
    assert get("workqueue_retries_total", labels) == 1
    q.shutdown()
