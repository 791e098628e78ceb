"""A → B → A SubOrchestration cycles: child runs carry their ancestry; a step never creates a run of an
Orchestration already above it, and a run whose Orchestration is in its own ancestry fails at once, both
with `RecursiveSubOrchestration` (never retried)."""

from __future__ import annotations

from typing import Any

from jangar.api.contract import ANNOTATION_ORCHESTRATION_ANCESTRY
from jangar.controllers.orchestrationrun.decide import ancestry, decide
from tests.unit.controllers.orchestration_objects import cond, orchestration, orun, snap, step, steps_of


def sub(target: str, **extra: Any) -> dict[str, Any]:
    return step("sub", "SubOrchestration", orchestrationRef={"name": target}, **extra)


def with_ancestry(run: dict[str, Any], *names: str) -> dict[str, Any]:
    run["metadata"].setdefault("annotations", {})[ANNOTATION_ORCHESTRATION_ANCESTRY] = ",".join(names)
    return run


def test_a_child_run_is_annotated_with_its_ancestry_root_first() -> None:
    (create,) = decide(snap(orun(orchestration_name="a"), orchestration(sub("b"), name="a"))).create
    assert create.manifest["metadata"]["annotations"][ANNOTATION_ORCHESTRATION_ANCESTRY] == "a"
    assert ancestry(create.manifest) == ["a"]
    nested = with_ancestry(orun(orchestration_name="b"), "a")
    (grandchild,) = decide(snap(nested, orchestration(sub("c"), name="b"))).create
    assert ancestry(grandchild.manifest) == ["a", "b"]


def test_other_children_carry_no_ancestry() -> None:
    tool = step("t", "ToolRun", toolRef={"name": "echo"})
    (create,) = decide(snap(orun(), orchestration(tool))).create
    assert ANNOTATION_ORCHESTRATION_ANCESTRY not in create.manifest["metadata"]["annotations"]


def test_a_step_that_would_close_a_cycle_fails_without_a_child_and_is_not_retried() -> None:
    run = with_ancestry(orun(orchestration_name="b"), "a")
    plan = decide(snap(run, orchestration(sub("a", retries=3), name="b")))
    assert plan.create == ()
    entry = steps_of(plan)["sub"]
    assert (entry["phase"], entry["reason"]) == ("Failed", "RecursiveSubOrchestration")
    assert "a -> b -> a" in entry["message"]
    assert plan.phase == "Failed" and cond(plan, "Failed")["reason"] == "RecursiveSubOrchestration"
    assert next(e.reason for e in plan.events if e.type == "Warning") == "StepFailed"


def test_a_run_whose_orchestration_is_in_its_ancestry_fails_at_once() -> None:
    run = with_ancestry(orun(orchestration_name="a"), "a", "b")
    plan = decide(snap(run, orchestration(sub("c"), name="a")))
    assert plan.phase == "Failed" and plan.create == ()
    assert cond(plan, "Failed")["reason"] == "RecursiveSubOrchestration"
    assert cond(plan, "InvalidSpec")["status"] == "True"


def test_a_diamond_is_not_a_cycle() -> None:
    # a runs b twice in parallel steps: both children get ancestry "a"; only a repeat of an ancestor counts
    orch = orchestration(
        step("x", "SubOrchestration", orchestrationRef={"name": "b"}),
        step("y", "SubOrchestration", orchestrationRef={"name": "b"}),
        name="a",
    )
    plan = decide(snap(orun(orchestration_name="a"), orch))
    assert [ancestry(c.manifest) for c in plan.create] == [["a"], ["a"]]
    assert plan.phase == "Running"
