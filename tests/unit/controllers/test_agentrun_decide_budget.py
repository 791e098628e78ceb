"""`decide` with a Budget: an exceeded, unreadable or missing Budget holds a run before admission; a run
within its Budget goes to admission and states BudgetExceeded=False; a started run is never re-checked."""

from __future__ import annotations

from typing import Any

from jangar.admission import Admit, Waiting
from jangar.api.refs import BUDGETS
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.agentrun.plan import NEEDS_ADMISSION
from jangar.controllers.agentrun.snapshot import read_snapshot
from jangar.controllers.budget_hold import BUDGET_RECHECK_SECONDS, BudgetCheck, read_budget_check
from jangar.controllers.kinds import AGENTRUNS, AGENTS, JOBS, PODS
from jangar.runtime.testing import FakeCache
from jangar.scheduler.budget import budget_verdict
from tests.unit.controllers.agentrun_objects import NOW, SETTINGS, ago, conditions, run, snapshot, tuned


def budget(used: str, limit: str = "10") -> dict[str, Any]:
    return {
        "metadata": {"name": "team", "namespace": "agents"},
        "spec": {"limits": {"cpu": limit}},
        "status": {"used": {"cpu": used}},
    }


def check(obj: dict[str, Any] | None) -> BudgetCheck:
    return BudgetCheck("team", budget_verdict(obj, "team"))


def test_an_exceeded_budget_holds_the_run_pending_with_the_budget_and_resource() -> None:
    plan = decide(snapshot(run(budgetRef={"name": "team"}), budget=check(budget("12"))))
    assert plan is not NEEDS_ADMISSION and plan.status is not None
    assert plan.status.phase == "Pending"
    conds = conditions(plan.status.status)
    assert conds["BudgetExceeded"] == ("True", "BudgetExceeded")
    assert conds["InvalidSpec"][0] == "False"
    assert conds["Blocked"][0] == "False"
    message = next(c["message"] for c in plan.status.status["conditions"] if c["type"] == "BudgetExceeded")
    assert (
        message == "budget team cpu exceeded (12/10 core-seconds); the run starts once the budget allows it"
    )
    assert plan.requeue_after == BUDGET_RECHECK_SECONDS
    assert plan.create is None and plan.release_admission


def test_a_run_held_even_when_admission_would_admit_it() -> None:
    plan = decide(snapshot(run(budgetRef={"name": "team"}), budget=check(budget("10"))), Admit(NOW))
    assert plan.create is None and plan.status is not None and plan.status.phase == "Pending"


def test_an_unreadable_budget_holds_too() -> None:
    plan = decide(snapshot(run(), budget=check(budget("0", limit="lots"))))
    assert plan.status is not None
    assert conditions(plan.status.status)["BudgetExceeded"] == ("True", "BudgetInvalid")


def test_a_missing_budget_is_a_missing_reference_held_for_the_grace_then_failed() -> None:
    plan = decide(snapshot(run(created_ago=10), budget=check(None)))
    assert plan.status is not None and plan.status.phase == "Pending"
    conds = conditions(plan.status.status)
    assert conds["InvalidSpec"] == ("True", "MissingBudget")
    assert conds["BudgetExceeded"] == ("Unknown", "BudgetNotFound")
    late = decide(snapshot(run(created_ago=400), budget=check(None)))
    assert late.status is not None and late.status.phase == "Failed"
    assert conditions(late.status.status)["Failed"] == ("True", "MissingBudget")


def test_within_budget_asks_admission_then_states_budget_exceeded_false() -> None:
    held = run(
        "Pending",
        status={"conditions": [{"type": "BudgetExceeded", "status": "True", "reason": "BudgetExceeded"}]},
    )
    snap = snapshot(held, budget=check(budget("3")))
    assert decide(snap) is NEEDS_ADMISSION
    started = decide(snap, Admit(NOW))
    assert started.create is not None and started.status is not None
    assert conditions(started.status.status)["BudgetExceeded"] == ("False", "WithinBudget")
    queued = decide(snap, Waiting("namespace", "agents", 1, 1, "full"))
    assert queued.status is not None
    assert conditions(queued.status.status)["BudgetExceeded"] == ("False", "WithinBudget")


def test_a_run_without_a_budget_has_no_budget_condition() -> None:
    plan = decide(snapshot(run()), Admit(NOW))
    assert plan.status is not None and "BudgetExceeded" not in conditions(plan.status.status)


async def test_the_snapshot_reads_the_budget_only_before_the_run_starts() -> None:
    cache = FakeCache(AGENTRUNS, AGENTS, JOBS, PODS, BUDGETS)
    cache.add(BUDGETS, budget("12"))
    cache.add(
        AGENTS,
        {"metadata": {"name": "agent-1", "namespace": "agents"}, "spec": {"budgetRef": {"name": "team"}}},
    )
    fresh = run()
    snap = await read_snapshot(cache, None, fresh, SETTINGS, NOW)
    assert snap.budget is not None and snap.budget.name == "team" and snap.budget.holds
    started = run("Running", status={"jobRef": {"name": "run-1-job"}, "startedAt": ago(5)})
    assert (await read_snapshot(cache, None, started, SETTINGS, NOW)).budget is None
    assert (await read_snapshot(cache, None, run("Succeeded"), SETTINGS, NOW)).budget is None


def test_budgets_are_not_enforced_where_they_are_not_watched() -> None:
    cache = FakeCache(AGENTRUNS, AGENTS, strict=True)
    assert read_budget_check(cache, run(budgetRef={"name": "team"})) is None
    assert read_budget_check(FakeCache(BUDGETS, AGENTS, strict=True), run()) is None  # no budget named


def test_tuned_grace_is_respected() -> None:
    plan = decide(
        snapshot(run(created_ago=10), budget=check(None), settings=tuned(reference_grace_seconds=5))
    )
    assert plan.status is not None and plan.status.phase == "Failed"
