import asyncio
import contextlib
import functools
import time
from typing import Any

import pytest

from jangar.runtime import (
    Builder,
    CacheOptions,
    Client,
    LeaderElectionOptions,
    LeaderElector,
    LeaderLost,
    Manager,
    ManagerOptions,
    ReflectorOptions,
    Request,
    ResourceRef,
    Result,
)
from jangar.runtime.controller import Controller
from jangar.runtime.fence import LeaderFencedError
from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.resources import CONFIGMAPS
from jangar.runtime.testing import FakeClock
from tests.fakes.apiserver import FakeApiServer
from tests.support.waiting import eventually as shared_eventually

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")
LEASE_COLL = "coordination.k8s.io/v1/leases"
FAST = dict(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)


# The shared `eventually` with this module's bounds: 15 s (generous: the suite must pass under load), polling every 20 ms.
eventually = functools.partial(shared_eventually, timeout=15.0, interval=0.02)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        LeaderElectionOptions("l", "ns", lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError):
        LeaderElectionOptions("l", "ns", lease_duration=15, renew_deadline=2, retry_period=2)
    LeaderElectionOptions("l", "ns")  # the defaults are valid: 15 > 10 > 2.4


async def test_single_candidate_acquires_and_writes_a_lease(client: Client, fake: FakeApiServer) -> None:
    metrics = RuntimeMetrics()
    el = LeaderElector(client, LeaderElectionOptions("lock", "ns", identity="a", **FAST), metrics=metrics)
    task = asyncio.create_task(el.run())
    await asyncio.wait_for(el.elected.wait(), 10)
    lease = fake.objects[(LEASE_COLL, "ns", "lock")]
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert lease["spec"]["leaseTransitions"] == 0
    assert metrics.registry.get_sample_value("leader_election_master_status", {"name": "lock"}) == 1
    first_renew = lease["spec"]["renewTime"]
    await eventually(lambda: fake.objects[(LEASE_COLL, "ns", "lock")]["spec"]["renewTime"] != first_renew)
    assert fake.objects[(LEASE_COLL, "ns", "lock")]["spec"]["acquireTime"] == lease["spec"]["acquireTime"]
    task.cancel()
    # the elector stops first (as the manager does): a renew still in flight would make release's update
    # a 409 (seen once in CI under load)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await el.release() is True
    assert fake.objects[(LEASE_COLL, "ns", "lock")]["spec"]["holderIdentity"] is None
    assert metrics.registry.get_sample_value("leader_election_master_status", {"name": "lock"}) == 0


async def test_a_valid_foreign_lease_blocks_until_it_expires_by_our_clock(
    client: Client, fake: FakeApiServer
) -> None:
    # Timestamps in the record are deliberately absurd: expiry must not depend on them.
    fake.put(
        LEASE_COLL,
        {
            "metadata": {"name": "lock", "namespace": "ns"},
            "spec": {
                "holderIdentity": "other",
                "leaseDurationSeconds": 1,
                "renewTime": "2099-01-01T00:00:00.000000Z",
            },
        },
    )
    el = LeaderElector(client, LeaderElectionOptions("lock", "ns", identity="me", **FAST))
    t0 = time.monotonic()
    task = asyncio.create_task(el.run())
    await asyncio.wait_for(el.elected.wait(), 4)
    waited = time.monotonic() - t0
    assert 0.95 <= waited < 2.5  # one leaseDurationSeconds after we first saw the record
    assert fake.objects[(LEASE_COLL, "ns", "lock")]["spec"]["leaseTransitions"] == 1
    task.cancel()


async def test_renewal_failure_loses_leadership(client: Client, fake: FakeApiServer) -> None:
    el = LeaderElector(client, LeaderElectionOptions("lock", "ns", identity="a", **FAST))
    task = asyncio.create_task(el.run())
    await asyncio.wait_for(el.elected.wait(), 10)
    fake.fail_next(1000, 500)
    await asyncio.wait_for(el.lost.wait(), 3)
    assert not el.is_leader
    await task


