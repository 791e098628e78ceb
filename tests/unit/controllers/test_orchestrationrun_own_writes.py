"""The OrchestrationRun reconciler does not write again from a cache that has not seen its own status write
(issue 14 §2): in a burst of 5-step DAG runs, step children's events started the next pass before the
informer delivered the write, and each such pass PUT the status with the old resourceVersion (a 409 and a
backoff retry: 7 per run, `agentrun_bench.py --orchestration`)."""

from __future__ import annotations

import copy
from typing import Any

from jangar.api.refs import AGENTRUNS, ORCHESTRATIONRUNS, ORCHESTRATIONS
from jangar.controllers.orchestration_indexes import install_orchestration_indexes
from jangar.controllers.orchestrationrun.apply import PlanApplier
from jangar.controllers.orchestrationrun.reconciler import OrchestrationRunReconciler
from jangar.controllers.own_writes import STALE_RETRY_SECONDS, RecentCreates
from jangar.runtime import Request
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import ControllerTuning
from tests.unit.controllers.orchestration_objects import NOW, NS, agent_step, orchestration, orun


class StubClient:
    """The two writes a first pass makes: the step child's create and the run's status update."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.rv = 5

    async def create(self, ref: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", ref.kind))
        return body

    async def update_status(self, ref: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update_status", ref.kind))
        self.rv += 1
        written = copy.deepcopy(body)
        written["metadata"]["resourceVersion"] = str(self.rv)
        return written


def world() -> tuple[FakeCache, StubClient, OrchestrationRunReconciler]:
    cache = FakeCache(AGENTRUNS, ORCHESTRATIONRUNS, ORCHESTRATIONS)
    install_orchestration_indexes(cache)
    cache.add(ORCHESTRATIONS, orchestration(agent_step("a"), agent_step("b", "a")))
    cache.add(ORCHESTRATIONRUNS, orun())
    client = StubClient()
    applier = PlanApplier(client=client, cache=cache, events=FakeEventRecorder())  # type: ignore[arg-type]
    reconciler = OrchestrationRunReconciler(
        cache=cache, applier=applier, tuning=ControllerTuning(), clock=lambda: NOW
    )
    return cache, client, reconciler


async def test_a_pass_over_the_version_our_status_write_replaced_is_deferred_without_writing() -> None:
    cache, client, reconciler = world()
    stale = cache.get(ORCHESTRATIONRUNS, "r1", NS)
    await reconciler.reconcile(Request(NS, "r1"))
    assert ("update_status", "OrchestrationRun") in client.calls  # the first pass wrote the status
    client.calls.clear()

    # a step child's event arrives before the informer delivered the write: the cache still has rv 5
    result = await reconciler.reconcile(Request(NS, "r1"))
    assert result is not None and result.requeue_after == STALE_RETRY_SECONDS
    assert client.calls == []

    # the informer delivers the written version: the next pass decides again, and the memory is gone
    assert stale is not None
    written = {**stale, "metadata": {**stale["metadata"], "resourceVersion": "6"}}
    cache.add(ORCHESTRATIONRUNS, written)
    result = await reconciler.reconcile(Request(NS, "r1"))
    assert result is None or result.requeue_after != STALE_RETRY_SECONDS
    assert not reconciler.applier.own_writes.is_stale(ORCHESTRATIONRUNS.kind, stale)


async def test_a_run_gone_from_the_cache_forgets_its_writes() -> None:
    cache, _client, reconciler = world()
    stale = cache.get(ORCHESTRATIONRUNS, "r1", NS)
    await reconciler.reconcile(Request(NS, "r1"))
    assert stale is not None and reconciler.applier.own_writes.is_stale(ORCHESTRATIONRUNS.kind, stale)
    cache.delete(ORCHESTRATIONRUNS, "r1", NS)
    assert await reconciler.reconcile(Request(NS, "r1")) is None
    assert len(reconciler.applier.own_writes) == 0


async def test_a_child_created_moments_ago_is_not_posted_again_while_the_cache_lacks_it() -> None:
    cache, client, reconciler = world()
    await reconciler.reconcile(Request(NS, "r1"))
    assert client.calls.count(("create", "AgentRun")) == 1
    run = cache.get(ORCHESTRATIONRUNS, "r1", NS)
    assert run is not None
    # the run's status write reached the cache, the step child's create has not: the pass plans the child
    cache.add(ORCHESTRATIONRUNS, {**run, "metadata": {**run["metadata"], "resourceVersion": "6"}})
    client.calls.clear()
    await reconciler.reconcile(Request(NS, "r1"))
    assert ("create", "AgentRun") not in client.calls


def test_recent_creates_expire_and_are_forgotten_once_seen() -> None:
    now = [0.0]
    creates = RecentCreates(memory_seconds=10.0, clock=lambda: now[0])
    creates.created("AgentRun", NS, "a")
    creates.created("AgentRun", NS, "b")
    assert creates.pending("AgentRun", NS, "a") and not creates.pending("AgentRun", NS, "c")
    creates.seen("AgentRun", NS, "a")
    assert not creates.pending("AgentRun", NS, "a")
    now[0] = 10.0  # a child that never showed up is created again after the memory
    assert not creates.pending("AgentRun", NS, "b") and len(creates) == 0
