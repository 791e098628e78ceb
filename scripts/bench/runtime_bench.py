#!/usr/bin/env python3
"""Benchmark jangar.runtime against a real kube-apiserver + etcd.

Prints numbers; it is not a timed test. For each N it measures, with a trivial reconciler
that reads the object from the cache and writes ``status.observedGeneration`` through the
status subresource:

* reconciles per second (successful reconciles / time from first create to last status);
* create-to-status latency p50/p99 (client-side monotonic timestamps: sent create -> the
  observer's informer sees the status; creationTimestamp has 1 s resolution);
* time to sync a cold cache of N objects, and resident memory per 10,000 cached objects
  (RSS delta of a fresh informer, managedFields stripped).

Usage::

    .venv/bin/python scripts/bench/runtime_bench.py --sizes 1000 10000            # starts a local cluster
    .venv/bin/python scripts/bench/runtime_bench.py --kubeconfig kc --sizes 1000  # existing cluster
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jangar.runtime import (
    Builder,
    CacheOptions,
    Client,
    FuncHandler,
    GenerationChanged,
    Manager,
    ManagerOptions,
    NotFoundError,
    Request,
    ResourceRef,
    Result,
    SharedInformer,
    configure_logging,
    strip_managed_fields,
)
from jangar.runtime.resources import CUSTOM_RESOURCE_DEFINITIONS, NAMESPACES

GROUP = "bench.jangar.dev"
WIDGETS = ResourceRef(GROUP, "v1", "Widget", "widgets")
PAYLOAD = "x" * 900  # ~1 KiB spec, as in the benchmark design


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


CRD = {
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
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
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


async def wait_watchable(client: Client) -> None:
    """Wait until a watch on a freshly created CRD delivers events.

    Right after a CRD is established the API server's watch cache for it is still starting,
    and the first watches stall for ~2 s; without this the first objects of a run on a fresh
    cluster would show that start-up cost as reconcile latency.
    """
    ns = "default"
    probe = f"probe-{int(time.time() * 1000)}"
    listed = await client.list_page(WIDGETS, ns, limit=1)
    seen = asyncio.Event()

    async def watch() -> None:
        async for event in client.watch(
            WIDGETS, ns, resource_version=listed.resource_version, idle_timeout=60
        ):
            if event.object.get("metadata", {}).get("name") == probe:
                seen.set()
                return

    task = asyncio.create_task(watch())
    await client.create(WIDGETS, {"metadata": {"name": probe, "namespace": ns}, "spec": {}})
    await asyncio.wait_for(seen.wait(), 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.delete(WIDGETS, probe, ns, ignore_not_found=True)


async def ensure_crd(client: Client) -> None:
    try:
        await client.create(CUSTOM_RESOURCE_DEFINITIONS, CRD)
    except Exception as exc:
        if getattr(exc, "status", None) != 409:
            raise
    deadline = time.monotonic() + 60
    while True:
        try:
            await client.list_page(WIDGETS, limit=1)
            await wait_watchable(client)
            return
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def run_size(
    kubeconfig: str, n: int, workers: int, create_concurrency: int, rate: float | None = None
) -> dict[str, Any]:
    ns = f"bench-{n}-{int(time.time())}"
    gen_client = await Client.from_kubeconfig(kubeconfig, timeout=60)
    ctl_client = await Client.from_kubeconfig(kubeconfig, timeout=60, field_manager="bench")
    obs_client = await Client.from_kubeconfig(kubeconfig, timeout=60)
    await ensure_crd(gen_client)
    await gen_client.create(NAMESPACES, {"metadata": {"name": ns}})

    sent: dict[str, float] = {}
    status_seen: dict[str, float] = {}

    def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        name = new["metadata"]["name"]
        if name not in status_seen and (new.get("status") or {}).get("observedGeneration"):
            status_seen[name] = time.monotonic()

    observer = SharedInformer(obs_client, WIDGETS, namespace=ns, resync_period=None)
    observer.add_event_handler(FuncHandler(update=on_update))
    observer.start()
    await observer.wait_for_sync(60)

    mgr = Manager(
        ctl_client,
        ManagerOptions(bind_address=None, cache=CacheOptions(namespaces=[ns], resync_period=None)),
    )

    async def reconcile(req: Request) -> Result:
        obj = mgr.cache.get(WIDGETS, req.name, req.namespace, copy=False)
        if obj is None:
            return Result()
        gen = obj["metadata"].get("generation", 1)
        if (obj.get("status") or {}).get("observedGeneration") == gen:
            return Result()
        await mgr.client.patch_status(
            WIDGETS, req.name, {"status": {"observedGeneration": gen}}, namespace=ns
        )
        return Result()

    Builder(mgr).for_(WIDGETS, GenerationChanged()).with_options(max_concurrent_reconciles=workers).complete(
        reconcile
    )
    mgr_task = asyncio.create_task(mgr.start())
    await mgr.cache.wait_for_sync(60)

    sem = asyncio.Semaphore(create_concurrency)

    async def create(i: int) -> None:
        name = f"w-{i:06d}"
        async with sem:
            sent[name] = time.monotonic()
            await gen_client.create(
                WIDGETS,
                {"metadata": {"name": name, "namespace": ns}, "spec": {"index": i, "payload": PAYLOAD}},
            )

    t0 = time.monotonic()
    cpu0 = time.process_time()
    if rate:  # paced creates: latency when the server is not saturated
        pending = []
        for i in range(n):
            pending.append(asyncio.create_task(create(i)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*pending)
    else:
        await asyncio.gather(*(create(i) for i in range(n)))
    t_created = time.monotonic()
    deadline = t_created + max(120.0, n / 20)
    while len(status_seen) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t_done = time.monotonic()
    get = mgr.metrics.registry.get_sample_value
    successes = get("controller_runtime_reconcile_total", {"controller": "widget", "result": "success"}) or 0
    errors = get("controller_runtime_reconcile_errors_total", {"controller": "widget"}) or 0
    latencies = [status_seen[k] - sent[k] for k in status_seen]
    mgr.request_stop()
    await mgr_task

    # Backlog drain: with the controller stopped, bump every object's generation; then start
    # a fresh manager (cold cache) and time until every status caught up. This isolates
    # reconcile throughput from the create storm (one status PATCH per reconcile).
    async def bump(i: int) -> None:
        async with sem:
            await gen_client.patch(WIDGETS, f"w-{i:06d}", {"spec": {"round": 2}}, namespace=ns)

    await asyncio.gather(*(bump(i) for i in range(n)))
    caught_up: set[str] = set()

    def on_update2(old: dict[str, Any], new: dict[str, Any]) -> None:
        if (new.get("status") or {}).get("observedGeneration") == 2:
            caught_up.add(new["metadata"]["name"])

    observer.add_event_handler(FuncHandler(update=on_update2))
    mgr2 = Manager(
        ctl_client,
        ManagerOptions(bind_address=None, cache=CacheOptions(namespaces=[ns], resync_period=None)),
    )
    mgr = mgr2
    Builder(mgr2).for_(WIDGETS, GenerationChanged()).with_options(max_concurrent_reconciles=workers).complete(
        reconcile
    )
    t_b0 = time.monotonic()
    mgr2_task = asyncio.create_task(mgr2.start())
    await mgr2.cache.wait_for_sync(600)
    t_b_synced = time.monotonic()
    deadline = time.monotonic() + max(120.0, n / 10)
    while len(caught_up) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t_b1 = time.monotonic()
    backlog_reconciles = (
        mgr2.metrics.registry.get_sample_value(
            "controller_runtime_reconcile_total", {"controller": "widget", "result": "success"}
        )
        or 0
    )
    mgr2.request_stop()
    await mgr2_task
    await observer.stop()
    del observer

    cpu_seconds = time.process_time() - cpu0
    wall_seconds = time.monotonic() - t0
    cold = await cold_caches(kubeconfig, ns)

    await gen_client.delete(NAMESPACES, ns, ignore_not_found=True)
    for c in (gen_client, ctl_client, obs_client):
        await c.close()
    backlog_rate = backlog_reconciles / (t_b1 - t_b_synced) if t_b1 > t_b_synced else None
    return {
        "objects": n,
        "workers": workers,
        "paced_create_rate": rate,
        "create_seconds": round(t_created - t0, 2),
        "creates_per_second": round(n / (t_created - t0), 1),
        "statuses_observed": len(status_seen),
        "reconciles_success": int(successes),
        "reconcile_errors": int(errors),
        "reconciles_per_second": round(successes / (t_done - t0), 1),
        "create_to_status_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "create_to_status_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "create_to_status_mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "backlog_objects_caught_up": len(caught_up),
        "backlog_cache_sync_seconds": round(t_b_synced - t_b0, 2),
        "backlog_drain_seconds": round(t_b1 - t_b_synced, 2),
        "backlog_reconciles_per_second": round(backlog_rate, 1) if backlog_rate else None,
        "bench_process_cpu_seconds": round(cpu_seconds, 1),
        "bench_wall_seconds": round(wall_seconds, 1),
        "cold_cache": cold,
    }


async def cold_caches(kubeconfig: str, ns: str) -> dict[str, Any]:
    """Run the cold-sync measurement in fresh processes, with and without managedFields."""
    cold: dict[str, Any] = {}
    for keep in (False, True):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "cold-sync",
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            ns,
            *(("--keep-managed-fields",) if keep else ()),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        key = "with_managed_fields" if keep else "managed_fields_stripped"
        cold[key] = json.loads(out.decode().strip().splitlines()[-1])
    return cold


async def create_widgets(client: Client, ns: str, n: int, concurrency: int) -> float:
    """Create Widgets w-000000 … in `ns`, `concurrency` at a time; the seconds it took."""
    sem = asyncio.Semaphore(concurrency)

    async def create(i: int) -> None:
        async with sem:
            await client.create(
                WIDGETS,
                {
                    "metadata": {"name": f"w-{i:06d}", "namespace": ns},
                    "spec": {"index": i, "payload": PAYLOAD},
                },
            )

    t0 = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(n)))
    return time.monotonic() - t0


async def memory_only(kubeconfig: str, n: int, create_concurrency: int) -> dict[str, Any]:
    """Create N objects (no controller), then measure cold sync time and cache memory."""
    ns = f"bench-mem-{n}-{int(time.time())}"
    client = await Client.from_kubeconfig(kubeconfig, timeout=60, field_manager="bench")
    await ensure_crd(client)
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    created = await create_widgets(client, ns, n, create_concurrency)
    cold = await cold_caches(kubeconfig, ns)
    await client.delete(NAMESPACES, ns, ignore_not_found=True)
    await client.close()
    return {"objects": n, "create_seconds": round(created, 1), "cold_cache": cold}


async def cold_sync(kubeconfig: str, namespace: str, keep_managed_fields: bool) -> dict[str, Any]:
    """Time a fresh informer's initial sync and measure the resident memory its cache holds."""
    client = await Client.from_kubeconfig(kubeconfig, timeout=120)
    await client.list_page(WIDGETS, namespace, limit=1)  # warm the connection and lazy imports
    gc.collect()
    rss_before = rss_bytes()
    transform = None if keep_managed_fields else strip_managed_fields
    inf = SharedInformer(client, WIDGETS, namespace=namespace, resync_period=None, transform=transform)
    t0 = time.monotonic()
    inf.start()
    await inf.wait_for_sync(600)
    seconds = time.monotonic() - t0
    gc.collect()
    rss_after = rss_bytes()
    cached = len(inf.store)
    await inf.stop()
    await client.close()
    delta = rss_after - rss_before
    return {
        "objects": cached,
        "sync_seconds": round(seconds, 2),
        "rss_delta_mib": round(delta / 2**20, 1),
        "rss_mib_per_10k_objects": round(delta / 2**20 / cached * 10_000, 1) if cached else None,
        "process_rss_mib": round(rss_after / 2**20, 1),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "cold-sync":
        sub = argparse.ArgumentParser()
        sub.add_argument("cmd")
        sub.add_argument("--kubeconfig", required=True)
        sub.add_argument("--namespace", required=True)
        sub.add_argument("--keep-managed-fields", action="store_true")
        opts = sub.parse_args()
        configure_logging(json=True, level="warning")
        result = asyncio.run(cold_sync(opts.kubeconfig, opts.namespace, opts.keep_managed_fields))
        print(json.dumps(result), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting a local one")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, default=16, help="max_concurrent_reconciles")
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--memory-only", action="store_true", help="only cold sync time and cache memory")
    parser.add_argument("--rate", type=float, help="pace creates at this many per second (default: flat out)")
    args = parser.parse_args()
    configure_logging(json=True, level="warning")

    cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        from jangar.dev.cluster import LocalCluster

        cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="runtime-bench-"))).up()
        kubeconfig = str(cluster.kubeconfig)
    try:
        print(
            json.dumps(
                {"python": sys.version.split()[0], "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
            ),
            flush=True,
        )
        for n in args.sizes:
            if args.memory_only:
                result = asyncio.run(memory_only(kubeconfig, n, args.create_concurrency))
            else:
                result = asyncio.run(
                    run_size(kubeconfig, n, args.workers, args.create_concurrency, args.rate)
                )
            result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(result), flush=True)
    finally:
        if cluster is not None:
            cluster.down()


if __name__ == "__main__":
    main()
