#!/usr/bin/env python3
"""Micro-benchmarks of jangar.runtime without an API server (tier 1 of the benchmark design).

* work queue add+get+done cycles per second with 1, 10 and 100 workers (no-op work);
* delaying-queue timer accuracy with 10,000 pending delayed keys;
* store upsert and index lookups at 10k / 50k objects;
* informer fan-out: event -> handler latency with 1, 10 and 100 handlers.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jangar.runtime.store import Store, index_by_label
from jangar.runtime.workqueue import QueueShutDown, WorkQueue


async def queue_throughput(workers: int, items: int = 200_000, keys: int = 1000) -> float:
    q: WorkQueue[int] = WorkQueue()
    done = 0

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                k = await q.get()
            except QueueShutDown:
                return
            done += 1
            q.done(k)

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    t0 = time.perf_counter()
    for i in range(items):
        q.add(i % keys if i % 2 else i)  # half deduplicable keys, half unique
        if i % keys == 0:
            await asyncio.sleep(0)
    await q.shutdown_with_drain()
    await asyncio.gather(*tasks)
    return done / (time.perf_counter() - t0)


async def delayed_accuracy(pending: int = 10_000, delay: float = 0.5) -> dict[str, float]:
    q: WorkQueue[int] = WorkQueue()
    loop = asyncio.get_running_loop()
    due: dict[int, float] = {}
    for i in range(pending):
        d = delay + (i % 100) / 1000
        due[i] = loop.time() + d
        q.add_after(i, d)
    lateness = []
    for _ in range(pending):
        k = await q.get()
        lateness.append(loop.time() - due[k])
        q.done(k)
    lateness.sort()
    return {
        "p50_ms": round(lateness[len(lateness) // 2] * 1000, 2),
        "p99_ms": round(lateness[int(len(lateness) * 0.99)] * 1000, 2),
        "max_ms": round(lateness[-1] * 1000, 2),
    }


def store_bench(n: int) -> dict[str, float]:
    store = Store()
    store.add_indexer("app", index_by_label("app"))
    objs = [
        {
            "metadata": {
                "name": f"o{i}",
                "namespace": f"ns{i % 50}",
                "labels": {"app": f"a{i % 100}"},
                "ownerReferences": [{"uid": f"u{i % 500}", "controller": True}],
            }
        }
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for o in objs:
        store.upsert(o)
    upsert_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    lookups = 2000
    for i in range(lookups):
        store.by_index("app", f"a{i % 100}")
    by_index_us = (time.perf_counter() - t0) / lookups * 1e6
    return {
        "objects": n,
        "upsert_us": round(upsert_us, 2),
        "by_index_us": round(by_index_us, 1),
        "objects_per_index_value": n // 100,
    }


async def fanout(handlers: int, events: int = 2000) -> dict[str, Any]:
    """Event -> handler delivery through the informer's per-handler buffers (no server)."""
    from typing import cast

    from jangar.runtime.client import Client
    from jangar.runtime.informer import FuncHandler, SharedInformer
    from jangar.runtime.resources import CONFIGMAPS

    inf = SharedInformer(cast(Client, None), CONFIGMAPS)  # the reflector is never started
    latencies: list[float] = []
    sent: dict[str, float] = {}
    remaining = handlers * events
    finished = asyncio.Event()

    def on_add(obj: dict[str, Any], _: bool) -> None:
        nonlocal remaining
        latencies.append(time.perf_counter() - sent[obj["metadata"]["name"]])
        remaining -= 1
        if remaining == 0:
            finished.set()

    regs = [inf.add_event_handler(FuncHandler(add=on_add)) for _ in range(handlers)]
    for reg in regs:
        reg._start()
    t0 = time.perf_counter()
    for i in range(events):
        name = f"o{i}"
        sent[name] = time.perf_counter()
        inf.apply("ADDED", {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(i)}})
        if i % 50 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(finished.wait(), 60)
    wall = time.perf_counter() - t0
    for reg in regs:
        await reg._stop()
    latencies.sort()
    return {
        "handlers": handlers,
        "deliveries_per_second": round(handlers * events / wall),
        "p50_us": round(statistics.median(latencies) * 1e6, 1),
        "p99_us": round(latencies[int(len(latencies) * 0.99)] * 1e6, 1),
    }


async def main() -> None:
    results: dict[str, Any] = {"queue_cycles_per_second": {}}
    for workers in (1, 10, 100):
        results["queue_cycles_per_second"][workers] = round(await queue_throughput(workers))
    results["delayed_10k_lateness"] = await delayed_accuracy()
    results["store"] = [store_bench(10_000), store_bench(50_000)]
    results["fanout"] = [await fanout(h) for h in (1, 10, 100)]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
