"""Level-triggered run records through the AgentRun shell (issue 12): every pass offers the run's snapshot
(with its provider and exit code); a refused offer requeues the run; a run is deleted (by its finalizer, or
by the retention sweep) only once its record is committed (a user's delete waits at most `RECORD_HOLD_DELETE_SECONDS`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP
from jangar.conditions import format_time
from jangar.controllers.recording import (
    RECORD_HOLD_DELETE_SECONDS,
    RECORD_REFUSED_SPREAD_SECONDS,
    RECORD_RETRY_SECONDS,
    provider_of,
    retry_refused,
    run_event,
)
from jangar.controllers.sweep import Sweeper, SweepMetrics
from jangar.storage import Offer, RunEvent
from tests.unit.controllers.test_agentrun_reconciler import (
    JOBS_COLLECTION,
    NOW,
    NS,
    RUNS,
    SETTINGS,
    World,
    world,
    writes,
)

__all__ = ["world"]  # the fixture, shared with the reconciler tests


class AnsweringRecorder:
    """Takes every offer and answers `answer`."""

    def __init__(self, answer: Offer) -> None:
        self.answer = answer
        self.events: list[RunEvent] = []

    def record(self, event: Any) -> Offer:
        self.events.append(event)
        return self.answer


def _recorder(world: World, answer: Offer) -> AnsweringRecorder:
    recorder = AnsweringRecorder(answer)
    world.reconciler.applier.recorder = recorder
    return recorder


def _finish_job(world: World) -> None:
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


async def test_every_pass_offers_the_record_with_the_provider_terminal_runs_included(world: World) -> None:
    recorder = _recorder(world, Offer.RECORDED)
    world.create_run()
    await world.reconcile()
    assert recorder.events[-1].phase == "Running"
    assert recorder.events[-1].provider == "codex"  # the Agent's providerRef, then its Job's label
    _finish_job(world)
    world.now = NOW + timedelta(seconds=5)
    await world.reconcile()
    await world.reconcile()  # a terminal run reconciled again (a restart, a resync): offered again
    assert [e.phase for e in recorder.events[-2:]] == ["Succeeded", "Succeeded"]
    assert recorder.events[-1].provider == "codex"


async def test_a_refused_record_requeues_the_run_to_offer_it_again(world: World) -> None:
    recorder = _recorder(world, Offer.REFUSED)
    world.create_run()
    await world.reconcile()
    _finish_job(world)
    world.now = NOW + timedelta(seconds=5)
    result = await world.reconcile()
    assert result is not None and result.requeue_after is not None
    assert RECORD_RETRY_SECONDS <= result.requeue_after <= RECORD_REFUSED_SPREAD_SECONDS
    recorder.answer = Offer.PENDING  # taken on the next pass: back to the plan's own wake-up (none: the
    result = await world.reconcile()  # retention sweep times the run's deletion)
    assert result is None
    assert [e.phase for e in recorder.events[-2:]] == ["Succeeded", "Succeeded"]


def _expired(world: World) -> None:
    world.create_run()
    run = world.stored(RUNS, "r1")
    assert run is not None
    run["metadata"]["finalizers"] = [FINALIZER_RUNTIME_CLEANUP]
    run["metadata"]["uid"] = "uid-r1"
    run["spec"]["ttlSecondsAfterFinished"] = 60
    run["status"] = {"phase": "Succeeded", "finishedAt": format_time(NOW - timedelta(seconds=61))}
    world.fake.put(RUNS, run)
    world.sync()


DELETE_RUN = ("DELETE", f"/apis/agents.proompteng.ai/v1alpha1/namespaces/{NS}/agentruns/r1")


@pytest.mark.parametrize("answer", [Offer.PENDING, Offer.REFUSED])
async def test_retention_waits_until_the_record_is_committed(world: World, answer: Offer) -> None:
    recorder = AnsweringRecorder(answer)
    sweeper = Sweeper(
        settings=SETTINGS,
        client=world.client,
        cache=world.cache,
        recorder=recorder,
        events=world.events,
        metrics=SweepMetrics(CollectorRegistry()),
        clock=lambda: world.now,
    )
    _expired(world)
    assert await world.reconcile() is None  # the reconciler never deletes a run for its retention
    assert await sweeper.sweep_once() == RECORD_RETRY_SECONDS  # the next pass comes soon
    assert DELETE_RUN not in writes(world.fake)
    recorder.answer = Offer.RECORDED
    await sweeper.sweep_once()
    assert DELETE_RUN in writes(world.fake)
    assert recorder.events[-1].phase == "Succeeded" and recorder.events[-1].provider == "codex"


async def test_a_deleted_run_keeps_its_finalizer_until_recorded_or_the_hold_ends(world: World) -> None:
    recorder = _recorder(world, Offer.RECORDED)
    world.create_run()
    await world.reconcile()
    recorder.answer = Offer.PENDING
    run = world.stored(RUNS, "r1")
    assert run is not None
    run["metadata"]["deletionTimestamp"] = format_time(NOW)
    world.fake.put(RUNS, run)
    world.sync()
    result = await world.reconcile()
    assert result is not None and result.requeue_after == RECORD_RETRY_SECONDS
    stored = world.stored(RUNS, "r1")
    assert stored is not None and FINALIZER_RUNTIME_CLEANUP in stored["metadata"]["finalizers"]
    world.now = NOW + timedelta(seconds=RECORD_HOLD_DELETE_SECONDS)  # the database never came back
    await world.reconcile()
    stored = world.stored(RUNS, "r1")
    assert stored is not None and stored["metadata"].get("finalizers") in (None, [])


def test_the_record_carries_the_runner_exit_code_and_the_provider() -> None:
    run = {
        "metadata": {"name": "r", "namespace": NS, "uid": "u", "creationTimestamp": format_time(NOW)},
        "spec": {"agentRef": {"name": "coder"}},
        "status": {"phase": "Failed", "finishedAt": format_time(NOW), "runner": {"exitCode": 3}},
    }
    event = run_event(run, provider="codex")
    assert event is not None and (event.exit_code, event.provider) == (3, "codex")
    for bad in (True, "3", 2**40):
        run["status"]["runner"] = {"exitCode": bad}
        event = run_event(run)
        assert event is not None and event.exit_code is None


def test_the_provider_comes_from_the_job_then_the_agent_then_the_run_label() -> None:
    label = "agents.proompteng.ai/provider"
    run: dict[str, Any] = {"metadata": {"labels": {label: "from-run"}}, "status": {"jobRef": {"name": "b"}}}
    jobs = {
        "a": {"metadata": {"labels": {label: "job-a"}}},
        "b": {"metadata": {"labels": {label: "job-b"}}},
    }
    agent = {"spec": {"providerRef": {"name": "from-agent"}}}
    assert provider_of(run, jobs, agent) == "job-b"  # the run's current Job first
    assert provider_of(run, {"a": jobs["a"]}, agent) == "job-a"
    assert provider_of(run, {}, agent) == "from-agent"
    assert provider_of(run, {}, None) == "from-run"
    assert provider_of({"metadata": {}}, {}, None) is None


def test_retry_refused_only_shortens_the_wake_up_of_a_refused_offer() -> None:
    delays = {retry_refused(Offer.REFUSED, None) for _ in range(50)}
    assert all(d is not None and RECORD_RETRY_SECONDS <= d <= RECORD_REFUSED_SPREAD_SECONDS for d in delays)
    assert len(delays) > 1  # spread out, not one wave
    assert retry_refused(Offer.REFUSED, 1.0) == 1.0
    later = retry_refused(Offer.REFUSED, 600.0)
    assert later is not None and RECORD_RETRY_SECONDS <= later <= RECORD_REFUSED_SPREAD_SECONDS
    assert retry_refused(Offer.PENDING, None) is None
    assert retry_refused(Offer.RECORDED, 600.0) == 600.0
