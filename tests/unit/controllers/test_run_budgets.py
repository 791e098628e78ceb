"""Budgets for ToolRuns and OrchestrationRuns: the holds (decision tables of both decides), the Budget each
counts against, children carrying the run's Budget, ToolRun usage in the Budget, and the wake-up mappers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from jangar.api.refs import BUDGETS, ORCHESTRATIONRUNS, ORCHESTRATIONS, TOOLRUNS, TOOLS
from jangar.conditions import format_time
from jangar.controllers import orchestration_indexes as oix
from jangar.controllers.budget import BudgetReconciler
from jangar.controllers.budget_hold import BUDGET_RECHECK_SECONDS, BudgetCheck, install_budget_indexes
from jangar.controllers.kinds import AGENTRUNS, AGENTS, JOBS, PODS
from jangar.controllers.orchestrationrun.decide import decide as decide_orun
from jangar.controllers.orchestrationrun.snapshot import read_snapshot as read_orun
from jangar.controllers.run_budgets import (
    counted_toolruns,
    install_run_budget_indexes,
    orchestrationrun_budget,
    orchestrationruns_for_budget,
    policy_budget,
    toolruns_for_budget,
)
from jangar.controllers.toolrun.decide import decide as decide_toolrun
from jangar.controllers.toolrun.snapshot import read_snapshot as read_toolrun
from jangar.runtime import Client, Request
from jangar.runtime.testing import FakeCache, FakeEventRecorder
from jangar.scheduler.budget import budget_verdict
from jangar.settings import ControllerTuning
from tests.unit.controllers import orchestration_objects as oo
from tests.unit.controllers import test_toolrun_decide as tt


def budget(used: str | None, limit: str = "10", ns: str = "ns", name: str = "team") -> dict[str, Any] | None:
    if used is None:
        return None
    return {
        "metadata": {"name": name, "namespace": ns, "generation": 1, "resourceVersion": "1"},
        "spec": {"limits": {"cpu": limit}},
        "status": {"used": {"cpu": used}},
    }


def check(used: str | None, limit: str = "10") -> BudgetCheck:
    return BudgetCheck("team", budget_verdict(budget(used, limit), "team"))


def conds(status: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    assert status is not None
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


# -- ToolRun ------------------------------------------------------------------------------------------------

# (budget used, limit, run created s ago) -> (phase, BudgetExceeded, InvalidSpec reason, Job created, requeue)
TOOLRUN_TABLE = [
    ("exceeded", "12", "10", 10, ("Pending", ("True", "BudgetExceeded"), "Valid", False, 60.0)),
    ("reached", "10", "10", 10, ("Pending", ("True", "BudgetExceeded"), "Valid", False, 60.0)),
    ("unreadable", "0", "lots", 10, ("Pending", ("True", "BudgetInvalid"), "Valid", False, 60.0)),
    ("within", "3", "10", 10, ("Running", ("False", "WithinBudget"), "Valid", True, None)),
    ("missing", None, "10", 10, ("Pending", ("Unknown", "BudgetNotFound"), "MissingBudget", False, None)),
    (
        "missing-late",
        None,
        "10",
        10_000,
        ("Failed", ("Unknown", "BudgetNotFound"), "MissingBudget", False, None),
    ),
]


@pytest.mark.parametrize(("case", "used", "limit", "created", "want"), TOOLRUN_TABLE, ids=str)
def test_toolrun_budget_decision_table(
    case: str, used: str | None, limit: str, created: float, want: tuple[Any, ...]
) -> None:
    snap = tt.snapshot(tt.toolrun(created_ago=created, budgetRef={"name": "team"}))
    snap = snap.__class__(**{**snap.__dict__, "budget": check(used, limit)})
    plan = decide_toolrun(snap)
    phase, budget_cond, invalid_reason, created_job, requeue = want
    assert plan.status is not None and plan.status["phase"] == phase
    c = conds(plan.status)
    assert c["BudgetExceeded"] == budget_cond
    assert c["InvalidSpec"][1] == invalid_reason
    assert (plan.create is not None) == created_job
    if requeue is not None:
        assert plan.requeue_after == requeue
    if phase == "Pending" and case.startswith("missing"):
        assert plan.requeue_after is not None and plan.requeue_after > 0


def test_a_held_toolrun_message_names_the_budget_and_resource() -> None:
    snap = tt.snapshot(tt.toolrun(budgetRef={"name": "team"}))
    plan = decide_toolrun(snap.__class__(**{**snap.__dict__, "budget": check("12")}))
    assert plan.status is not None
    message = next(c["message"] for c in plan.status["conditions"] if c["type"] == "BudgetExceeded")
    assert message.startswith("budget team cpu exceeded (12/10 core-seconds)")
    assert plan.event is None and not plan.delete_jobs


def _toolrun_cache(*budgets: dict[str, Any]) -> FakeCache:
    c = FakeCache(TOOLRUNS, TOOLS, JOBS, PODS, BUDGETS, ORCHESTRATIONRUNS, ORCHESTRATIONS)
    install_run_budget_indexes(cast(Any, c))
    oix.install_orchestration_indexes(cast(Any, c))
    c.add(TOOLS, tt.tool())
    for b in budgets:
        c.add(BUDGETS, b)
    return c


def test_the_toolrun_snapshot_reads_the_budget_only_before_its_job() -> None:
    c = _toolrun_cache(cast(dict[str, Any], budget("12")))
    fresh = tt.toolrun(budgetRef={"name": "team"})
    snap = read_toolrun(c, fresh, tt.SETTINGS, tt.NOW)
    assert snap.budget is not None and snap.budget.holds
    started = tt.running() | {"spec": fresh["spec"]}
    assert read_toolrun(c, started, tt.SETTINGS, tt.NOW).budget is None  # never stopped once started
    assert read_toolrun(c, tt.toolrun(), tt.SETTINGS, tt.NOW).budget is None  # no budgetRef


def test_a_budget_change_wakes_only_unsubmitted_toolruns_naming_it() -> None:
    c = _toolrun_cache()

    def tr(name: str, budget_name: str | None, status: dict[str, Any] | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"toolRef": {"name": "echo"}}
        if budget_name:
            spec["budgetRef"] = {"name": budget_name}
        return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec, "status": status or {}}

    c.add(
        TOOLRUNS,
        tr("held", "team", {"phase": "Pending"}),
        tr("new", "team"),
        tr("started", "team", {"phase": "Running", "jobRef": {"name": "started-job"}}),
        tr("done", "team", {"phase": "Succeeded"}),
        tr("other", "private"),
        tr("none", None),
    )
    team = cast(dict[str, Any], budget("1"))
    assert toolruns_for_budget(c)(team) == [Request("ns", "held"), Request("ns", "new")]
    counted = counted_toolruns(c, "ns", "team")
    assert [r["metadata"]["name"] for r in counted] == ["done", "held", "new", "started"]
    assert {r["kind"] for r in counted} == {"ToolRun"}


class _StatusClient:
    def __init__(self) -> None:
        self.writes: list[dict[str, Any]] = []

    async def update_status(self, ref: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(body)
        return body


async def test_a_finished_toolruns_pod_counts_against_its_budget_and_enters_the_ledger() -> None:
    c = FakeCache(BUDGETS, AGENTRUNS, AGENTS, TOOLRUNS, JOBS, PODS, ORCHESTRATIONRUNS, ORCHESTRATIONS)
    install_run_budget_indexes(cast(Any, c))
    install_budget_indexes(cast(Any, c))
    start, end = tt.NOW - timedelta(seconds=100), tt.NOW - timedelta(seconds=40)
    fmt = format_time
    c.add(
        TOOLRUNS,
        {
            "metadata": {"name": "lint", "namespace": "ns", "uid": "uid-lint"},
            "spec": {"toolRef": {"name": "echo"}, "budgetRef": {"name": "team"}},
            "status": {"phase": "Succeeded", "startedAt": fmt(start), "finishedAt": fmt(end)},
        },
    )
    owner = {"kind": "ToolRun", "name": "lint", "uid": "uid-lint", "controller": True}
    res = {"requests": {"cpu": "2"}}
    c.add(JOBS, {"metadata": {"name": "lint-job", "namespace": "ns", "ownerReferences": [owner]}, "spec": {}})
    c.add(
        PODS,
        {
            "metadata": {"name": "lint-job-x", "namespace": "ns", "labels": {"job-name": "lint-job"}},
            "spec": {"containers": [{"name": "tool-runner", "resources": res}]},
            "status": {
                "phase": "Succeeded",
                "startTime": fmt(start),
                "containerStatuses": [
                    {
                        "name": "tool-runner",
                        "state": {"terminated": {"startedAt": fmt(start), "finishedAt": fmt(end)}},
                    }
                ],
            },
        },
    )
    c.add(BUDGETS, cast(dict[str, Any], budget("0", limit="100")))
    client = _StatusClient()
    rec = BudgetReconciler(cast(Client, client), c, FakeEventRecorder(), lambda: tt.NOW)
    await rec.reconcile(Request("ns", "team"))
    status = client.writes[-1]["status"]
    assert status["used"]["cpu"] == "120"  # 2 cores x 60 s
    assert status["phase"] == "Exceeded"
    assert [(e["kind"], e["name"]) for e in status["runs"]] == [("ToolRun", "lint")]


# -- OrchestrationRun ---------------------------------------------------------------------------------------


def _orun_snap(run: dict[str, Any], orch: dict[str, Any], budget_check: BudgetCheck | None) -> Any:
    snap = oo.snap(run, orch)
    name = orchestrationrun_budget(run, orch)
    return snap.__class__(**{**snap.__dict__, "budget": budget_check, "budget_name": name})


def _orch_with_policy(budget_ref: Any = None) -> dict[str, Any]:
    orch = oo.orchestration(
        oo.agent_step("a"),
        oo.tool_step("t"),
        oo.step("sub", "SubOrchestration", orchestrationRef={"name": "inner"}),
    )
    if budget_ref is not None:
        orch["spec"]["policies"] = {"budgetRef": budget_ref}
    return orch


@pytest.mark.parametrize("ref", [{"name": "team"}, "team"])
def test_the_orchestrations_policy_budget_is_the_runs_unless_the_run_names_one(ref: Any) -> None:
    orch = _orch_with_policy(ref)
    assert policy_budget(orch) == "team"
    assert orchestrationrun_budget(oo.orun(), orch) == "team"
    own = oo.orun()
    own["spec"]["budgetRef"] = {"name": "mine"}
    assert orchestrationrun_budget(own, orch) == "mine"
    assert orchestrationrun_budget(oo.orun(), _orch_with_policy()) is None


# (used, limit, created) -> (phase, BudgetExceeded status, children, reason)
ORUN_TABLE = [
    ("exceeded", "12", "10", -10, ("Pending", "True", 0, "BudgetExceeded")),
    ("unreadable", "0", "lots", -10, ("Pending", "True", 0, "BudgetInvalid")),
    ("within", "3", "10", -10, ("Running", "False", 3, "Running")),
    ("missing", None, "10", -10, ("Pending", "Unknown", 0, "MissingBudget")),
    ("missing-late", None, "10", -10_000, ("Failed", "Unknown", 0, "MissingBudget")),
]


@pytest.mark.parametrize(("case", "used", "limit", "created", "want"), ORUN_TABLE, ids=str)
def test_orchestrationrun_budget_decision_table(
    case: str, used: str | None, limit: str, created: float, want: tuple[Any, ...]
) -> None:
    run = oo.orun(created=created)
    plan = decide_orun(_orun_snap(run, _orch_with_policy({"name": "team"}), check(used, limit)))
    phase, exceeded, children, reason = want
    assert plan.phase == phase and len(plan.create) == children
    c = conds(plan.status)
    assert c["BudgetExceeded"][0] == exceeded
    assert c["Succeeded"][1] == reason or c["Accepted"][1] == reason or c["Failed"][1] == reason
    if phase == "Pending":
        assert plan.requeue_after is not None and plan.requeue_after > 0
        assert c["Accepted"][0] == "False"
    if case == "exceeded":
        assert plan.requeue_after == BUDGET_RECHECK_SECONDS
        assert c["InvalidSpec"][0] == "False"
    if case.startswith("missing"):
        assert c["InvalidSpec"] == ("True", "MissingBudget")


def test_every_child_carries_the_runs_budget() -> None:
    plan = decide_orun(_orun_snap(oo.orun(), _orch_with_policy({"name": "team"}), check("1")))
    assert {c.kind: c.manifest["spec"].get("budgetRef") for c in plan.create} == {
        "AgentRun": {"name": "team"},
        "ToolRun": {"name": "team"},
        "OrchestrationRun": {"name": "team"},
    }
    # without a Budget, no budgetRef at all; a Budget not enforced here (no check) is still passed on
    plain = decide_orun(_orun_snap(oo.orun(), _orch_with_policy(), None))
    assert all("budgetRef" not in c.manifest["spec"] for c in plain.create)
    passed = decide_orun(_orun_snap(oo.orun(), _orch_with_policy("team"), None))
    assert all(c.manifest["spec"]["budgetRef"] == {"name": "team"} for c in passed.create)


def test_a_held_run_can_be_cancelled() -> None:
    plan = decide_orun(_orun_snap(oo.orun(cancel=True), _orch_with_policy("team"), check("12")))
    assert plan.phase == "Cancelled" and not plan.create


def test_the_orchestrationrun_snapshot_reads_the_budget_only_before_the_run_starts() -> None:
    c = _toolrun_cache(cast(dict[str, Any], budget("12")))
    orch = _orch_with_policy("team")
    c.add(ORCHESTRATIONS, orch)
    fresh = oo.orun()
    snap = read_orun(c, fresh, oo.NOW, ControllerTuning())
    assert snap.budget_name == "team" and snap.budget is not None and snap.budget.holds
    started = oo.orun(phase="Running", status={"startedAt": oo.ts(-5)})
    later = read_orun(c, started, oo.NOW, ControllerTuning())
    assert later.budget is None and later.budget_name == "team"  # a started run is never held again


def test_a_budget_change_wakes_the_runs_not_started_directly_or_through_their_orchestration() -> None:
    c = _toolrun_cache()
    c.add(ORCHESTRATIONS, _orch_with_policy("team"), oo.orchestration(oo.tool_step("x"), name="plain"))

    def run(name: str, orch: str, own: str | None = None, **status: Any) -> dict[str, Any]:
        r = oo.orun(name=name, orchestration_name=orch, status=status or None)
        if own:
            r["spec"]["budgetRef"] = {"name": own}
        return r

    c.add(
        ORCHESTRATIONRUNS,
        run("via-policy", "flow"),
        run("own", "plain", "team"),
        run("own-other", "flow", "private"),  # its own Budget wins over the policy's
        run("started", "flow", phase="Running", startedAt=oo.ts(-5)),
        run("unrelated", "plain"),
    )
    assert orchestrationruns_for_budget(c)(cast(dict[str, Any], budget("1"))) == [
        Request("ns", "own"),
        Request("ns", "via-policy"),
    ]


def test_a_tools_resources_are_its_containers_what_a_budget_counts() -> None:
    from jangar.scheduler.toolrun_job import build_toolrun_job

    res = {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    build = build_toolrun_job(tt.toolrun(), tt.tool(resources=res), tt.SETTINGS)
    assert build.plan is not None
    (container,) = build.plan.job["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == res
    plain = build_toolrun_job(tt.toolrun(), tt.tool(), tt.SETTINGS)
    assert (
        plain.plan is not None
        and "resources" not in plain.plan.job["spec"]["template"]["spec"]["containers"][0]
    )
