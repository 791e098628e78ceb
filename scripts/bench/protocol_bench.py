#!/usr/bin/env python3
"""Controller overhead without etcd: jangar.runtime against the in-memory fake API server.

The fake runs in its own process (its own core), so this measures what the runtime itself
can do: reconciles per second when every reconcile reads the cache and writes one status
PATCH, cold sync time, and the CPU the controller process spends per reconcile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kubernetes_asyncio.client import ApiClient, Configuration  # noqa: E402

from jangar.runtime import (  # noqa: E402
    Builder,
    CacheOptions,
    Client,
    GenerationChanged,
    Manager,
    ManagerOptions,
    Request,
    ResourceRef,
    Result,
    configure_logging,
)

WIDGETS = ResourceRef("bench.jangar.dev", "v1", "Widget", "widgets")
PAYLOAD = "x" * 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(url: str, n: int, workers: int) -> dict[str, object]:
    api = ApiClient(Configuration(host=url))
    client = Client(api, timeout=60)
    sem = asyncio.Semaphore(64)

    async def create(i: int) -> None:
        async with sem:
            await client.create(
                WIDGETS,
                {"metadata": {"name": f"w-{i:06d}", "namespace": "bench"}, "spec": {"payload": PAYLOAD}},
            )

    t0 = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(n)))
    create_seconds = time.monotonic() - t0

    mgr = Manager(client, ManagerOptions(bind_address=None, cache=CacheOptions(resync_period=None)))

    async def reconcile(req: Request) -> Result:
        obj = mgr.cache.get(WIDGETS, req.name, req.namespace, copy=False)
        if obj is None:
            return Result()
        gen = obj["metadata"].get("generation", 1)
        if (obj.get("status") or {}).get("observedGeneration") != gen:
            await mgr.client.patch_status(
                WIDGETS, req.name, {"status": {"observedGeneration": gen}}, namespace=req.namespace
            )
        return Result()

    Builder(mgr).for_(WIDGETS, GenerationChanged()).with_options(max_concurrent_reconciles=workers).complete(
        reconcile
    )
    cpu0 = time.process_time()
    t0 = time.monotonic()
    task = asyncio.create_task(mgr.start())
    await mgr.cache.wait_for_sync(600)
    synced = time.monotonic() - t0
    get = mgr.metrics.registry.get_sample_value
    while (get("controller_runtime_reconcile_total", {"controller": "widget", "result": "success"}) or 0) < n:
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - t0 - synced
    cpu = time.process_time() - cpu0
    mgr.request_stop()
    await task
    await api.close()
    return {
        "objects": n,
        "workers": workers,
        "fake_creates_per_second": round(n / create_seconds),
        "cold_sync_seconds": round(synced, 2),
        "reconciles_per_second": round(n / elapsed),
        "controller_cpu_ms_per_reconcile": round(cpu / n * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    configure_logging(json=True, level="warning")
    for n in args.sizes:
        port = free_port()
        fake = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.apiserver", str(port)], cwd=ROOT, stdout=subprocess.PIPE
        )
        try:
            assert fake.stdout is not None
            url = fake.stdout.readline().decode().strip()
            result = asyncio.run(run(url, n, args.workers))
            result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(result), flush=True)
        finally:
            fake.terminate()
            fake.wait()


if __name__ == "__main__":
    main()
