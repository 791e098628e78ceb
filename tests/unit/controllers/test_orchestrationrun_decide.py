"""The OrchestrationRun decision, path by path: DAG order and parallel start, children and adoption,
outputs between steps, retries and backoff, timeouts, the run's phase and conditions."""

from __future__ import annotations

import pytest

from jangar.api.contract import (
    ANNOTATION_ORCHESTRATION_ATTEMPT,
    LABEL_ORCHESTRATION_RUN,
    LABEL_ORCHESTRATION_STEP,
)
from jangar.controllers.orchestrationrun.decide import child_name, decide
from jangar.controllers.orchestrationrun.plan import ChildCancel
from jangar.scheduler.workflow import MAX_BACKOFF_SECONDS
from tests.unit.controllers.orchestration_objects import (
    NOW,
    RUN_UID,
    World,
    agent_step,
    at,
    child,
    cond,
    orchestration,
    orun,
    snap,
    step,
    steps_of,
    tool_step,
    ts,
)

# -- DAG order, parallel start ---------------------------------------------------------------------------


def test_checkpoint_then_two_independent_steps_start_in_the_same_pass() -> None:
    orch = orchestration(
        step("start", "Checkpoint"),
        agent_step("implement", "start"),
        tool_step("lint", "start"),
        step("sub", "SubOrchestration", "implement", "lint", orchestrationRef={"name": "other"}),
    )
    plan = decide(snap(orun(), orch))
    assert [(c.kind, c.name) for c in plan.create] == [
        ("AgentRun", "r1-implement-1"),
        ("ToolRun", "r1-lint-1"),
    ]
    by = steps_of(plan)
    assert by["start"]["phase"] == "Succeeded"
    assert (by["implement"]["phase"], by["lint"]["phase"]) == ("Running", "Running")
    assert by["sub"]["phase"] == "Pending" and "waiting for implement, lint" in by["sub"]["message"]
    assert plan.phase == "Running"
    assert cond(plan, "Running")["status"] == "True" and cond(plan, "InProgress")["status"] == "True"
    assert cond(plan, "Accepted")["reason"] == "Submitted"
    assert cond(plan, "Succeeded")["status"] == "Unknown"
    assert plan.status is not None and plan.status["startedAt"] == ts(0) and plan.status["runId"] == "r1"
    assert [e.reason for e in plan.events] == ["Running"]


def test_topological_order_ties_follow_the_spec_order_and_status_keeps_spec_order() -> None:
    orch = orchestration(tool_step("late", "early"), tool_step("early"), tool_step("other"))
    plan = decide(snap(orun(), orch))
    assert [c.name for c in plan.create] == ["r1-early-1", "r1-other-1"]
    assert list(steps_of(plan)) == ["late", "early", "other"]


def test_a_dependent_starts_once_its_dependency_succeeded_with_its_outputs() -> None:
    w = World(
        orchestration(
            tool_step("plan"),
            agent_step(
                "build",
                "plan",
                **{"with": {"branch": "{{steps.plan.outputs.branch}}", "repo": "{{parameters.repo}}"}},
            ),
        ),
        orun(parameters={"repo": "lab", "prompt": "hi"}),
    )
    w.step()
    w.finish("r1-plan-1", "Succeeded", {"outputs": {"branch": "feat/x"}})
    plan = w.step(at(5))
    assert steps_of(plan)["plan"]["outputs"] == {"branch": "feat/x"}
    (create,) = plan.create
    spec = create.manifest["spec"]
    assert spec["parameters"] == {"repo": "lab", "prompt": "hi", "branch": "feat/x"}
    assert spec["agentRef"] == {"name": "coder"} and spec["implementationSpecRef"] == {"name": "task"}
    assert spec["runtime"] == {"type": "job"}


def test_a_child_manifest_is_labelled_owned_and_named_per_attempt() -> None:
    plan = decide(snap(orun(), orchestration(tool_step("echo", **{"with": {"message": "hi"}}))))
    (create,) = plan.create
    meta = create.manifest["metadata"]
    assert meta["name"] == "r1-echo-1"
    assert meta["labels"][LABEL_ORCHESTRATION_RUN] == "r1"
    assert meta["labels"][LABEL_ORCHESTRATION_STEP] == "echo"
    assert meta["annotations"][ANNOTATION_ORCHESTRATION_ATTEMPT] == "1"
    (owner,) = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "orchestration.proompteng.ai/v1alpha1",
        "kind": "OrchestrationRun",
        "name": "r1",
        "uid": RUN_UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert create.manifest["spec"] == {"toolRef": {"name": "echo"}, "parameters": {"message": "hi"}}
    assert steps_of(plan)["echo"]["resourceRef"]["name"] == "r1-echo-1"


