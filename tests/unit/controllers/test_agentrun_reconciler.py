"""The AgentRun shell (read → decide → apply) against a fake API server and a fake cache: the writes happen,
in the right order, and only the ones the plan asks for."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from jangar.admission import AdmissionLimits
from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP
from jangar.api.refs import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS
from jangar.conditions import format_time
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.agentrun import AgentRunReconciler
from jangar.controllers.agentrun.apply import PlanApplier
from jangar.controllers.app_tokens import AppTokens
from jangar.controllers.metrics import RunMetrics
from jangar.controllers.own_writes import STALE_RETRY_SECONDS, OwnWrites
from jangar.runtime import ApiError, Client, Request, RetryPolicy
from jangar.runtime.resources import JOBS, PODS
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import Settings
from tests.fakes.apiserver import FakeApiServer, fake_apiserver

NS = "agents"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"})
RUNS = "agents.proompteng.ai/v1alpha1/agentruns"
JOBS_COLLECTION = "batch/v1/jobs"
CM_COLLECTION = "core/v1/configmaps"


class ListRecorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def record(self, event: Any) -> None:
        self.events.append(event)


class World:
    def __init__(self, fake: FakeApiServer, client: Client) -> None:
        self.fake = fake
        self.client = client
        self.cache = FakeCache(AGENTRUNS, JOBS, PODS, AGENTS, AGENTPROVIDERS, IMPLEMENTATIONSPECS)
        self.gate = AdmissionGate(self.cache, AdmissionLimits(per_namespace=1))
        self.events = FakeEventRecorder()
        self.records = ListRecorder()
        self.registry = CollectorRegistry()
        metrics = RunMetrics(self.registry)
        applier = PlanApplier(
            client=client,
            cache=self.cache,
            gate=self.gate,
            events=self.events,
            recorder=self.records,
            app_tokens=AppTokens(client),
            metrics=metrics,
        )
        self.now = NOW
        self.reconciler = AgentRunReconciler(
            settings=SETTINGS,
            client=client,
            cache=self.cache,
            gate=self.gate,
            applier=applier,
            metrics=metrics,
            clock=lambda: self.now,
        )
        for ref, obj in (
            (
                AGENTPROVIDERS,
                {"metadata": {"name": "codex", "namespace": NS}, "spec": {"binary": "/bin/codex"}},
            ),
            (
                AGENTS,
                {"metadata": {"name": "coder", "namespace": NS}, "spec": {"providerRef": {"name": "codex"}}},
            ),
            (IMPLEMENTATIONSPECS, {"metadata": {"name": "task", "namespace": NS}, "spec": {"text": "do it"}}),
        ):
            self.cache.add(ref, obj)

    def create_run(self, name: str = "r1", **meta: Any) -> dict[str, Any]:
        run = {
            "apiVersion": "agents.proompteng.ai/v1alpha1",
            "kind": "AgentRun",
            "metadata": {"name": name, "namespace": NS, "creationTimestamp": format_time(NOW)} | meta,
            "spec": {
                "agentRef": {"name": "coder"},
                "implementationSpecRef": {"name": "task"},
                "runtime": {"type": "job"},
            },
        }
        self.fake.put(RUNS, run)
        self.sync()
        return run

    def stored(self, collection: str, name: str) -> dict[str, Any] | None:
        obj = self.fake.objects.get((collection, NS, name))
        return copy.deepcopy(obj) if obj is not None else None

    def sync(self) -> None:
        """The informers catch up: the cache shows the fake server's objects."""
        for collection, ref in ((RUNS, AGENTRUNS), (JOBS_COLLECTION, JOBS)):
            store = self.cache.store(ref)
            for key in list(store.keys()):
                ns, _, name = key.partition("/")
                if (collection, ns, name) not in self.fake.objects:
                    self.cache.delete(ref, name, ns)
            for (coll, _, _), obj in list(self.fake.objects.items()):
                if coll == collection:
                    self.cache.add(ref, copy.deepcopy(obj))

    async def reconcile(self, name: str = "r1") -> Any:
        result = await self.reconciler.reconcile(Request(NS, name))
        await self.events.flush()
        self.sync()
        return result


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    async with fake_apiserver() as fake:
        api = fake.api_client()
        client = Client(api, timeout=5, retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
        yield World(fake, client)
        await api.close()


def writes(fake: FakeApiServer) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _, _ in fake.requests if m != "GET"]


