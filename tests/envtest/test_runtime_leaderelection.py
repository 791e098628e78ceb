"""Leader election against a real kube-apiserver: two managers on one Lease, checked by a fence.

The fence (`jangar.dev.fence`) is a ConfigMap every leader compare-and-swaps on each reconcile with
its identity, its term (the Lease's `leaseTransitions` when it acquired) and a counter; a reconcile that
finds a newer term counts itself as stale. `check_history` over every version seen by a watch is the
proof that never two leaders reconciled. Short timings (lease 8 s, renew deadline 6 s, retry 0.5 s:
renewals have 3 s per request, so a loaded machine does not lose the lease by accident).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from jangar.dev.cluster import LocalCluster
from jangar.dev.fence import FenceObserver, FenceStats, add_fence_controller, check_history, create_fence
from jangar.runtime import (
    CacheOptions,
    Client,
    ConflictError,
    LeaderElectionOptions,
    LeaderLost,
    Manager,
    ManagerOptions,
    ReflectorOptions,
)
from jangar.runtime.resources import LEASES
from tests.support.waiting import eventually

LEASE = "fence-lock"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 8.0, 6.0, 0.5


@dataclass
class Replica:
    identity: str
    client: Client
    manager: Manager
    stats: FenceStats
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.manager.start())

    async def crash(self) -> None:
        """kill -9, as far as a task can: nothing is released, nothing drains."""
        self.manager.options.leader_election = None  # no lease release in the shutdown path
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def replica(envtest: LocalCluster, namespace: str, identity: str) -> Replica:
    client = await Client.from_kubeconfig(str(envtest.kubeconfig), field_manager=identity)
    manager = Manager(
        client,
        ManagerOptions(
            bind_address=None,
            leader_election=LeaderElectionOptions(
                LEASE,
                namespace,
                identity=identity,
                lease_duration=LEASE_DURATION,
                renew_deadline=RENEW_DEADLINE,
                retry_period=RETRY_PERIOD,
            ),
            cache=CacheOptions(
                namespaces=[namespace], reflector=ReflectorOptions(backoff_initial=0.05, backoff_cap=1.0)
            ),
            graceful_shutdown_timeout=2,
        ),
    )
    return Replica(identity, client, manager, add_fence_controller(manager, client, namespace, identity))


@pytest_asyncio.fixture
async def fenced(
    envtest: LocalCluster, namespace: str
) -> AsyncIterator[tuple[Replica, Replica, FenceObserver]]:
    observer_client = await Client.from_kubeconfig(str(envtest.kubeconfig), field_manager="observer")
    await create_fence(observer_client, namespace)
    observer = FenceObserver(observer_client, namespace)
    watch = asyncio.create_task(observer.run())
    a = await replica(envtest, namespace, "a")
    b = await replica(envtest, namespace, "b")
    a.start()
    await eventually(lambda: a.stats.writes >= 3, timeout=30, what="a leads and writes the fence")
    b.start()
    await eventually(b.manager.cache.has_synced, timeout=30, what="b's cache synced (warm standby)")
    try:
        yield a, b, observer
    finally:
        for r in (a, b):
            if r.task is not None and not r.task.done():
                r.manager.request_stop()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(r.task, 15)
            await r.client.close()
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await observer_client.close()


async def test_killed_leader_hands_over_after_the_lease_and_never_overlaps(
    fenced: tuple[Replica, Replica, FenceObserver],
) -> None:
    a, b, observer = fenced
    assert b.stats.writes == 0  # a warm standby does not reconcile
    await a.crash()
    await eventually(lambda: b.stats.writes >= 3, timeout=30, what="b took over")
    await eventually(lambda: bool(observer.versions) and observer.versions[-1].holder == "b", timeout=30)
    assert check_history(observer.versions) == []
    holders = [v.holder for v in observer.versions]
    assert holders == sorted(holders)  # a ... a b ... b: one handover, no interleaving
    assert observer.versions[-1].term == observer.versions[0].term + 1
    assert b.stats.stale == a.stats.stale == 0


async def test_a_leader_that_cannot_renew_stops_reconciling_within_the_renew_deadline(
    fenced: tuple[Replica, Replica, FenceObserver],
) -> None:
    """client-go's rule: once renewing failed for `renew_deadline`, stop, before anyone may take over.

    A usurper overwrites the Lease (as a network partition from the leader would look to it): `a`'s
    renewals then fail. Its fence closes `renew_deadline` after its last successful renew started,
    which was before the usurpation, so no reconcile of `a` may start later than that; then its
    manager raises LeaderLost. `b` takes over once the usurper's lease expires.
    """
    a, b, observer = fenced
    assert a.manager.elector is not None
    namespace = a.manager.elector.options.namespace

    async def usurp() -> float | None:
        lease: dict[str, Any] = await b.client.get(LEASES, LEASE, namespace)
        spec = lease["spec"]
        spec.update(holderIdentity="usurper", leaseTransitions=int(spec.get("leaseTransitions") or 0) + 1)
        started = time.monotonic()
        try:
            await b.client.update(LEASES, lease)
        except ConflictError:  # a renewed in between: read again
            return None
        return started

    usurped_at = await eventually(usurp, timeout=30, what="the Lease overwritten")
    assert usurped_at is not None
    assert a.task is not None
    with pytest.raises(LeaderLost):
        await asyncio.wait_for(a.task, 60)
    assert a.stats.last_started is not None
    assert a.stats.last_started < usurped_at + RENEW_DEADLINE
    assert a.manager.elector is not None and not a.manager.elector.holds_lease()
    await eventually(lambda: b.stats.writes >= 3, timeout=30, what="b took over after the usurper's lease")
    assert check_history(observer.versions) == []
    assert a.stats.stale == b.stats.stale == 0