def test_child_names_are_dns_safe_and_stable_for_long_names() -> None:
    long = "x" * 80
    name = child_name(long, "Step_With Caps", 3)
    assert len(name) <= 63 and name == child_name(long, "Step_With Caps", 3)
    assert name != child_name(long, "Step_With Caps", 4)
    assert child_name("run", "Step_A", 2) == "run-step-a-2"


def test_agentrun_step_copies_runtime_memory_secrets_workload_and_inline_implementation() -> None:
    s = agent_step(
        "a",
        runtime={"type": "workflow"},
        memoryRef={"name": "mem"},
        secrets=["gh"],
        workload={"image": "img:1"},
        goal={"objective": "ship it", "tokenBudget": 100},  # issue 13 item 3
    )
    del s["implementationSpecRef"]
    s["implementation"] = {"text": "do it"}
    (create,) = decide(snap(orun(), orchestration(s))).create
    spec = create.manifest["spec"]
    assert spec["runtime"] == {"type": "workflow"}
    assert spec["implementation"] == {"text": "do it"} and "implementationSpecRef" not in spec
    assert (spec["memoryRef"], spec["secrets"], spec["workload"]) == (
        {"name": "mem"},
        ["gh"],
        {"image": "img:1"},
    )
    assert spec["goal"] == {"objective": "ship it", "tokenBudget": 100}


def test_sub_orchestration_creates_a_child_run_and_takes_its_steps_outputs() -> None:
    w = World(orchestration(step("sub", "SubOrchestration", orchestrationRef={"name": "inner"})))
    (create,) = w.step().create
    assert create.kind == "OrchestrationRun" and create.manifest["spec"]["orchestrationRef"] == {
        "name": "inner"
    }
    w.finish("r1-sub-1", "Succeeded", {"stepStatuses": [{"name": "x", "outputs": {"k": "v"}}, {"name": "y"}]})
    plan = w.step(at(3))
    assert steps_of(plan)["sub"]["outputs"] == {"x": {"k": "v"}}
    assert plan.phase == "Succeeded"


# -- the run ends ------------------------------------------------------------------------------------------


def test_all_steps_succeeded_is_succeeded_with_cleared_conditions() -> None:
    w = World(orchestration(agent_step("a")))
    w.step()
    w.finish("r1-a-1", "Succeeded", {"runner": {"outputs": {"pr": "12"}}})
    plan = w.step(at(30))
    assert plan.phase == "Succeeded"
    assert steps_of(plan)["a"]["outputs"] == {"pr": "12"}
    assert cond(plan, "Succeeded") | {"lastTransitionTime": None} == cond(plan, "Succeeded") | {
        "lastTransitionTime": None
    }
    assert cond(plan, "Succeeded")["status"] == "True" and cond(plan, "Succeeded")["reason"] == "Completed"
    for type_ in ("Running", "InProgress", "Failed", "Waiting", "Warning", "InvalidSpec", "Progressing"):
        assert cond(plan, type_)["status"] == "False", type_
    assert cond(plan, "Ready")["status"] == "True"
    assert plan.status is not None and plan.status["finishedAt"] == ts(30)
    assert plan.requeue_after is None
    assert [e.reason for e in plan.events] == ["Succeeded"]


def test_a_failed_step_without_retries_fails_the_run_with_step_failed_and_a_warning_event() -> None:
    w = World(orchestration(tool_step("t")))
    w.step()
    w.finish(
        "r1-t-1",
        "Failed",
        {"conditions": [{"type": "Failed", "status": "True", "reason": "JobFailed", "message": "exit 1"}]},
    )
    plan = w.step(at(2))
    assert plan.phase == "Failed"
    failed = cond(plan, "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "StepFailed")
    assert "step t failed" in failed["message"] and "JobFailed: exit 1" in failed["message"]
    assert steps_of(plan)["t"]["reason"] == "ToolRunFailed"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "StepFailed"), ("Warning", "StepFailed")]
    assert "step t failed" in plan.events[0].message