async def test_a_new_run_gets_its_finalizer_children_then_one_status_write(world: World) -> None:
    world.create_run()
    world.fake.requests.clear()
    assert await world.reconcile() is None
    methods = [
        (m, p.rsplit("/", 2)[-2] if p.endswith("/status") else p.rsplit("/", 1)[-1])
        for m, p in writes(world.fake)
    ]
    assert methods == [("PATCH", "r1"), ("POST", "configmaps"), ("POST", "jobs"), ("PUT", "r1")]
    run = world.stored(RUNS, "r1")
    assert run is not None and run["metadata"]["finalizers"] == [FINALIZER_RUNTIME_CLEANUP]
    assert run["status"]["phase"] == "Running" and run["status"]["jobRef"]["name"] == "r1-job"
    job = world.stored(JOBS_COLLECTION, "r1-job")
    assert job is not None and job["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    assert world.stored(CM_COLLECTION, "r1-spec") is not None
    assert world.events.reasons() == ["Running"]
    assert [e.phase for e in world.records.events] == ["Running"]


async def test_a_second_pass_over_an_unchanged_world_writes_nothing_new(world: World) -> None:
    world.create_run()
    await world.reconcile()
    job = world.stored(JOBS_COLLECTION, "r1-job")
    assert job is not None
    job["status"] = {"active": 1, "startTime": format_time(NOW)}
    world.fake.put(JOBS_COLLECTION, job)
    world.sync()
    await world.reconcile()  # first observation: jobObservedAt, uids
    world.fake.requests.clear()
    world.events.clear()
    await world.reconcile()
    assert writes(world.fake) == [] and world.events.reasons() == []


async def test_a_completed_job_succeeds_the_run_then_gets_its_ttl(world: World) -> None:
    world.create_run()
    await world.reconcile()
    job = world.stored(JOBS_COLLECTION, "r1-job")
    assert job is not None
    job["status"] = {
        "succeeded": 1,
        "startTime": format_time(NOW),
        "completionTime": format_time(NOW + timedelta(seconds=3)),
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    world.fake.put(JOBS_COLLECTION, job)
    world.sync()
    world.now = NOW + timedelta(seconds=5)
    world.fake.requests.clear()
    result = await world.reconcile()
    assert result is None  # nothing to wake for: the retention sweep deletes the run when it is due
    kinds = [
        "agentruns" if "/agentruns/" in p else "jobs" if "/jobs/" in p else p for _, p in writes(world.fake)
    ]
    assert kinds == ["agentruns", "jobs"]  # the status first, then the Job's TTL
    stored_job = world.stored(JOBS_COLLECTION, "r1-job")
    assert stored_job is not None and stored_job["spec"]["ttlSecondsAfterFinished"] == 600
    run = world.stored(RUNS, "r1")
    assert run is not None and run["status"]["phase"] == "Succeeded"
    assert world.events.reasons() == ["Running", "Succeeded"]


async def test_a_second_run_queues_behind_the_namespace_limit_and_is_woken(world: World) -> None:
    world.create_run("r1")
    world.create_run("r2", creationTimestamp=format_time(NOW + timedelta(seconds=1)))
    await world.reconcile("r1")
    result = await world.reconcile("r2")
    run = world.stored(RUNS, "r2")
    assert run is not None and run["status"]["phase"] == "Queued" and result is not None
    assert run["status"]["queue"]["position"] == 1 and world.stored(JOBS_COLLECTION, "r2-job") is None


async def test_a_child_name_taken_by_another_run_waits_for_cleanup(world: World) -> None:
    world.create_run()
    world.fake.put(
        JOBS_COLLECTION,
        {
            "metadata": {
                "name": "r1-job",
                "namespace": NS,
                "ownerReferences": [{"uid": "other", "controller": True, "kind": "AgentRun", "name": "r1"}],
            }
        },
    )
    result = await world.reconcile()
    assert result is not None and result.requeue_after == 5.0
    run = world.stored(RUNS, "r1")
    assert run is not None and run["status"]["phase"] == "Pending"
    reasons = {c["type"]: c["reason"] for c in run["status"]["conditions"]}
    assert reasons["Warning"] == "ChildNameTaken"
    assert world.gate.ledger.reservations == {}


async def test_a_deleted_run_deletes_its_jobs_and_drops_the_finalizer(world: World) -> None:
    world.create_run()
    await world.reconcile()
    run = world.stored(RUNS, "r1")
    assert run is not None
    run["metadata"]["deletionTimestamp"] = format_time(NOW)
    world.fake.put(RUNS, run)
    world.sync()
    await world.reconcile()
    assert world.stored(JOBS_COLLECTION, "r1-job") is None
    stored = world.stored(RUNS, "r1")
    assert stored is not None and stored["metadata"].get("finalizers") in (None, [])
    assert world.records.events[-1].phase == "Running"


async def test_a_run_past_its_retention_is_not_deleted_by_the_reconciler(world: World) -> None:
    world.create_run()
    run = world.stored(RUNS, "r1")
    assert run is not None
    run["metadata"]["finalizers"] = [FINALIZER_RUNTIME_CLEANUP]
    run["spec"]["ttlSecondsAfterFinished"] = 60
    run["status"] = {"phase": "Succeeded", "finishedAt": format_time(NOW - timedelta(seconds=61))}
    world.fake.put(RUNS, run)
    world.sync()
    assert await world.reconcile() is None
    assert writes(world.fake) == []  # the retention sweep deletes it (tests/unit/controllers/test_sweep.py)


async def test_a_run_gone_from_the_cache_is_nothing_to_do(world: World) -> None:
    assert await world.reconcile("ghost") is None
    assert writes(world.fake) == []


async def test_a_pass_over_a_cache_that_has_not_seen_our_write_defers_instead_of_writing_again(
    world: World,
) -> None:
    """Issue 14 §2: a Job event can start the next pass before the informer delivers the status write; the
    stale run would be written again with its old resourceVersion (a 409 and a backoff retry)."""
    world.create_run()
    stale = world.cache.get(AGENTRUNS, "r1", NS)
    await world.reconcile()  # writes, then (in `World.reconcile`) the cache catches up
    assert stale is not None
    world.cache.add(AGENTRUNS, stale)  # the informer has not delivered our writes yet
    world.fake.requests.clear()
    result = await world.reconciler.reconcile(Request(NS, "r1"))
    assert result is not None and result.requeue_after == STALE_RETRY_SECONDS
    assert writes(world.fake) == []
    world.sync()  # delivered: the next pass decides normally, and the memory of the write is gone
    world.cache.add(JOBS, {**world.cache.get(JOBS, "r1-job", NS), "status": {"active": 1}})  # type: ignore[dict-item]
    world.fake.requests.clear()
    result = await world.reconciler.reconcile(Request(NS, "r1"))
    assert result is None or result.requeue_after != STALE_RETRY_SECONDS
    assert not world.reconciler.applier.own_writes.is_stale(AGENTRUNS.kind, stale)  # forgotten


async def test_a_ttl_patch_is_not_repeated_while_the_cached_job_is_the_version_it_patched(
    world: World,
) -> None:
    world.create_run()
    await world.reconcile()
    job = world.stored(JOBS_COLLECTION, "r1-job")
    assert job is not None
    job["status"] = {
        "succeeded": 1,
        "startTime": format_time(NOW),
        "completionTime": format_time(NOW + timedelta(seconds=3)),
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    world.fake.put(JOBS_COLLECTION, job)
    world.sync()
    world.now = NOW + timedelta(seconds=5)
    cached_job = world.cache.get(JOBS, "r1-job", NS)
    await world.reconcile()  # Succeeded + the TTL patch
    assert cached_job is not None
    world.cache.add(JOBS, cached_job)  # the Job informer lags behind our patch
    world.fake.requests.clear()
    await world.reconciler.reconcile(Request(NS, "r1"))
    assert [p for _, p in writes(world.fake) if "/jobs/" in p] == []


def test_a_write_that_changed_nothing_is_not_remembered_as_replacing_a_version() -> None:
    """The API server keeps the resourceVersion of a no-op write: no event will show another version, so
    remembering it would defer every later pass of the object forever."""
    writes = OwnWrites()
    before = {"metadata": {"namespace": "ns", "name": "r", "resourceVersion": "7"}}
    writes.wrote(
        AGENTRUNS.kind, before, {"metadata": {"namespace": "ns", "name": "r", "resourceVersion": "7"}}
    )
    assert not writes.is_stale(AGENTRUNS.kind, before)
    writes.wrote(
        AGENTRUNS.kind, before, {"metadata": {"namespace": "ns", "name": "r", "resourceVersion": "8"}}
    )
    assert writes.is_stale(AGENTRUNS.kind, before)


# -- admission reservations after failed writes (the API-server gap of docs/reliability.md) ------------------


def admissible(world: World) -> list[str]:
    """The runs admission would start now (what a wake-up enqueues): a run holding a slot is not in it."""
    return [r.name for r in world.gate.runs_to_wake()]


async def test_an_admitted_run_whose_finalizer_write_fails_gives_its_slot_back(world: World) -> None:
    """A run admitted on its first pass writes its finalizer first; when that write fails (the API server is
    unreachable) the run did not start, so its reservation is released at once — not when its retry comes
    (its backoff grows during an outage) nor after a TTL."""
    world.create_run("r1")
    world.create_run("r2", creationTimestamp=format_time(NOW + timedelta(seconds=1)))
    world.fake.fail_next(2, 503, method="PATCH")  # both attempts of the client's retry policy
    with pytest.raises(ApiError):  # a 503 after the retries
        await world.reconcile("r1")
    assert world.stored(JOBS_COLLECTION, "r1-job") is None
    assert world.gate.ledger.reservations == {}
    assert admissible(world) == ["r1"]  # the slot is free again; r1 is still the FIFO head
    await world.reconcile("r1")
    await world.reconcile("r2")
    r1, r2 = world.stored(RUNS, "r1"), world.stored(RUNS, "r2")
    assert r1 is not None and r1["status"]["phase"] == "Running"
    assert r2 is not None and r2["status"]["phase"] == "Queued"


async def test_an_admitted_run_whose_job_creation_fails_gives_its_slot_back(world: World) -> None:
    world.create_run("r1", finalizers=[FINALIZER_RUNTIME_CLEANUP])
    world.fake.fail_next(4, 503, method="POST")
    with pytest.raises(ApiError):
        await world.reconcile("r1")
    assert world.stored(JOBS_COLLECTION, "r1-job") is None
    assert world.gate.ledger.reservations == {}
    assert admissible(world) == ["r1"]


async def test_a_run_whose_status_write_fails_after_its_job_keeps_its_slot(world: World) -> None:
    """The Job exists, so the run really holds capacity: the reservation is kept until the cache shows the
    Job (then the Job counts for it), and a second run is not admitted past the cap of 1 meanwhile."""
    world.create_run("r1", finalizers=[FINALIZER_RUNTIME_CLEANUP])
    world.create_run(
        "r2",
        finalizers=[FINALIZER_RUNTIME_CLEANUP],
        creationTimestamp=format_time(NOW + timedelta(seconds=1)),
    )
    world.fake.fail_next(2, 503, method="PUT")
    with pytest.raises(ApiError):
        await world.reconciler.reconcile(Request(NS, "r1"))  # no sync: the cache has not seen the Job
    assert world.stored(JOBS_COLLECTION, "r1-job") is not None
    assert list(world.gate.ledger.reservations) == [(NS, "r1")]
    assert admissible(world) == []
    world.sync()  # the Job reaches the cache: it holds the slot now, the reservation is dropped
    assert admissible(world) == []
    assert world.gate.ledger.reservations == {}
    await world.reconcile("r2")
    r2 = world.stored(RUNS, "r2")
    assert r2 is not None and r2["status"]["phase"] == "Queued"


def test_the_memory_of_own_writes_is_bounded() -> None:
    """A TTL-patched Job is never checked again once the cache shows the patch: the memory must not keep
    every finished Job for the life of the process."""
    writes = OwnWrites(max_remembered=3)
    for i in range(10):
        meta = {"namespace": "ns", "name": f"j{i}", "resourceVersion": "1"}
        writes.wrote("Job", {"metadata": meta}, {"metadata": {**meta, "resourceVersion": "2"}})
    assert len(writes) == 3
    assert writes.is_stale("Job", {"metadata": {"namespace": "ns", "name": "j9", "resourceVersion": "1"}})
    assert not writes.is_stale("Job", {"metadata": {"namespace": "ns", "name": "j0", "resourceVersion": "1"}})


async def test_a_plans_extra_events_are_emitted_once_with_the_status_write(world: World) -> None:
    """The plan's own Events (a timed-out workflow attempt, a loop that stopped, a spec edited with
    enforcement off) go out once per status write that records them, not once per merged branch."""
    from jangar.controllers.agentrun.plan import RunPlan, StatusUpdate
    from jangar.controllers.runconditions import RunDetails

    world.create_run("r1", finalizers=[FINALIZER_RUNTIME_CLEANUP])
    stored = world.stored(RUNS, "r1")
    assert stored is not None
    update = StatusUpdate(
        phase="Running",
        details=RunDetails("Running", "step a running"),
        status={"phase": "Running", "message": "step a running"},
    )
    plan = RunPlan(status=update, events=(("Warning", "WorkflowStepTimedOut", "attempt 1 ran too long"),))
    await world.reconciler.applier.apply(stored, plan, NOW)
    assert world.events.reasons().count("WorkflowStepTimedOut") == 1
