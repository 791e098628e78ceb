import json
from datetime import UTC, datetime, timedelta
from typing import Any

from jangar.admission import AdmissionLimits, Admit, Rejection, Waiting
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.runtime import Request
from jangar.runtime.testing import FakeCache

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _ts(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(
    name: str, ns: str = "a", *, created: int = 0, phase: str = "", admitted: int | None = None, **status: Any
) -> dict:
    st: dict[str, Any] = {"phase": phase, **status} if phase else dict(status)
    if admitted is not None:
        st["queue"] = {"admittedAt": _ts(admitted)}
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "creationTimestamp": _ts(created),
        },
        "spec": {"agentRef": {"name": "coder"}},
        "status": st,
    }


def gate(cache: FakeCache, **limits: int) -> AdmissionGate:
    base = {
        "per_namespace": 2,
        "per_agent": 0,
        "cluster": 0,
        "rate_per_namespace": 0,
        "rate_per_repo": 0,
        "rate_cluster": 0,
    }
    base.update(limits)
    return AdmissionGate(cache, AdmissionLimits(**base), clock=lambda: T0 + timedelta(seconds=100))


def test_limit_holds_and_the_next_waits_with_its_position() -> None:
    cache = FakeCache()
    for i in range(4):
        cache.add(AGENTRUNS, run(f"r{i}", created=i))
    g = gate(cache)
    assert isinstance(g.admit(cache.get(AGENTRUNS, "r0", "a")), Admit)
    assert isinstance(g.admit(cache.get(AGENTRUNS, "r1", "a")), Admit)
    # r0 and r1 are only reserved in memory (their status write has not reached the cache): still counted.
    waiting = g.admit(cache.get(AGENTRUNS, "r3", "a"))
    assert isinstance(waiting, Waiting)
    assert (waiting.scope, waiting.position) == ("namespace", 2)
    assert isinstance(g.admit(cache.get(AGENTRUNS, "r2", "a")), Waiting)


def test_a_run_whose_job_exists_holds_capacity_after_a_restart() -> None:
    cache = FakeCache()
    cache.add(AGENTRUNS, run("old", created=0))  # crashed after creating its Job, before writing status
    cache.add(AGENTRUNS, run("busy", created=1, phase="Running", admitted=2))
    cache.add(AGENTRUNS, run("new", created=5))
    cache.add(
        JOBS,
        {
            "metadata": {
                "name": "old-job",
                "namespace": "a",
                "creationTimestamp": _ts(1),
                "ownerReferences": [
                    {"kind": "AgentRun", "name": "old", "uid": "uid-a-old", "controller": True}
                ],
            }
        },
    )
    g = gate(cache)  # a fresh ledger: no reservations
    assert isinstance(g.admit(cache.get(AGENTRUNS, "new", "a")), Waiting)
    assert isinstance(g.admit(cache.get(AGENTRUNS, "old", "a")), Admit)


def test_held_invalid_runs_do_not_block_the_queue_head() -> None:
    cache = FakeCache()
    held = run("held", created=0, phase="Pending", conditions=[{"type": "InvalidSpec", "status": "True"}])
    cache.add(AGENTRUNS, held)
    cache.add(AGENTRUNS, run("busy", created=1, phase="Running", admitted=1))
    cache.add(AGENTRUNS, run("next", created=2))
    assert isinstance(gate(cache).admit(cache.get(AGENTRUNS, "next", "a")), Admit)


def test_queue_cap_rejects_new_runs_but_not_queued_ones() -> None:
    cache = FakeCache()
    cache.add(AGENTRUNS, run("busy", created=0, phase="Running", admitted=0))
    cache.add(AGENTRUNS, run("q1", created=1, phase="Queued"))
    cache.add(AGENTRUNS, run("late", created=2))
    g = gate(cache, per_namespace=1, queue_per_namespace=1)
    assert isinstance(g.admit(cache.get(AGENTRUNS, "q1", "a")), Waiting)
    rejected = g.admit(cache.get(AGENTRUNS, "late", "a"))
    assert isinstance(rejected, Rejection) and rejected.reason == "QueueLimitExceeded"


