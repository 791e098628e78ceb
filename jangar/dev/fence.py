"""A fencing probe for leader election: proves that never two leaders reconcile.

Every replica runs a tiny controller (:func:`add_fence_controller`) on one ConfigMap, the *fence*,
under leader election. Each reconcile reads the fence from the API server (not the cache) and
compare-and-swaps it (a PUT with the resourceVersion just read) with

* ``holder``: this replica's identity,
* ``term``: the Lease's ``leaseTransitions`` when this replica acquired it (a new leader always has a
  larger term than the previous one),
* ``counter``: the previous counter + 1.

A reconcile that finds a *larger* term than its own is a stale leader acting after the next one took
over: it counts the violation in the fence (``stale``) instead of writing its own record. An observer
that watches the fence (:class:`FenceObserver`, or :func:`check_history` over the versions it saw) then
checks that terms never go down, that a new holder always comes with a larger term, that the counter
grows by exactly one per version, and that ``stale`` stays 0.

Used by `scripts/fault/leader_failover.py` (two processes, kill -9 and SIGSTOP) and by the envtest
test of the renew-deadline rule (tests/envtest/test_runtime_leaderelection.py).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jangar.runtime import Builder, Client, ConflictError, GoneError, Manager, NotFoundError, Request, Result
from jangar.runtime.fence import LeaderFencedError
from jangar.runtime.leaderelection import LeaderElector
from jangar.runtime.resources import CONFIGMAPS, LEASES, JsonObject

FENCE_NAME = "jangar-fence"
TICK = 0.1
"""Seconds between two reconciles of the fence by the leader (``requeue_after``)."""


@dataclass
class FenceStats:
    """What one replica did: reconciles that wrote, conflicts, and stale reconciles it detected."""

    writes: int = 0
    conflicts: int = 0
    stale: int = 0
    """Reconciles that read a newer term than their own (a stale leader running)."""
    refused: int = 0
    """Writes the client's leader fence refused (jangar.runtime.fence)."""
    term: int | None = None
    first_write: float | None = None
    """``time.time()`` of this replica's first fence write (handover measurements)."""
    last_started: float | None = None
    """``time.monotonic()`` at the start of this replica's last reconcile of the fence."""


def _term(elector: LeaderElector) -> int:
    lease = elector._lease or {}
    return int((lease.get("spec") or {}).get("leaseTransitions") or 0)


async def create_fence(client: Client, namespace: str) -> None:
    """Create the (empty) fence ConfigMap; the controllers only reconcile it once it exists."""
    await client.create(CONFIGMAPS, {"metadata": {"name": FENCE_NAME, "namespace": namespace}, "data": {}})


def add_fence_controller(
    manager: Manager, client: Client, namespace: str, identity: str, *, tick: float = TICK
) -> FenceStats:
    """Register the fence controller on ``manager`` (which must have leader election)."""
    elector = manager.elector
    if elector is None:
        raise ValueError("the fence needs a manager with leader election")
    stats = FenceStats()

    async def reconcile(req: Request) -> Result:
        if req.name != FENCE_NAME:
            return Result()
        stats.last_started = time.monotonic()
        term = _term(elector)
        stats.term = term
        try:
            fence = await client.get(CONFIGMAPS, FENCE_NAME, namespace)
        except NotFoundError:
            return Result()
        data = dict(fence.get("data") or {})
        stale = int(data.get("term") or -1) > term
        if stale:
            stats.stale += 1
            data["stale"] = str(int(data.get("stale") or 0) + 1)
            data["staleBy"] = identity
        else:
            data.update(holder=identity, term=str(term), counter=str(int(data.get("counter") or 0) + 1))
        fence["data"] = data
        try:
            await client.update(CONFIGMAPS, fence)
        except ConflictError:
            stats.conflicts += 1
            raise
        except LeaderFencedError:
            stats.refused += 1
            raise
        if not stale:
            stats.writes += 1
            if stats.first_write is None:
                stats.first_write = time.time()
        return Result(requeue_after=tick)

    Builder(manager).named(f"fence-{identity}").for_(CONFIGMAPS).with_options(
        max_concurrent_reconciles=1
    ).complete(reconcile)
    return stats


@dataclass
class FenceVersion:
    at: float
    holder: str
    term: int
    counter: int
    stale: int


@dataclass
class FenceObserver:
    """Collects every version of the fence from a watch (run :meth:`run` as a task)."""

    client: Client
    namespace: str
    versions: list[FenceVersion] = field(default_factory=list)
    on_version: Callable[[FenceVersion], None] | None = None

    async def run(self) -> None:
        rv = ""
        while True:
            try:
                async for ev in self.client.watch(
                    CONFIGMAPS,
                    self.namespace,
                    resource_version=rv,
                    field_selector=f"metadata.name={FENCE_NAME}",
                    timeout_seconds=300,
                ):
                    obj = ev.object
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.type not in ("ADDED", "MODIFIED"):
                        continue
                    self._seen(obj)
            except GoneError:  # compacted past our version: start again from the current object
                rv = ""
            except Exception:  # a restart of the API server: resume from the last version
                await asyncio.sleep(0.2)

    def _seen(self, obj: JsonObject) -> None:
        data = obj.get("data") or {}
        if "holder" not in data:
            return
        v = FenceVersion(
            time.time(),
            str(data["holder"]),
            int(data.get("term") or 0),
            int(data.get("counter") or 0),
            int(data.get("stale") or 0),
        )
        if self.versions and (v.counter, v.stale) == (self.versions[-1].counter, self.versions[-1].stale):
            return  # the same version seen twice (a re-watch replays the current object)
        self.versions.append(v)
        if self.on_version:
            self.on_version(v)


def check_history(versions: list[FenceVersion]) -> list[str]:
    """The violations in a sequence of fence versions (empty: one leader at a time, no gap, no stale write)."""
    problems: list[str] = []
    for prev, cur in itertools.pairwise(versions):
        if cur.term < prev.term:
            problems.append(f"term went down: {prev} -> {cur}")
        if cur.holder != prev.holder and cur.term <= prev.term:
            problems.append(f"two holders in term {cur.term}: {prev} -> {cur}")
        if cur.counter not in (prev.counter, prev.counter + 1):
            problems.append(f"counter jumped: {prev} -> {cur}")
    if versions and versions[-1].stale:
        problems.append(
            f"{versions[-1].stale} stale-leader reconciles (last by a replica with an older term)"
        )
    return problems


async def lease_transitions(client: Client, name: str, namespace: str) -> tuple[str, int]:
    """The Lease's holder and ``leaseTransitions``."""
    spec: dict[str, Any] = (await client.get(LEASES, name, namespace)).get("spec") or {}
    return str(spec.get("holderIdentity") or ""), int(spec.get("leaseTransitions") or 0)