def manager_for(client: Client, identity: str, reconciled: list[str]) -> Manager:
    mgr = Manager(
        client,
        ManagerOptions(
            bind_address=None,
            leader_election=LeaderElectionOptions("mgr-lock", "ns", identity=identity, **FAST),
            cache=CacheOptions(reflector=ReflectorOptions(backoff_initial=0.01)),
            graceful_shutdown_timeout=1,
        ),
    )

    async def reconcile(req: Request) -> Result:
        reconciled.append(identity)
        return Result(requeue_after=0.05)

    Builder(mgr).for_(WIDGETS).complete(reconcile)
    return mgr


async def test_two_managers_only_the_leader_reconciles_and_release_hands_over_fast(
    client: Client, fake: FakeApiServer
) -> None:
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    reconciled: list[str] = []
    a = manager_for(client, "a", reconciled)
    task_a = asyncio.create_task(a.start())
    await eventually(lambda: "a" in reconciled)
    b = manager_for(client, "b", reconciled)
    task_b = asyncio.create_task(b.start())
    await eventually(b.cache.has_synced)
    await asyncio.sleep(0.5)
    assert set(reconciled) == {"a"}  # the standby has a warm cache but does not reconcile
    t0 = time.monotonic()
    a.request_stop()
    await asyncio.wait_for(task_a, 3)
    assert fake.objects[(LEASE_COLL, "ns", "mgr-lock")]["spec"]["holderIdentity"] in (None, "b")
    await eventually(lambda: "b" in reconciled)
    handover = time.monotonic() - t0
    assert handover < 1.0  # released lease: about one retry period, not a lease duration
    b.request_stop()
    await asyncio.wait_for(task_b, 3)


async def test_killed_leader_is_replaced_after_the_lease_duration(
    client: Client, fake: FakeApiServer
) -> None:
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    reconciled: list[str] = []
    a = manager_for(client, "a", reconciled)
    task_a = asyncio.create_task(a.start())
    await eventually(lambda: "a" in reconciled)
    b = manager_for(client, "b", reconciled)
    task_b = asyncio.create_task(b.start())
    await eventually(b.cache.has_synced)
    await asyncio.sleep(0.3)
    # "kill" a: its tasks vanish without releasing anything
    assert a.elector is not None
    a.options.leader_election = None
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)
    t0 = time.monotonic()
    reconciled.clear()
    await eventually(lambda: "b" in reconciled, timeout=6)
    handover = time.monotonic() - t0
    assert (
        0.5 <= handover <= 1.5 + 0.24 + 1.0
    )  # lease duration (minus elapsed renew age) + jittered retry + slack
    b.request_stop()
    await asyncio.wait_for(task_b, 3)


async def test_manager_raises_when_leadership_is_lost(client: Client, fake: FakeApiServer) -> None:
    reconciled: list[str] = []
    a = manager_for(client, "a", reconciled)
    task = asyncio.create_task(a.start())
    assert a.elector is not None
    await asyncio.wait_for(a.elector.elected.wait(), 3)
    fake.fail_next(10000, 500)
    with pytest.raises(LeaderLost):
        await asyncio.wait_for(task, 5)


async def test_unexpected_errors_count_as_failed_rounds_not_a_dead_task(
    client: Client, fake: FakeApiServer
) -> None:
    el = LeaderElector(client, LeaderElectionOptions("lock", "ns", identity="a", **FAST))
    task = asyncio.create_task(el.run())
    await asyncio.wait_for(el.elected.wait(), 10)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("unexpected")

    el.client.get = broken  # type: ignore[method-assign]
    await asyncio.wait_for(el.lost.wait(), 3)  # renew deadline decides, the loop did not crash
    await task
    assert task.exception() is None


async def test_sigterm_stops_gracefully_and_releases_the_lease(client: Client, fake: FakeApiServer) -> None:
    import os
    import signal

    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    reconciled: list[str] = []
    mgr = manager_for(client, "a", reconciled)
    task = asyncio.create_task(mgr.start())
    mgr.install_signal_handlers()
    await eventually(lambda: "a" in reconciled)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 5)  # returns normally: a graceful stop, not an error
    assert fake.objects[(LEASE_COLL, "ns", "mgr-lock")]["spec"]["holderIdentity"] is None
    assert fake.objects[(LEASE_COLL, "ns", "mgr-lock")]["spec"]["leaseDurationSeconds"] == 1


# -- the leader fence (holds_lease) -------------------------------------------------------------