def test_finishing_run_wakes_exactly_the_runs_that_may_start() -> None:
    cache = FakeCache()
    cache.add(AGENTRUNS, run("done", created=0, phase="Succeeded", admitted=0))
    cache.add(AGENTRUNS, run("busy", created=1, phase="Running", admitted=1))
    for i in range(3):
        cache.add(AGENTRUNS, run(f"w{i}", created=2 + i, phase="Queued"))
    g = gate(cache)
    assert g.wake_mapper(cache.get(AGENTRUNS, "done", "a")) == [Request("a", "w0")]  # not attached: inline
    assert g.wake_mapper(cache.get(AGENTRUNS, "busy", "a")) == []  # not finished: nothing freed


def test_fair_across_namespaces() -> None:
    cache = FakeCache()
    for i in range(3):
        cache.add(AGENTRUNS, run(f"a{i}", "a", created=i, phase="Queued"))
    cache.add(AGENTRUNS, run("b0", "b", created=10, phase="Queued"))
    cache.add(AGENTRUNS, run("gone", "a", created=0, phase="Failed"))
    g = gate(cache, per_namespace=0, cluster=2)
    woken = g.wake_mapper(cache.get(AGENTRUNS, "gone", "a"))
    assert woken == [Request("a", "a0"), Request("b", "b0")]


def test_admissions_and_queue_depth_are_exported() -> None:
    from prometheus_client import CollectorRegistry

    cache = FakeCache()
    for i in range(3):
        cache.add(AGENTRUNS, run(f"r{i}", created=i))
    registry = CollectorRegistry()
    limits = AdmissionLimits(
        per_namespace=1, per_agent=0, cluster=0, rate_per_namespace=0, rate_per_repo=0, rate_cluster=0
    )
    g = AdmissionGate(cache, limits, registry=registry, clock=lambda: T0)
    g.admit(cache.get(AGENTRUNS, "r0", "a"))
    g.admit(cache.get(AGENTRUNS, "r1", "a"))
    sample = registry.get_sample_value
    assert sample("jangar_agentrun_admissions_total", {"namespace": "a", "outcome": "admitted"}) == 1
    assert sample("jangar_agentrun_admissions_total", {"namespace": "a", "outcome": "queued"}) == 1
    assert sample("jangar_agentrun_queue_depth", {"scope": "namespace", "namespace": "a"}) == 2


def test_retried_reconciles_do_not_count_a_run_twice() -> None:
    """A status write that conflicts makes the reconcile run again: the admission must not be counted again,
    and neither must another pass over a run that is already Queued."""
    from prometheus_client import CollectorRegistry

    cache = FakeCache()
    cache.add(AGENTRUNS, run("r0", created=0))
    cache.add(AGENTRUNS, run("r1", created=1, phase="Queued"))
    registry = CollectorRegistry()
    limits = AdmissionLimits(
        per_namespace=1, per_agent=0, cluster=0, rate_per_namespace=0, rate_per_repo=0, rate_cluster=0
    )
    g = AdmissionGate(cache, limits, registry=registry, clock=lambda: T0)
    for _ in range(3):
        assert isinstance(g.admit(cache.get(AGENTRUNS, "r0", "a")), Admit)
        assert isinstance(g.admit(cache.get(AGENTRUNS, "r1", "a")), Waiting)
    sample = registry.get_sample_value
    assert sample("jangar_agentrun_admissions_total", {"namespace": "a", "outcome": "admitted"}) == 1
    assert sample("jangar_agentrun_admissions_total", {"namespace": "a", "outcome": "queued"}) is None


def test_rate_limited_run_is_told_when_to_come_back() -> None:
    cache = FakeCache()
    cache.add(AGENTRUNS, run("a0", created=0, phase="Succeeded", admitted=90))
    cache.add(AGENTRUNS, run("a1", created=1, phase="Succeeded", admitted=95))
    cache.add(AGENTRUNS, run("next", created=2))
    g = gate(cache, per_namespace=0, rate_per_namespace=2, rate_window_seconds=60)
    waiting = g.admit(cache.get(AGENTRUNS, "next", "a"))
    assert isinstance(waiting, Waiting) and waiting.scope == "rate"
    assert waiting.requeue_after == 50  # a0's admission (t=90) leaves the 60 s window at t=150; now is t=100


