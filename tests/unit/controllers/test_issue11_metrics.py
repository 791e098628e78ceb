"""Issue 11's metrics: Schedules (fires by result, last fire time, missed and skipped ticks), Workspaces (by
phase, expirations), Artifacts (recorded, bytes, truncated, expired) — each value moves when the thing
happens, and only then."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from jangar.admission import AdmissionLimits
from jangar.api.contract import ANNOTATION_SCHEDULED_TIME, LABEL_SCHEDULE
from jangar.conditions import format_time
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.agentrun.apply import PlanApplier
from jangar.controllers.agentrun.decide import decide as decide_run
from jangar.controllers.app_tokens import AppTokens
from jangar.controllers.artifact import ArtifactReconciler
from jangar.controllers.kinds import ARTIFACTS, PVCS, WORKSPACES
from jangar.controllers.metrics import RunMetrics
from jangar.controllers.schedule.decide import PHASE_ACTIVE, PHASE_SUSPENDED
from jangar.controllers.schedule.metrics import ScheduleMetrics, count_ticks, observe_fires
from jangar.controllers.schedule.snapshot import ScheduleSnapshot, cronjob_inputs
from jangar.controllers.storage_metrics import StorageMetrics
from jangar.controllers.workspace import WorkspaceReconciler
from jangar.runtime import Client, Request, RetryPolicy
from jangar.runtime.resources import JOBS, PODS
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import Settings
from tests.fakes.apiserver import FakeApiServer, fake_apiserver
from tests.unit.controllers.agentrun_objects import ended_pod, job, run, snapshot

NOW = datetime(2026, 6, 1, 12, 7, 30, tzinfo=UTC)
SETTINGS = Settings.from_env({"JANGAR_IMAGE": "jangar:1"})


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# -- Schedules ----------------------------------------------------------------------------------------


def tick(minute: int) -> datetime:
    return datetime(2026, 6, 1, 12, minute, tzinfo=UTC)


def tick_run(minute: int) -> dict[str, Any]:
    return {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {
            "name": f"every-2026060112{minute:02d}",
            "namespace": "ns",
            "labels": {LABEL_SCHEDULE: "every"},
            "annotations": {ANNOTATION_SCHEDULED_TIME: format_time(tick(minute))},
        },
    }


def cond(type_: str, status: str, at: datetime) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": type_, "lastTransitionTime": format_time(at)}


def schedule(status: dict[str, Any] | None = None, *, suspend: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "every", "namespace": "ns", "uid": "s-uid", "generation": 1},
        "spec": {"cron": "* * * * *", "suspend": suspend, "targetRef": {"kind": "AgentRun", "name": "t"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def last(minute: int) -> dict[str, Any]:
    return {
        "kind": "AgentRun",
        "name": f"every-2026060112{minute:02d}",
        "namespace": "ns",
        "scheduledTime": format_time(tick(minute)),
    }


def snap(
    sched: dict[str, Any], runs: list[int], cronjob: dict[str, Any] | None = None, now: datetime = NOW
) -> ScheduleSnapshot:
    return ScheduleSnapshot(
        schedule=sched,
        now=now,
        inputs=cronjob_inputs(sched, SETTINGS),
        runs=[tick_run(m) for m in runs],
        cronjob=cronjob,
    )


def test_count_ticks_bounds() -> None:
    assert count_ticks("* * * * *", None, tick(1), tick(4), inclusive=False) == 2
    assert count_ticks("* * * * *", None, tick(1), tick(4), inclusive=True) == 3
    assert count_ticks("*/5 * * * *", None, tick(0), tick(59), inclusive=True) == 11


def test_a_new_tick_run_is_one_created_fire_and_its_time_is_the_last_fire() -> None:
    seen = observe_fires(snap(schedule({"phase": "Active", "lastRun": last(6)}), [5, 6, 7]), PHASE_ACTIVE)
    assert seen.fired is not None and seen.fired["name"] == "every-202606011207"
    assert seen.last_fire == tick(7) and seen.missed == 0 and seen.skipped == 0 and seen.failed_tick is None
    again = observe_fires(snap(schedule({"phase": "Active", "lastRun": last(7)}), [5, 6, 7]), PHASE_ACTIVE)
    assert again.fired is None and again.last_fire == tick(7)


def test_ticks_without_a_run_between_two_runs_are_missed_but_not_those_while_suspended() -> None:
    status = {"phase": "Active", "lastRun": last(1), "conditions": [cond("Suspended", "False", tick(0))]}
    assert observe_fires(snap(schedule(status), [1, 5]), PHASE_ACTIVE).missed == 3  # 2, 3, 4
    resumed = {"phase": "Active", "lastRun": last(1), "conditions": [cond("Suspended", "False", tick(3))]}
    assert observe_fires(snap(schedule(resumed), [1, 5]), PHASE_ACTIVE).missed == 1  # 4 (3 was suspended)


def test_resuming_counts_the_ticks_that_passed_while_suspended() -> None:
    status = {"phase": PHASE_SUSPENDED, "conditions": [cond("Suspended", "True", tick(2))]}
    seen = observe_fires(snap(schedule(status), []), PHASE_ACTIVE)
    assert seen.skipped == 5  # 12:03 .. 12:07, NOW is 12:07:30
    still = observe_fires(snap(schedule(status, suspend=True), []), PHASE_SUSPENDED)
    assert still.skipped == 0


def test_a_cronjob_tick_whose_job_ended_without_a_run_is_a_failed_fire() -> None:
    status = {"phase": "Active", "lastRun": last(5)}
    failed = {
        "status": {"lastScheduleTime": format_time(tick(7)), "lastSuccessfulTime": format_time(tick(5))}
    }
    assert observe_fires(snap(schedule(status), [5], failed), PHASE_ACTIVE).failed_tick == tick(7)
    active = {"status": {**failed["status"], "active": [{"name": "every-cron-123"}]}}
    assert observe_fires(snap(schedule(status), [5], active), PHASE_ACTIVE).failed_tick is None
    assert observe_fires(snap(schedule(status), [5, 7], failed), PHASE_ACTIVE).failed_tick is None
    ok = {"status": {"lastScheduleTime": format_time(tick(7)), "lastSuccessfulTime": format_time(tick(7))}}
    assert observe_fires(snap(schedule(status), [5], ok), PHASE_ACTIVE).failed_tick is None


def test_schedule_metrics_record_each_observation_once() -> None:
    registry = CollectorRegistry()
    metrics = ScheduleMetrics(registry)
    status = {"phase": "Active", "lastRun": last(1), "conditions": [cond("Suspended", "False", tick(0))]}
    failed = {
        "status": {"lastScheduleTime": format_time(tick(6)), "lastSuccessfulTime": format_time(tick(4))}
    }
    seen = observe_fires(snap(schedule(status), [1, 4], failed), PHASE_ACTIVE)
    metrics.record("ns", "every", seen)
    metrics.record("ns", "every", observe_fires(snap(schedule(status), [1, 4], failed), PHASE_ACTIVE))
    fires = "jangar_schedule_fires_total"
    # the second pass re-observes the same world: the created fire counts again only because its status
    # (lastRun) was not written in this test; the failed tick is deduplicated in-process
    assert value(registry, fires, namespace="ns", result="created") == 2
    assert value(registry, fires, namespace="ns", result="failed") == 1
    assert value(registry, "jangar_schedule_skipped_ticks_total", namespace="ns", reason="missed") == 4
    stamp = "jangar_schedule_last_fire_timestamp_seconds"
    assert value(registry, stamp, namespace="ns", schedule="every") == tick(4).timestamp()
    written = {**status, "lastRun": last(4)}
    metrics.record("ns", "every", observe_fires(snap(schedule(written), [1, 4], failed), PHASE_ACTIVE))
    assert value(registry, fires, namespace="ns", result="created") == 2
    resumed = {"phase": PHASE_SUSPENDED, "conditions": [cond("Suspended", "True", tick(5))]}
    metrics.record("ns", "every", observe_fires(snap(schedule(resumed), []), PHASE_ACTIVE))
    assert value(registry, "jangar_schedule_skipped_ticks_total", namespace="ns", reason="suspended") == 2
    metrics.forget("ns", "every")
    assert registry.get_sample_value(stamp, {"namespace": "ns", "schedule": "every"}) is None


# -- Workspaces and Artifacts -------------------------------------------------------------------------

WORKSPACES_PATH = "workspaces.proompteng.ai/v1alpha1/workspaces"
ARTIFACTS_PATH = "artifacts.proompteng.ai/v1alpha1/artifacts"
RUNS_PATH = "agents.proompteng.ai/v1alpha1/agentruns"


class World:
    def __init__(self, fake: FakeApiServer, client: Client) -> None:
        self.fake, self.client = fake, client
        self.registry = CollectorRegistry()
        self.metrics = StorageMetrics.for_registry(self.registry)
        self.cache = FakeCache(WORKSPACES, ARTIFACTS, PVCS)
        self.metrics.watch(self.cache)
        self.events = FakeEventRecorder()
        self.now = NOW

    def put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        stored = self.fake.put(path, copy.deepcopy(obj))
        return copy.deepcopy(stored)


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    async with fake_apiserver() as fake:
        api = fake.api_client()
        client = Client(api, timeout=5, retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
        yield World(fake, client)
        await api.close()


def test_for_registry_shares_one_set_per_registry() -> None:
    registry = CollectorRegistry()
    assert StorageMetrics.for_registry(registry) is StorageMetrics.for_registry(registry)
    assert RunMetrics(registry).storage is StorageMetrics.for_registry(registry)


async def test_an_expiring_workspace_counts_one_expiration(world: World) -> None:
    created = format_time(NOW - timedelta(seconds=120))
    ws = world.put(
        WORKSPACES_PATH,
        {
            "apiVersion": "workspaces.proompteng.ai/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": "w", "namespace": "ns", "generation": 1, "creationTimestamp": created},
            "spec": {"size": "1Gi", "ttlSeconds": 60},
            "status": {"phase": "Ready"},
        },
    )
    world.cache.add(WORKSPACES, ws)
    reconciler = WorkspaceReconciler(
        world.client, world.cache, world.events, lambda: world.now, world.metrics
    )
    name = "jangar_workspace_expirations_total"
    assert value(world.registry, name, namespace="ns") == 0
    await reconciler.reconcile(Request("ns", "w"))
    assert value(world.registry, name, namespace="ns") == 1
    stored = world.fake.objects[(WORKSPACES_PATH, "ns", "w")]
    assert stored["status"]["phase"] == "Expired"
    world.cache.add(WORKSPACES, copy.deepcopy(stored))
    await reconciler.reconcile(Request("ns", "w"))  # still expired: not a new expiration
    assert value(world.registry, name, namespace="ns") == 1
    assert value(world.registry, "jangar_workspaces", namespace="ns", phase="Expired") == 1


async def test_artifacts_by_phase_and_bytes_come_from_the_cache(world: World) -> None:
    def artifact(name: str, phase: str, size: int) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"sizeBytes": size},
            "status": {"phase": phase, "sizeBytes": size},
        }

    world.cache.add(ARTIFACTS, artifact("a", "Ready", 100), artifact("b", "Ready", 20))
    world.cache.add(ARTIFACTS, artifact("c", "Invalid", 0))
    assert value(world.registry, "jangar_artifacts", namespace="ns", phase="Ready") == 2
    assert value(world.registry, "jangar_artifacts", namespace="ns", phase="Invalid") == 1
    assert value(world.registry, "jangar_artifact_bytes", namespace="ns") == 120
    world.cache.delete(ARTIFACTS, "a", "ns")
    assert value(world.registry, "jangar_artifact_bytes", namespace="ns") == 20


async def test_an_artifact_past_its_ttl_is_deleted_and_counted(world: World) -> None:
    created = format_time(NOW - timedelta(days=3))
    art = world.put(
        ARTIFACTS_PATH,
        {
            "apiVersion": "artifacts.proompteng.ai/v1alpha1",
            "kind": "Artifact",
            "metadata": {"name": "old", "namespace": "ns", "generation": 1, "creationTimestamp": created},
            "spec": {"lifecycle": {"ttlDays": 2}},
        },
    )
    world.cache.add(ARTIFACTS, art)
    fresh = {**copy.deepcopy(art), "metadata": {**art["metadata"], "name": "new"}}
    fresh["metadata"]["creationTimestamp"] = format_time(NOW)
    world.cache.add(ARTIFACTS, world.put(ARTIFACTS_PATH, fresh))
    reconciler = ArtifactReconciler(world.client, world.cache, world.events, lambda: world.now, world.metrics)
    await reconciler.reconcile(Request("ns", "new"))
    assert value(world.registry, "jangar_artifacts_expired_total", namespace="ns") == 0
    await reconciler.reconcile(Request("ns", "old"))
    assert value(world.registry, "jangar_artifacts_expired_total", namespace="ns") == 1
    assert (ARTIFACTS_PATH, "ns", "old") not in world.fake.objects


@pytest.mark.parametrize(("reported", "truncated"), [(2, 0), (5, 1)])
async def test_a_finished_runs_artifacts_are_counted_with_their_bytes(
    world: World, reported: int, truncated: int
) -> None:
    import dataclasses

    from tests.unit.controllers.agentrun_objects import SETTINGS as RUN_SETTINGS

    settings = dataclasses.replace(
        RUN_SETTINGS, artifacts=dataclasses.replace(RUN_SETTINGS.artifacts, max_per_run=3)
    )
    entries = [
        {"name": f"f{i}", "path": f"/tmp/f{i}", "present": True, "size": 10 + i} for i in range(reported)
    ]
    message = json.dumps({"outputs": {}, "artifacts": entries})
    obj = run(
        "Running",
        status={
            "startedAt": format_time(NOW),
            "jobRef": {"name": "run-1-job", "namespace": "agents"},
            "runtimeRef": {"type": "job", "name": "run-1-job", "namespace": "agents"},
        },
    )
    obj["metadata"]["uid"] = "uid-run-1"
    stored = world.put(RUNS_PATH, obj)
    pods = {"run-1-job": [ended_pod("run-1-job", exit_code=0, message=message)]}
    plan = decide_run(snapshot(stored, jobs=(job(complete=True),), pods=pods, settings=settings))
    metrics = RunMetrics(world.registry)
    cache = FakeCache(JOBS, PODS)
    applier = PlanApplier(
        client=world.client,
        cache=cache,
        gate=AdmissionGate(cache, AdmissionLimits()),
        events=world.events,
        recorder=None,
        app_tokens=AppTokens(world.client),
        metrics=metrics,
    )
    await applier.apply(stored, plan, NOW)
    kept = min(reported, 3)
    assert value(world.registry, "jangar_artifacts_recorded_total", namespace="agents") == kept
    assert value(world.registry, "jangar_artifacts_recorded_bytes_total", namespace="agents") == sum(
        10 + i for i in range(kept)
    )
    assert value(world.registry, "jangar_artifacts_truncated_total", namespace="agents") == truncated


@pytest.mark.parametrize("spec", [{"cron": "not a cron"}, {"cron": "* * * * *", "timezone": "Mars/Base"}, {}])
def test_an_invalid_schedule_counts_no_ticks_and_does_not_raise(spec: dict[str, Any]) -> None:
    sched = schedule(
        {"phase": PHASE_SUSPENDED, "lastRun": last(1), "conditions": [cond("Suspended", "True", tick(0))]}
    )
    sched["spec"] = {k: v for k, v in sched["spec"].items() if k not in ("cron",)} | spec
    seen = observe_fires(snap(sched, [1, 5]), PHASE_ACTIVE)
    assert seen.fired is not None and (seen.missed, seen.skipped) == (0, 0)