async def test_holds_lease_is_judged_by_the_clock_not_by_the_lost_timer(
    client: Client, fake: FakeApiServer
) -> None:
    """A paused process resumes with its timers not yet run: the clock alone must close the fence."""
    clock = FakeClock()
    el = LeaderElector(client, LeaderElectionOptions("lock", "ns", identity="a", **FAST), clock=clock)
    assert not el.holds_lease()
    task = asyncio.create_task(el.run())
    await asyncio.wait_for(el.elected.wait(), 10)
    assert el.holds_lease()
    clock.step(FAST["renew_deadline"] - 0.01)
    assert el.holds_lease()
    clock.step(0.01)  # the last successful round started renew_deadline ago
    assert el.is_leader  # the elector has not noticed anything yet ...
    assert not el.holds_lease()  # ... but the fence is already closed
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await el.release()
    assert not el.holds_lease()


async def test_manager_fences_its_controllers_with_the_elector(client: Client, fake: FakeApiServer) -> None:
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    reconciled: list[str] = []
    mgr = manager_for(client, "a", reconciled)
    task = asyncio.create_task(mgr.start())
    await eventually(lambda: "a" in reconciled)
    assert mgr.elector is not None
    (ctrl,) = [r for r in mgr._started if isinstance(r, Controller)]
    assert ctrl._leader_check == mgr.elector.holds_lease
    mgr.request_stop()
    await asyncio.wait_for(task, 5)


async def test_a_closed_fence_puts_requests_back_instead_of_reconciling(
    client: Client, fake: FakeApiServer
) -> None:
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    mgr = Manager(
        client,
        ManagerOptions(
            bind_address=None,
            cache=CacheOptions(reflector=ReflectorOptions(backoff_initial=0.01)),
            graceful_shutdown_timeout=1,
        ),
    )
    calls: list[float] = []

    async def reconcile(req: Request) -> Result:
        calls.append(time.monotonic())
        return Result(requeue_after=0.01)

    ctrl = Builder(mgr).for_(WIDGETS).complete(reconcile)
    open_ = {"v": True}
    ctrl.set_leader_check(lambda: open_["v"])
    task = asyncio.create_task(mgr.start())
    await eventually(lambda: len(calls) >= 2)
    open_["v"] = False
    await eventually(lambda: ctrl.fenced >= 1)
    seen = len(calls)
    await eventually(lambda: ctrl.fenced >= 2, timeout=20)  # FENCED_RETRY later, refused again
    assert len(calls) == seen  # nothing reconciled while the fence was closed
    open_["v"] = True
    await eventually(lambda: len(calls) > seen, timeout=20)  # the request was kept, not dropped
    mgr.request_stop()
    await asyncio.wait_for(task, 5)


async def test_a_write_inside_a_reconcile_is_refused_once_the_fence_closes(
    client: Client, fake: FakeApiServer
) -> None:
    """The paused-leader residue: a reconcile that began with the lease resumes without it."""
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    mgr = Manager(
        client,
        ManagerOptions(
            bind_address=None,
            cache=CacheOptions(reflector=ReflectorOptions(backoff_initial=0.01)),
            graceful_shutdown_timeout=1,
        ),
    )
    open_ = {"v": True}
    resume = asyncio.Event()
    errors: list[BaseException] = []

    async def reconcile(req: Request) -> Result:
        await resume.wait()  # "paused" after the worker's check passed
        try:
            await client.create(CONFIGMAPS, {"metadata": {"name": "written", "namespace": "ns"}})
        except LeaderFencedError as exc:
            errors.append(exc)
            raise
        return Result()

    ctrl = Builder(mgr).for_(WIDGETS).complete(reconcile)
    ctrl.set_leader_check(lambda: open_["v"])
    task = asyncio.create_task(mgr.start())
    await eventually(lambda: ctrl._m_active._value.get() == 1)  # the reconcile is in flight
    open_["v"] = False
    resume.set()
    await eventually(lambda: len(errors) == 1)
    assert not [r for r in fake.requests if r[0] == "POST"]  # never sent
    # Writes outside a reconcile (the API surfaces) are not fenced.
    await client.create(CONFIGMAPS, {"metadata": {"name": "outside", "namespace": "ns"}})
    mgr.request_stop()
    await asyncio.wait_for(task, 5)