def test_a_failed_step_stops_the_other_running_children() -> None:
    w = World(orchestration(tool_step("a"), tool_step("b")))
    w.step()
    w.finish("r1-a-1", "Failed")
    plan = w.step(at(2))
    assert plan.phase == "Failed"
    assert plan.cancel == (ChildCancel("ToolRun", "r1-b-1"),)
    assert steps_of(plan)["b"]["phase"] == "Cancelled" and steps_of(plan)["b"]["reason"] == "RunFailed"


def test_a_finished_run_cancels_a_child_still_running_and_writes_nothing() -> None:
    s = snap(
        orun(phase="Succeeded"),
        orchestration(tool_step("a")),
        children=[child("ToolRun", "r1-a-1", "a", phase="Running")],
    )
    plan = decide(s)
    assert plan.cancel == (ChildCancel("ToolRun", "r1-a-1"),) and plan.status is None and plan.create == ()


# -- adoption ------------------------------------------------------------------------------------------


def test_a_child_that_exists_is_adopted_not_created_again() -> None:
    existing = child("ToolRun", "r1-a-1", "a", phase="Running")
    plan = decide(snap(orun(), orchestration(tool_step("a")), children=[existing]))
    assert plan.create == ()
    entry = steps_of(plan)["a"]
    assert entry["phase"] == "Running" and entry["resourceRef"]["uid"] == "uid-r1-a-1"


def test_a_later_attempt_child_is_adopted_after_a_lost_status_write() -> None:
    # The status says attempt 1 is Retrying, but attempt 2's child already exists (its status write was lost).
    steps = [
        {
            "name": "a",
            "kind": "ToolRun",
            "phase": "Retrying",
            "attempt": 1,
            "nextRetryAt": ts(-1),
            "startedAt": ts(-20),
        }
    ]
    kids = [
        child("ToolRun", "r1-a-1", "a", 1, phase="Failed"),
        child("ToolRun", "r1-a-2", "a", 2, phase="Succeeded"),
    ]
    plan = decide(
        snap(orun(phase="Running", steps=steps), orchestration(tool_step("a", retries=3)), children=kids)
    )
    assert plan.create == ()
    entry = steps_of(plan)["a"]
    assert (entry["phase"], entry["attempt"]) == ("Succeeded", 2)
    assert plan.phase == "Succeeded"


def test_a_child_not_in_the_cache_yet_is_created_again_idempotently() -> None:
    steps = [
        {
            "name": "a",
            "kind": "ToolRun",
            "phase": "Running",
            "attempt": 1,
            "startedAt": ts(-5),
            "resourceRef": {"kind": "ToolRun", "name": "r1-a-1"},
        }
    ]
    plan = decide(snap(orun(phase="Running", steps=steps), orchestration(tool_step("a"))))
    assert [c.name for c in plan.create] == ["r1-a-1"]
    assert plan.requeue_after == pytest.approx(60.0)


def test_a_child_seen_then_gone_fails_the_attempt_as_missing() -> None:
    steps = [
        {
            "name": "a",
            "kind": "AgentRun",
            "phase": "Running",
            "attempt": 1,
            "startedAt": ts(-5),
            "resourceRef": {"kind": "AgentRun", "name": "r1-a-1", "uid": "u"},
        }
    ]
    plan = decide(snap(orun(phase="Running", steps=steps), orchestration(agent_step("a"))))
    assert plan.phase == "Failed" and steps_of(plan)["a"]["reason"] == "AgentRunMissing"


def test_a_name_taken_by_another_object_waits_with_a_warning() -> None:
    import dataclasses

    s = dataclasses.replace(
        snap(orun(), orchestration(tool_step("a"))), taken=frozenset({("ToolRun", "r1-a-1")})
    )
    plan = decide(s)
    assert plan.create == ()
    assert cond(plan, "Warning")["reason"] == "ChildNameTaken"
    assert plan.requeue_after == pytest.approx(5.0)


# -- retries and backoff -------------------------------------------------------------------------------


