"""`decide` with an unhealthy AgentProvider: a run about to start is held Pending with Blocked=True (not
queued, not failed), and starts once the hold is over; a run that already has a Job is never held."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from jangar.admission import Admit
from jangar.conditions import format_time
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.agentrun.plan import NEEDS_ADMISSION
from jangar.scheduler.provider_health import REASON_AUTH, REASON_CAPACITY
from tests.unit.controllers.agentrun_objects import NOW, conditions, job, run, snapshot, world
from tests.unit.scheduler.objects import provider
from tests.unit.validation.test_agentrun import kinded


def unhealthy(reason: str, until_in: float, *, generation: int = 1) -> dict[str, Any]:
    obj = provider()
    obj["metadata"]["generation"] = 1
    obj["status"] = {
        "health": {
            "state": "AuthFailed" if reason == REASON_AUTH else "CapacityExhausted",
            "reason": reason,
            "message": "run r-1 hit the usage limit",
            "until": format_time(NOW + timedelta(seconds=until_in)),
            "generation": generation,
        }
    }
    return kinded("AgentProvider", obj)


@pytest.mark.parametrize("reason", [REASON_CAPACITY, REASON_AUTH])
def test_a_run_of_an_unhealthy_provider_is_held_blocked(reason: str) -> None:
    snap = snapshot(run(), lookup=world(unhealthy(reason, 300)))
    for plan in (decide(snap), decide(snap, Admit(NOW))):
        assert plan is not NEEDS_ADMISSION and plan.status is not None
        assert plan.create is None and plan.release_admission
        assert plan.status.phase == "Pending"
        conds = conditions(plan.status.status)
        assert conds["Blocked"] == ("True", reason)
        assert conds["InvalidSpec"][0] == "False" and conds["Failed"][0] == "False"
        message = next(c["message"] for c in plan.status.status["conditions"] if c["type"] == "Blocked")
        assert message.startswith("agent provider provider-1 is unhealthy: run r-1 hit the usage limit")
        assert plan.requeue_after == 60.0


def test_the_hold_requeues_at_its_end_when_sooner() -> None:
    plan = decide(snapshot(run(), lookup=world(unhealthy(REASON_CAPACITY, 12))))
    assert plan.requeue_after == 12.0


def test_once_the_hold_is_over_the_run_starts_and_blocked_clears() -> None:
    held = run(
        "Pending", status={"conditions": [{"type": "Blocked", "status": "True", "reason": REASON_CAPACITY}]}
    )
    snap = snapshot(held, lookup=world(unhealthy(REASON_CAPACITY, -1)))
    assert decide(snap) is NEEDS_ADMISSION
    started = decide(snap, Admit(NOW))
    assert started.create is not None and started.status is not None
    assert conditions(started.status.status)["Blocked"] == ("False", "NotBlocked")


def test_a_provider_spec_change_frees_runs_before_the_provider_is_reconciled() -> None:
    snap = snapshot(run(), lookup=world(unhealthy(REASON_AUTH, 300, generation=0)))
    assert decide(snap) is NEEDS_ADMISSION


def test_a_running_run_is_not_held() -> None:
    running = run("Running", status={"jobRef": {"name": "run-1-job", "namespace": "agents"}})
    plan = decide(snapshot(running, jobs=(job(active=1),), lookup=world(unhealthy(REASON_CAPACITY, 300))))
    assert plan.status is None or plan.status.phase == "Running"
