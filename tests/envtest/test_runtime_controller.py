"""Controllers, managers and leader election against a real kube-apiserver + etcd."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
import structlog
from kubernetes_asyncio import client as k8s

from jangar.runtime import (
    Builder,
    CacheOptions,
    Client,
    LeaderElectionOptions,
    Manager,
    ManagerOptions,
    ReflectorOptions,
    Request,
    Result,
)
from jangar.runtime.ratelimiter import ItemExponentialFailureRateLimiter
from jangar.runtime.resources import CONFIGMAPS, LEASES, SECRETS
from tests.support.waiting import eventually

# Each Lease request may take renew_deadline / 2 (2 s): a loaded machine must not lose the lease by accident
# (with a 1.5 s deadline one slow request to the real API server was enough).
FAST_LEASE = dict(lease_duration=6.0, renew_deadline=4.0, retry_period=0.5)


@pytest_asyncio.fixture
async def rt_client(kube_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(kube_client, timeout=10)


def new_manager(client: Client, namespace: str, **options: Any) -> Manager:
    return Manager(
        client,
        ManagerOptions(
            bind_address="127.0.0.1:0",
            cache=CacheOptions(namespaces=[namespace], reflector=ReflectorOptions(backoff_initial=0.1)),
            graceful_shutdown_timeout=5,
            **options,
        ),
    )


async def test_owns_reconciles_owner_on_child_change_and_errors_back_off(
    rt_client: Client, namespace: str
) -> None:
    mgr = new_manager(rt_client, namespace)
    calls: list[tuple[str, float]] = []
    fail_for = {"flaky"}

    async def reconcile(req: Request) -> Result:
        calls.append((req.name, time.monotonic()))
        owner = mgr.cache.get(CONFIGMAPS, req.name, req.namespace)
        if owner is None:
            return Result()
        if req.name in fail_for and sum(1 for n, _ in calls if n == req.name) < 4:
            raise RuntimeError("not yet")
        # Write status-like data with a merge patch, reading the children from the cache.
        children = mgr.cache.list(SECRETS, req.namespace, index=("controller-uid", owner["metadata"]["uid"]))
        await mgr.client.patch(
            CONFIGMAPS, req.name, {"data": {"children": str(len(children))}}, namespace=req.namespace
        )
        return Result()

    Builder(mgr).for_(CONFIGMAPS).owns(SECRETS).with_options(
        rate_limiter=lambda: ItemExponentialFailureRateLimiter[Request](0.1, 5)
    ).complete(reconcile)
    parent = await rt_client.create(CONFIGMAPS, {"metadata": {"name": "parent", "namespace": namespace}})
    with structlog.testing.capture_logs():
        task = asyncio.create_task(mgr.start())
        try:
            await eventually(lambda: any(n == "parent" for n, _ in calls))
            ref = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "parent",
                "uid": parent["metadata"]["uid"],
                "controller": True,
            }
            await rt_client.create(
                SECRETS, {"metadata": {"name": "child", "namespace": namespace, "ownerReferences": [ref]}}
            )

            async def children_count() -> str | None:
                got = await rt_client.get(CONFIGMAPS, "parent", namespace)
                return (got.get("data") or {}).get("children")

            async with asyncio.timeout(10):
                while await children_count() != "1":
                    await asyncio.sleep(0.05)

            # An exception is retried with growing delays (100, 200, 400 ms).
            await rt_client.create(CONFIGMAPS, {"metadata": {"name": "flaky", "namespace": namespace}})
            await eventually(lambda: sum(1 for n, _ in calls if n == "flaky") >= 4, timeout=10)
            times = [t for n, t in calls if n == "flaky"][:4]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39
            get = mgr.metrics.registry.get_sample_value
            assert get("controller_runtime_reconcile_errors_total", {"controller": "configmap"}) == 3
            assert get(
                "rest_client_requests_total",
                {"code": "200", "method": "PATCH", "host": mgr.client._host_label},
            )
        finally:
            mgr.request_stop()
            await asyncio.wait_for(task, 10)


async def test_metrics_endpoint_serves_live_values(rt_client: Client, namespace: str) -> None:
    mgr = new_manager(rt_client, namespace)

    async def reconcile(req: Request) -> Result:
        return Result()

    Builder(mgr).for_(CONFIGMAPS).complete(reconcile)
    await rt_client.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": namespace}})
    task = asyncio.create_task(mgr.start())
    try:
        await eventually(lambda: mgr.http_port is not None and mgr.cache.has_synced())
        await eventually(
            lambda: (
                (
                    mgr.metrics.registry.get_sample_value(
                        "controller_runtime_reconcile_total", {"controller": "configmap", "result": "success"}
                    )
                    or 0
                )
                >= 1
            )
        )
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{mgr.http_port}/metrics") as r:
                text = await r.text()
            async with s.get(f"http://127.0.0.1:{mgr.http_port}/readyz?verbose") as r:
                assert r.status == 200 and "[+]cache-sync ok" in await r.text()
        assert 'controller_runtime_reconcile_total{controller="configmap",result="success"}' in text
        assert 'rest_client_requests_total{code="200",host=' in text
        assert "workqueue_queue_duration_seconds_count" in text
        assert "_created" not in text
    finally:
        mgr.request_stop()
        await asyncio.wait_for(task, 10)


async def test_two_managers_share_one_lease(rt_client: Client, namespace: str) -> None:
    await rt_client.create(CONFIGMAPS, {"metadata": {"name": "obj", "namespace": namespace}})
    reconciled: list[str] = []

    def manager(identity: str) -> Manager:
        mgr = new_manager(
            rt_client,
            namespace,
            leader_election=LeaderElectionOptions("runtime-test", namespace, identity=identity, **FAST_LEASE),
        )
        mgr.options.bind_address = None

        async def reconcile(req: Request) -> Result:
            reconciled.append(identity)
            return Result(requeue_after=0.1)

        Builder(mgr).for_(CONFIGMAPS).complete(reconcile)
        return mgr

    a, b = manager("a"), manager("b")
    task_a = asyncio.create_task(a.start())
    await eventually(lambda: "a" in reconciled)
    task_b = asyncio.create_task(b.start())
    await eventually(b.cache.has_synced)
    await asyncio.sleep(1.0)
    assert set(reconciled) == {"a"}
    lease = await rt_client.get(LEASES, "runtime-test", namespace)
    assert lease["spec"]["holderIdentity"] == "a"

    # Graceful shutdown releases the lease: b takes over in about one retry period.
    t0 = time.monotonic()
    a.request_stop()
    await asyncio.wait_for(task_a, 10)
    released = await rt_client.get(LEASES, "runtime-test", namespace)
    assert released["spec"].get("holderIdentity") in (None, "b")
    await eventually(lambda: "b" in reconciled)
    assert time.monotonic() - t0 < 4.0  # one retry period, well inside the 6 s a lease expiry would take

    # Killing the leader (no release): a new candidate waits out the lease duration.
    c = manager("c")
    task_c = asyncio.create_task(c.start())
    await eventually(c.cache.has_synced)
    b.options.leader_election = None  # do not release on the way out: simulate a crash
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
    t0 = time.monotonic()
    await eventually(lambda: "c" in reconciled, timeout=30)
    handover = time.monotonic() - t0
    assert handover >= 6.0 - 4.0  # waited out (most of) the lease: b renewed within its renew deadline
    lease = await rt_client.get(LEASES, "runtime-test", namespace)
    assert lease["spec"]["holderIdentity"] == "c"
    assert lease["spec"]["leaseTransitions"] == 2
    c.request_stop()
    await asyncio.wait_for(task_c, 10)