def test_retries_back_off_exponentially_then_fail_with_retries_exhausted() -> None:
    w = World(orchestration(tool_step("flaky", retries=3, retryBackoffSeconds=30)))
    w.step()
    now = NOW
    delays = []
    for attempt in (1, 2, 3):
        w.finish(f"r1-flaky-{attempt}", "Failed")
        plan = w.step(now)
        entry = w.steps["flaky"]
        assert (entry["phase"], entry["attempt"]) == ("Retrying", attempt)
        delays.append(plan.requeue_after)
        assert entry["nextRetryAt"] == ts((now - NOW).total_seconds() + 30 * 2 ** (attempt - 1))
        # not due yet: nothing starts
        early = w.step(now + (at(1) - NOW))
        assert early.create == ()
        now = now + (at(30 * 2 ** (attempt - 1)) - NOW)
        plan = w.step(now)
        assert [c.name for c in plan.create] == [f"r1-flaky-{attempt + 1}"]
    assert delays == [30, 60, 120]
    w.finish("r1-flaky-4", "Failed")
    plan = w.step(now)
    assert plan.phase == "Failed"
    assert cond(plan, "Failed")["reason"] == "RetriesExhausted"
    entry = w.steps["flaky"]
    assert (entry["phase"], entry["reason"], entry["attempt"]) == ("Failed", "RetriesExhausted", 4)
    assert w.created == ["r1-flaky-1", "r1-flaky-2", "r1-flaky-3", "r1-flaky-4"]


def test_backoff_is_capped() -> None:
    w = World(orchestration(tool_step("f", retries=30, retryBackoffSeconds=1000)))
    w.step()
    w.finish("r1-f-1", "Failed")
    w.step()
    w.run["status"]["stepStatuses"][0]["attempt"] = 20
    w.run["status"]["stepStatuses"][0]["phase"] = "Running"
    w.run["status"]["stepStatuses"][0]["resourceRef"]["name"] = "r1-f-1"
    plan = w.step(at(1))
    assert plan.requeue_after == MAX_BACKOFF_SECONDS


def test_zero_backoff_retries_in_the_same_pass() -> None:
    w = World(orchestration(tool_step("f", retries=1)))
    w.step()
    w.finish("r1-f-1", "Failed")
    plan = w.step(at(1))
    assert [c.name for c in plan.create] == ["r1-f-2"]
    assert w.steps["f"]["attempt"] == 2 and w.steps["f"]["phase"] == "Running"


# -- timeouts ---------------------------------------------------------------------------------------------


def test_a_step_past_its_timeout_cancels_its_child_and_retries() -> None:
    w = World(orchestration(agent_step("slow", timeoutSeconds=60, retries=1, retryBackoffSeconds=10)))
    w.step()
    plan = w.step(at(30))
    assert plan.requeue_after == pytest.approx(30.0)  # woken at the deadline
    plan = w.step(at(60))
    assert plan.cancel == (ChildCancel("AgentRun", "r1-slow-1"),)
    entry = w.steps["slow"]
    assert (entry["phase"], entry["reason"]) == ("Retrying", "StepTimedOut")
    plan = w.step(at(70))
    assert [c.name for c in plan.create] == ["r1-slow-2"]
    plan = w.step(at(131))
    assert w.phase == "Failed" and w.steps["slow"]["reason"] == "RetriesExhausted"
    assert "StepTimedOut" in w.steps["slow"]["message"]
    assert ChildCancel("AgentRun", "r1-slow-2") in plan.cancel


# -- outputs and templates ---------------------------------------------------------------------------------


def test_a_missing_parameter_fails_the_step_with_missing_output_naming_it() -> None:
    plan = decide(snap(orun(), orchestration(tool_step("t", **{"with": {"x": "{{parameters.nope}}"}}))))
    assert plan.create == ()
    entry = steps_of(plan)["t"]
    assert (entry["phase"], entry["reason"]) == ("Failed", "MissingOutput")
    assert "{{parameters.nope}}" in entry["message"]
    assert plan.phase == "Failed" and cond(plan, "Failed")["reason"] == "StepFailed"


def test_a_missing_output_key_is_not_retried() -> None:
    w = World(
        orchestration(
            tool_step("a"), tool_step("b", "a", retries=3, **{"with": {"x": "{{steps.a.outputs.k}}"}})
        )
    )
    w.step()
    w.finish("r1-a-1", "Succeeded", {"outputs": {"other": "1"}})
    plan = w.step(at(1))
    assert plan.create == ()
    assert w.steps["b"]["reason"] == "MissingOutput" and w.steps["b"]["attempt"] == 1
    assert "{{steps.a.outputs.k}}" in w.steps["b"]["message"]


