"""The sweep shell (`jangar.controllers.sweep`) against a fake API server and a fake cache: deletes carry the
uid precondition, a recreated object is never deleted, refusals are counted, debris is announced once, and
the next pass is timed from the plan."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from jangar.api.refs import AGENTRUNS, AGENTS
from jangar.conditions import format_time
from jangar.controllers.sweep import MIN_PASS_SECONDS, Sweeper, SweepMetrics
from jangar.runtime import Client, RetryPolicy
from jangar.runtime.resources import JOBS, PODS
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.settings import Settings
from tests.fakes.apiserver import FakeApiServer, fake_apiserver

NS = "agents"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUNS = "agents.proompteng.ai/v1alpha1/agentruns"
PODS_COLLECTION = "core/v1/pods"
RUNNER = {
    "agents.proompteng.ai/agent-run": "r",
    "app.kubernetes.io/managed-by": "jangar",
    "job-name": "r-job",
}


def settings(**env: str) -> Settings:
    return Settings.from_env(
        {
            "JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE": "2",
            "JANGAR_RETENTION_SWEEP_INTERVAL_SECONDS": "30",
            "JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS": "60",
            **env,
        }
    )


class Sweep:
    def __init__(self, fake: FakeApiServer, client: Client) -> None:
        self.fake = fake
        self.cache = FakeCache(AGENTRUNS, JOBS, PODS, AGENTS)
        self.events = FakeEventRecorder()
        self.client = client
        self.now = NOW
        self.make(settings())

    def make(self, config: Settings) -> None:
        self.registry = CollectorRegistry()
        self.sweeper = Sweeper(
            settings=config,
            client=self.client,
            cache=self.cache,
            recorder=None,
            events=self.events,
            metrics=SweepMetrics(self.registry),
            clock=lambda: self.now,
        )

    def run(self, name: str, finished_ago: float, ttl: int = 60, **annotations: str) -> dict[str, Any]:
        obj = {
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "spec": {"ttlSecondsAfterFinished": ttl},
            "status": {
                "phase": "Succeeded",
                "finishedAt": format_time(NOW - timedelta(seconds=finished_ago)),
            },
        }
        self.fake.put(RUNS, obj)
        self.cache.add(AGENTRUNS, copy.deepcopy(obj))
        return obj

    def pod(self, name: str) -> dict[str, Any]:
        obj = {
            "metadata": {"name": name, "namespace": NS, "labels": dict(RUNNER)},
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {"state": {"terminated": {"finishedAt": format_time(NOW - timedelta(seconds=120))}}}
                ],
            },
        }
        self.fake.put(PODS_COLLECTION, obj)
        self.cache.add(PODS, copy.deepcopy(obj))
        return obj

    def sync(self) -> None:
        """The informer catches up with the deletes."""
        for obj in self.cache.list(AGENTRUNS, NS):
            if (RUNS, NS, obj["metadata"]["name"]) not in self.fake.objects:
                self.cache.delete(AGENTRUNS, obj["metadata"]["name"], NS)

    def deletes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(p.rsplit("/", 1)[-1], body) for p, body in self.fake.delete_bodies]

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name, {"namespace": NS}) or 0.0


@pytest_asyncio.fixture
async def sweep() -> AsyncIterator[Sweep]:
    async with fake_apiserver() as fake:
        api = fake.api_client()
        client = Client(api, timeout=5, retry=RetryPolicy(max_attempts=1, base_delay=0.01, max_delay=0.02))
        yield Sweep(fake, client)
        await api.close()


async def test_expired_runs_go_by_the_cap_with_a_uid_precondition_and_the_retained_one_stays(
    sweep: Sweep,
) -> None:
    runs = [sweep.run(f"r{i}", finished_ago=100 + i) for i in range(5)]
    sweep.run("kept", finished_ago=10_000, **{"agents.proompteng.ai/retain": "true"})
    assert await sweep.sweeper.sweep_once() == 30.0  # the cap held 3 back: the full interval
    deleted = sweep.deletes()
    assert [name for name, _ in deleted] == ["r4", "r3"]
    assert deleted[0][1]["preconditions"] == {"uid": runs[4]["metadata"]["uid"]}
    assert sweep.metric("jangar_agentrun_retention_deletes_total") == 2
    for passes in (["r2", "r1"], ["r0"]):
        sweep.sync()
        sweep.fake.delete_bodies.clear()
        await sweep.sweeper.sweep_once()
        assert [name for name, _ in sweep.deletes()] == passes
    assert sweep.metric("jangar_agentrun_retention_deletes_total") == 5
    assert sweep.metric("jangar_agentrun_retention_errors_total") == 0
    assert (RUNS, NS, "kept") in sweep.fake.objects


async def test_a_run_recreated_under_the_same_name_is_not_deleted(sweep: Sweep) -> None:
    sweep.run("r", finished_ago=100)
    sweep.fake.remove(RUNS, NS, "r")
    sweep.fake.put(RUNS, {"metadata": {"name": "r", "namespace": NS}, "spec": {}})  # a new uid
    await sweep.sweeper.sweep_once()
    assert [name for name, _ in sweep.deletes()] == ["r"]  # sent with the old uid: 409, not an error
    assert (RUNS, NS, "r") in sweep.fake.objects
    assert sweep.metric("jangar_agentrun_retention_deletes_total") == 0
    assert sweep.metric("jangar_agentrun_retention_errors_total") == 0


async def test_a_refused_delete_is_counted_as_an_error(sweep: Sweep) -> None:
    sweep.run("r", finished_ago=100)
    sweep.fake.fail_next(1, 403, "DELETE")
    await sweep.sweeper.sweep_once()
    assert sweep.metric("jangar_agentrun_retention_errors_total") == 1
    assert sweep.metric("jangar_agentrun_retention_deletes_total") == 0


async def test_the_next_pass_comes_when_the_next_run_falls_due(sweep: Sweep) -> None:
    assert await sweep.sweeper.sweep_once() == 30.0
    sweep.run("soon", finished_ago=50)
    assert await sweep.sweeper.sweep_once() == pytest.approx(10.0)
    sweep.run("now", finished_ago=59)
    sweep.now = NOW + timedelta(seconds=0.5)  # due in 0.5 s: the pass still waits a second
    assert await sweep.sweeper.sweep_once() == MIN_PASS_SECONDS


async def test_debris_in_report_mode_is_counted_and_announced_once_and_never_deleted(sweep: Sweep) -> None:
    sweep.pod("orphan")
    await sweep.sweeper.sweep_once()
    await sweep.sweeper.sweep_once()
    assert sweep.deletes() == []
    assert sweep.metric("jangar_runtime_debris_found_total") == 1
    assert [(e.kind, e.name, e.type, e.reason) for e in sweep.events.events] == [
        ("Pod", "orphan", "Warning", "RuntimeDebrisFound")
    ]


async def test_debris_in_delete_mode_is_deleted_with_its_uid(sweep: Sweep) -> None:
    sweep.make(settings(JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE="delete"))
    pod = sweep.pod("orphan")
    await sweep.sweeper.sweep_once()
    assert sweep.deletes() == [
        (
            "orphan",
            {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": pod["metadata"]["uid"]}},
        )
    ]
    assert (PODS_COLLECTION, NS, "orphan") not in sweep.fake.objects
    assert sweep.metric("jangar_runtime_debris_found_total") == 1
    assert sweep.metric("jangar_runtime_debris_deleted_total") == 1
    assert [e.reason for e in sweep.events.events] == ["RuntimeDebrisDeleted"]


async def test_a_refused_debris_delete_is_counted(sweep: Sweep) -> None:
    sweep.make(settings(JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE="delete"))
    sweep.pod("orphan")
    sweep.fake.fail_next(1, 403, "DELETE")
    await sweep.sweeper.sweep_once()
    assert sweep.metric("jangar_runtime_debris_errors_total") == 1
    assert sweep.metric("jangar_runtime_debris_deleted_total") == 0


async def _until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_a_run_that_falls_due_before_the_next_pass_wakes_the_sweep(sweep: Sweep) -> None:
    task = asyncio.create_task(sweep.sweeper.run())
    try:
        await _until(lambda: sweep.sweeper._sleep_left is not None, "the first pass to end")  # 30 s to go
        far = sweep.run("far", finished_ago=0, ttl=3600)
        sweep.sweeper.notice(far)
        assert not sweep.sweeper._wake.is_set()  # due after the next pass anyway
        due = sweep.run("due", finished_ago=61)
        sweep.sweeper.notice(due)
        await _until(lambda: [n for n, _ in sweep.deletes()] == ["due"], "the woken pass to delete the run")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_while_the_cap_holds_runs_back_nothing_wakes_the_sweep(sweep: Sweep) -> None:
    for i in range(3):
        sweep.run(f"r{i}", finished_ago=100)
    task = asyncio.create_task(sweep.sweeper.run())
    try:
        await _until(lambda: len(sweep.deletes()) == 2, "the first pass")
        sweep.sweeper.notice(sweep.run("due", finished_ago=61))
        assert not sweep.sweeper._wake.is_set()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