async def test_attached_wake_ups_are_coalesced_into_one_decision() -> None:
    import asyncio

    cache = FakeCache()
    for i in range(3):
        cache.add(AGENTRUNS, run(f"d{i}", created=i, phase="Succeeded", admitted=i))
    for i in range(3):
        cache.add(AGENTRUNS, run(f"w{i}", created=10 + i, phase="Queued"))
    g = gate(cache)
    woken: list[Request] = []
    decisions = 0
    original = g.runs_to_wake

    def counting() -> list[Request]:
        nonlocal decisions
        decisions += 1
        return original()

    g.runs_to_wake = counting  # type: ignore[method-assign]
    g.attach(woken.append)
    for i in range(3):
        assert g.wake_mapper(cache.get(AGENTRUNS, f"d{i}", "a")) == []
    await asyncio.sleep(0.2)
    assert decisions == 1
    assert woken == [Request("a", "w0"), Request("a", "w1")]  # per_namespace=2


class _ConfigMapClient:
    """The two calls the gate makes for the rate window's record: server-side apply and a labelled list."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.applies = 0

    async def apply(self, ref: Any, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.applies += 1
        meta = obj["metadata"]
        self.objects[(meta["namespace"], meta["name"])] = obj
        return obj

    async def list(self, ref: Any, namespace: str | None = None, **kw: Any) -> Any:
        from jangar.runtime.client import ObjectList

        ((label, value),) = kw["label_selector"].items()
        items = [
            o
            for (ns, _), o in self.objects.items()
            if (namespace is None or ns == namespace) and o["metadata"]["labels"].get(label) == value
        ]
        return ObjectList(items=items, resource_version="1")


async def test_deleting_finished_runs_does_not_free_rate_budget_even_across_a_restart() -> None:
    """Two admissions fill a rate of 2/60 s; the runs finish and are deleted; the next run still waits for
    the window, in this process (memory) and in a new one (the durable record it reloads)."""
    import asyncio

    from jangar.api.contract import ADMISSION_WINDOW_CONFIGMAP

    client = _ConfigMapClient()
    limits = {"per_namespace": 0, "rate_per_namespace": 2, "rate_window_seconds": 60}

    def make(cache: FakeCache) -> AdmissionGate:
        g = gate(cache, **limits)
        g._client = client  # type: ignore[assignment]
        g._loaded = False
        return g

    cache = FakeCache()
    for name in ("r0", "r1", "r2"):
        cache.add(AGENTRUNS, run(name, created=int(name[1])))
    g = make(cache)
    await g.ensure_loaded()  # what the leader's reconciler does before its first admission
    assert isinstance(g.admit(cache.get(AGENTRUNS, "r0", "a")), Admit)
    assert isinstance(g.admit(cache.get(AGENTRUNS, "r1", "a")), Admit)
    for name in ("r0", "r1"):  # they finish and are deleted (the status writes reach the cache first)
        cache.add(AGENTRUNS, run(name, created=int(name[1]), phase="Succeeded", admitted=100))
        g.wake_mapper(cache.get(AGENTRUNS, name, "a"))
        cache.delete(AGENTRUNS, name, "a")
    waiting = g.admit(cache.get(AGENTRUNS, "r2", "a"))
    assert isinstance(waiting, Waiting) and waiting.reason == "RateLimited"

    async def written() -> bool:
        while not client.objects:
            await asyncio.sleep(0.01)
        return True

    assert await asyncio.wait_for(written(), timeout=10)
    record = client.objects[("a", ADMISSION_WINDOW_CONFIGMAP)]
    assert set(json.loads(record["data"]["admissions.json"])) == {"uid-a-r0", "uid-a-r1"}

    restarted = make(cache)  # a new process: nothing in memory, the runs are gone
    await restarted.ensure_loaded()
    waiting = restarted.admit(cache.get(AGENTRUNS, "r2", "a"))
    assert isinstance(waiting, Waiting) and waiting.reason == "RateLimited"
    assert waiting.requeue_after == 60  # both admitted at t=100 (now): free at t=160


async def test_a_standby_that_never_loaded_the_record_never_writes_it() -> None:
    """A standby primes its window from its cache (no stamps of deleted runs); writing that would erase
    the leader's record. Only `ensure_loaded` (a reconcile: the leader) turns writing on, and then what
    was stamped before is written."""
    import asyncio

    client = _ConfigMapClient()
    cache = FakeCache()
    cache.add(AGENTRUNS, run("r0", created=0, phase="Succeeded", admitted=100))
    g = gate(cache, per_namespace=0, rate_per_namespace=2, rate_window_seconds=60)
    g._client = client  # type: ignore[assignment]
    g._loaded = False
    g.wake_mapper(cache.get(AGENTRUNS, "r0", "a"))
    await asyncio.sleep(0.5)  # longer than the flush delay
    assert client.objects == {}
    await g.ensure_loaded()

    async def written() -> None:
        while not client.objects:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(written(), timeout=10)


def test_active_concurrency_counts_what_admission_counts_at_scrape_time() -> None:
    """`jangar_active_concurrency` (0.9.29's agents_active_concurrency): admitted or Running unfinished runs,
    reservations included, per namespace; it follows the cache without any admission decision."""
    from prometheus_client import CollectorRegistry

    cache = FakeCache()
    cache.add(AGENTRUNS, run("busy", "a", created=0, phase="Running", admitted=1))
    cache.add(AGENTRUNS, run("done", "a", created=0, phase="Succeeded", admitted=1))
    cache.add(AGENTRUNS, run("new", "a", created=2))
    cache.add(AGENTRUNS, run("other", "b", created=3, phase="Running"))
    registry = CollectorRegistry()
    limits = AdmissionLimits(
        per_namespace=5, per_agent=0, cluster=0, rate_per_namespace=0, rate_per_repo=0, rate_cluster=0
    )
    g = AdmissionGate(cache, limits, registry=registry, clock=lambda: T0)
    sample = registry.get_sample_value
    assert sample("jangar_active_concurrency", {"namespace": "a"}) == 1
    assert sample("jangar_active_concurrency", {"namespace": "b"}) == 1
    assert isinstance(g.admit(cache.get(AGENTRUNS, "new", "a")), Admit)  # reserved, status not written yet
    assert sample("jangar_active_concurrency", {"namespace": "a"}) == 2
    cache.add(AGENTRUNS, run("other", "b", created=3, phase="Failed"))
    assert sample("jangar_active_concurrency", {"namespace": "b"}) is None


def test_rate_limited_runs_are_counted_once_per_wait() -> None:
    """`jangar_rate_limit_rejections_total`: a run newly held by a rate limit, not every retried pass."""
    from prometheus_client import CollectorRegistry

    cache = FakeCache()
    cache.add(AGENTRUNS, run("a0", created=0, phase="Succeeded", admitted=90))
    cache.add(AGENTRUNS, run("next", created=2))
    cache.add(AGENTRUNS, run("late", created=3))
    registry = CollectorRegistry()
    limits = AdmissionLimits(
        per_namespace=0,
        per_agent=0,
        cluster=0,
        rate_per_namespace=1,
        rate_per_repo=0,
        rate_cluster=0,
        rate_window_seconds=60,
    )
    g = AdmissionGate(cache, limits, registry=registry, clock=lambda: T0 + timedelta(seconds=100))
    for _ in range(3):
        verdict = g.admit(cache.get(AGENTRUNS, "next", "a"))
        assert isinstance(verdict, Waiting) and verdict.scope == "rate"
        cache.add(AGENTRUNS, run("next", created=2, phase="Queued"))  # the controller's status write
    sample = registry.get_sample_value
    assert sample("jangar_rate_limit_rejections_total", {"namespace": "a"}) == 1
    g.admit(cache.get(AGENTRUNS, "late", "a"))
    assert sample("jangar_rate_limit_rejections_total", {"namespace": "a"}) == 2