def test_immediate_steps_expose_their_rendered_inputs_as_outputs() -> None:
    orch = orchestration(
        step("mark", "Checkpoint", **{"with": {"repo": "{{parameters.repo}}"}}),
        step("mem", "MemoryOp", "mark", **{"with": {"r": "{{steps.mark.outputs.repo}}"}}),
    )
    plan = decide(snap(orun(parameters={"repo": "lab"}), orch))
    by = steps_of(plan)
    assert by["mark"]["outputs"] == {"repo": "lab"} and by["mem"]["outputs"] == {"r": "lab"}
    assert plan.phase == "Succeeded"


# -- the definition -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orch_steps", "reason"),
    [
        ([], "MissingSteps"),
        ([tool_step("a"), tool_step("a")], "DuplicateStep"),
        ([tool_step("a", "b"), tool_step("b", "a")], "DependencyCycle"),
        ([step("a", "Teleport")], "UnknownStepKind"),
        ([step("a", "ToolRun")], "StepMissingToolRef"),
        ([tool_step("a", **{"with": {"x": "{{steps.zz.outputs.k}}"}})], "InvalidTemplateReference"),
    ],
)
def test_an_invalid_definition_fails_the_run_with_invalid_spec(
    orch_steps: list[dict[str, object]], reason: str
) -> None:
    plan = decide(snap(orun(), orchestration(*orch_steps)))
    assert plan.phase == "Failed"
    assert cond(plan, "InvalidSpec")["status"] == "True" and cond(plan, "InvalidSpec")["reason"] == reason
    assert cond(plan, "Failed")["reason"] == reason
    assert plan.status is not None and plan.status["finishedAt"] and plan.create == ()


def test_a_missing_orchestration_holds_the_run_then_fails_it() -> None:
    plan = decide(snap(orun(created=-10), None))
    assert plan.phase == "Pending" and cond(plan, "InvalidSpec")["reason"] == "MissingOrchestration"
    assert plan.requeue_after == pytest.approx(290.0)
    plan = decide(snap(orun(created=-301), None))
    assert plan.phase == "Failed" and cond(plan, "Failed")["reason"] == "MissingOrchestration"


def test_a_run_without_an_orchestration_ref_fails() -> None:
    plan = decide(snap(orun(orchestration_name=None), None))
    assert plan.phase == "Failed" and cond(plan, "Failed")["reason"] == "MissingOrchestrationRef"


# -- cancel ---------------------------------------------------------------------------------------------


def test_cancel_cascades_to_running_children_then_ends_cancelled() -> None:
    w = World(orchestration(tool_step("a"), agent_step("b"), tool_step("c", "a")))
    w.step()
    w.run["metadata"]["annotations"] = {"agents.proompteng.ai/cancel": "true"}
    plan = w.step(at(1))
    assert set(plan.cancel) == {ChildCancel("ToolRun", "r1-a-1"), ChildCancel("AgentRun", "r1-b-1")}
    assert plan.phase == "Running" and cond(plan, "InProgress")["reason"] == "Running"
    assert w.steps["c"]["phase"] == "Cancelled"
    again = w.step(at(2))
    assert again.cancel == ()  # annotations already set: nothing patched twice
    w.finish("r1-a-1", "Cancelled")
    w.finish("r1-b-1", "Cancelled")
    plan = w.step(at(3))
    assert plan.phase == "Cancelled" and cond(plan, "Failed")["reason"] == "Cancelled"
    assert {s["phase"] for s in w.steps.values()} == {"Cancelled"}
    assert plan.status is not None and plan.status["finishedAt"] == ts(3)


def test_cancel_of_a_run_waiting_on_a_gate_ends_at_once() -> None:
    orch = orchestration(step("gate", "ApprovalGate", policyRef="gate-policy"))
    w = World(orch, policies={"gate-policy": {"spec": {}}})
    w.step()
    w.run["metadata"]["annotations"] = {"agents.proompteng.ai/cancel": "true"}
    plan = w.step(at(1))
    assert plan.phase == "Cancelled" and plan.cancel == ()


def test_an_unchanged_world_yields_the_same_status() -> None:
    w = World(orchestration(tool_step("a")))
    w.step()
    w.step(at(1))  # observes the child (its uid, its phase)
    first = w.run["status"]
    w.step(at(2))
    from jangar.controllers.status import status_changed

    assert not status_changed(first, w.run["status"])
    assert w.plans[-1].create == () and w.plans[-1].events == ()
