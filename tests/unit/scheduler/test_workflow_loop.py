"""Workflow step loops and step timeouts (0.9.29, issue 13): the pure loop rules, table-driven, and
`plan_workflow` driven pass by pass over Jobs that end as scripted."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.scheduler.context import StepRef
from jangar.scheduler.loop_condition import condition_error, evaluate_condition
from jangar.scheduler.naming import job_name
from jangar.scheduler.workflow import WorkflowPlan, plan_workflow
from jangar.scheduler.workflow_loop import (
    Control,
    LoopSpec,
    after_iteration,
    loop_spec,
    note_iteration,
    read_control,
)
from tests.unit.scheduler.objects import agent_run

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# -- the pure rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "ok"),
    [("control.more == true", True), ("iteration < maxIterations && control.n > 1", True), ("a ==", False)],
)
def test_conditions_compile_or_say_where_they_do_not(expression: str, ok: bool) -> None:
    error = condition_error(expression)
    assert (error is None) is ok
    if not ok:
        assert error is not None and "syntax error at column" in error


@pytest.mark.parametrize(
    ("expression", "control", "value", "error"),
    [
        ("control.more", {"more": True}, True, ""),
        ("control.more", {"more": False}, False, ""),
        ("control.n < maxIterations", {"n": 3}, False, ""),
        ("iteration == 2", {}, True, ""),
        ("control.more", {}, None, "no such member"),
        ("control.n + 1", {"n": 1}, None, "not a bool"),
        ("1 / control.zero == 0", {"zero": 0}, None, "divide by zero"),
    ],
)
def test_conditions_evaluate_to_a_bool_or_an_error(
    expression: str, control: dict[str, Any], value: bool | None, error: str
) -> None:
    result = evaluate_condition(expression, control, iteration=2, max_iterations=3)
    assert result.value is value
    assert error in result.error and (bool(result.error) is (value is None))


def test_loop_spec_defaults() -> None:
    assert loop_spec({"name": "s"}) is None
    spec = loop_spec({"loop": {"maxIterations": 4, "condition": {"cel": "control.more"}}})
    assert spec == LoopSpec(
        max_iterations=4,
        condition="control.more",
        control_path="/workspace/.agent/loop-control.json",
        on_missing="stop",
        on_invalid="fail",
        history_limit=20,
    )
    source = {"cel": "x", "source": {"path": "./state/loop.json"}}
    assert loop_spec({"loop": {"maxIterations": 1, "condition": source}}).control_path == (  # type: ignore[union-attr]
        "/workspace/state/loop.json"
    )
    source["source"] = {"path": "/workspace/ws/loop.json"}
    assert loop_spec({"loop": {"maxIterations": 1, "condition": source}}).control_path == (  # type: ignore[union-attr]
        "/workspace/ws/loop.json"
    )


def _terminated(message: str | None) -> list[dict[str, Any]]:
    terminated: dict[str, Any] = {"exitCode": 0, "reason": "Completed"}
    if message is not None:
        terminated["message"] = message
    return [
        {
            "metadata": {"name": "p", "creationTimestamp": "2026-01-01T12:00:00Z"},
            "status": {"containerStatuses": [{"name": "agent-runner", "state": {"terminated": terminated}}]},
        }
    ]


@pytest.mark.parametrize(
    ("message", "state", "value"),
    [
        ('{"phase": "Succeeded", "loopControl": {"more": true}}', "ok", {"more": True}),
        ('{"loopControl": {"more": false}}', "ok", {"more": False}),
        ('{"loopControl": [1]}', "invalid", None),
        ('{"loopControlError": {"reason": "missing", "message": "gone"}}', "missing", None),
        ('{"loopControlError": {"reason": "invalid", "message": "not JSON"}}', "invalid", None),
        ('{"outputs": {}}', "missing", None),
        ("log tail, not JSON", "missing", None),
        (None, "missing", None),
    ],
)
def test_control_is_read_from_the_termination_message(
    message: str | None, state: str, value: dict[str, Any] | None
) -> None:
    control = read_control(_terminated(message), "agent-runner")
    assert (control.state, control.value) == (state, value)


FIXED = LoopSpec(max_iterations=3)
COND = LoopSpec(max_iterations=3, condition="control.more")
FAIL_MISSING = LoopSpec(max_iterations=3, condition="control.more", on_missing="fail")
STOP_INVALID = LoopSpec(max_iterations=3, condition="control.more", on_invalid="stop")
MORE, DONE = Control("ok", {"more": True}), Control("ok", {"more": False})
MISSING, INVALID = Control("missing", detail="no file"), Control("invalid", detail="bad")


@pytest.mark.parametrize(
    ("loop", "iteration", "control", "action", "stop_reason", "reason"),
    [
        (FIXED, 1, MISSING, "next", "", ""),  # a fixed loop ignores control data
        (FIXED, 3, MISSING, "stop", "MaxIterationsReached", ""),
        (COND, 1, MORE, "next", "", ""),
        (COND, 1, DONE, "stop", "ConditionFalse", ""),
        (COND, 3, MORE, "stop", "MaxIterationsReached", ""),
        (COND, 1, MISSING, "stop", "ControlMissing", ""),
        (FAIL_MISSING, 1, MISSING, "fail", "ControlMissing", "WorkflowLoopControlMissing"),
        (COND, 2, INVALID, "fail", "ControlInvalid", "WorkflowLoopControlInvalid"),
        (STOP_INVALID, 2, INVALID, "stop", "ControlInvalid", ""),
        (COND, 1, Control("ok", {"other": 1}), "fail", "ControlInvalid", "WorkflowLoopControlInvalid"),
        (STOP_INVALID, 1, Control("ok", {"more": "yes"}), "stop", "ControlInvalid", ""),
    ],
)
def test_after_iteration(
    loop: LoopSpec, iteration: int, control: Control, action: str, stop_reason: str, reason: str
) -> None:
    verdict = after_iteration(loop, iteration, control)
    assert (verdict.action, verdict.stop_reason, verdict.reason) == (action, stop_reason, reason)


def test_history_is_capped_and_pruned_iterations_counted() -> None:
    loop = LoopSpec(max_iterations=10, history_limit=2)
    entry: dict[str, Any] = {}
    for k in (1, 2, 3, 4):
        note_iteration(entry, loop, k, {"phase": "Running"})
        note_iteration(entry, loop, k, {"phase": "Succeeded"})
    state = entry["loop"]
    assert [i["index"] for i in state["iterations"]] == [3, 4]
    assert (state["iteration"], state["pruned"], state["retained"]) == (4, 2, 2)
    assert all(i["phase"] == "Succeeded" for i in state["iterations"])


def test_iteration_jobs_have_their_own_deterministic_names() -> None:
    assert job_name("r", StepRef("s", 2, 1).key) == "r-step-2-attempt-1"
    assert job_name("r", StepRef("s", 2, 3, iteration=4).key) == "r-step-2-iter-4-attempt-3"


# -- plan_workflow, pass by pass --------------------------------------------------------------------


def _run(*steps: dict[str, Any]) -> dict[str, Any]:
    return agent_run(runtime="workflow", workflow={"steps": list(steps)})


def _job(
    *, ok: bool = True, reason: str = "BackoffLimitExceeded", deadline: int | None = None
) -> dict[str, Any]:
    condition = {"type": "Complete" if ok else "Failed", "status": "True"}
    if not ok:
        condition["reason"] = reason
    job: dict[str, Any] = {
        "metadata": {"uid": "u"},
        "status": {"succeeded" if ok else "failed": 1, "conditions": [condition]},
    }
    if deadline is not None:
        job["spec"] = {"activeDeadlineSeconds": deadline}
    return job


Script = Callable[[str, int], tuple[dict[str, Any], str | None]]
"""(job name, how many Jobs ran before) → (the Job as it ends, the agent's termination message)."""


def _drive(run: dict[str, Any], script: Script, passes: int = 40) -> tuple[WorkflowPlan, list[str]]:
    """Run `plan_workflow` pass after pass: each submitted Job ends as `script` says at the next pass."""
    jobs: dict[str, dict[str, Any]] = {}
    pods: dict[str, list[dict[str, Any]]] = {}
    created: list[str] = []
    now = T0
    for _ in range(passes):
        plan = plan_workflow(run, jobs, now=now, pods=pods)
        run["status"] = {"workflow": {"steps": plan.steps}}
        if plan.phase != "Running":
            return plan, created
        if plan.submit is not None:
            entry = next(s for s in plan.steps if s["name"] == plan.submit.name)
            name = entry["jobRef"]["name"]
            assert name == job_name("run-1", plan.submit.key)
            job, message = script(name, len(created))
            created.append(name)
            jobs[name], pods[name] = job, _terminated(message)
        now += timedelta(minutes=1)
    raise AssertionError("the workflow did not finish")


def _control(*values: dict[str, Any] | None) -> Script:
    def script(_name: str, n: int) -> tuple[dict[str, Any], str | None]:
        value = values[n] if n < len(values) else None
        return _job(), None if value is None else json.dumps({"loopControl": value})

    return script


def _step(name: str, loop: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, **({"loop": loop} if loop else {}), **extra}


def test_a_fixed_loop_runs_its_count_then_the_next_step() -> None:
    plan, created = _drive(_run(_step("work", {"maxIterations": 3}), _step("after")), _control())
    assert (plan.phase, plan.reason) == ("Succeeded", "Completed")
    assert created == [
        "run-1-step-1-iter-1-attempt-1",
        "run-1-step-1-iter-2-attempt-1",
        "run-1-step-1-iter-3-attempt-1",
        "run-1-step-2-attempt-1",
    ]
    work = plan.steps[0]
    assert work["phase"] == "Succeeded"
    loop = work["loop"]
    assert (loop["iteration"], loop["stopReason"], loop["pruned"], loop["retained"]) == (
        3,
        "MaxIterationsReached",
        0,
        3,
    )
    assert [(i["index"], i["phase"], i["jobRef"]["name"]) for i in loop["iterations"]] == [
        (k, "Succeeded", f"run-1-step-1-iter-{k}-attempt-1") for k in (1, 2, 3)
    ]
    assert all(i["startedAt"] and i["finishedAt"] for i in loop["iterations"])
    assert "loop" not in plan.steps[1]


def test_a_conditional_loop_stops_when_the_condition_turns_false() -> None:
    step = _step("work", {"maxIterations": 10, "condition": {"cel": "control.more"}})
    plan, created = _drive(_run(step), _control({"more": True}, {"more": True}, {"more": False}))
    assert plan.phase == "Succeeded" and len(created) == 3
    loop = plan.steps[0]["loop"]
    assert (loop["iteration"], loop["stopReason"]) == (3, "ConditionFalse")


def test_a_loop_that_ends_says_so_in_an_event() -> None:
    run = _run(_step("work", {"maxIterations": 2, "condition": {"cel": "control.more"}}))
    first = plan_workflow(run, {}, now=T0)
    run["status"] = {"workflow": {"steps": first.steps}}
    name = first.steps[0]["jobRef"]["name"]
    stop = json.dumps({"loopControl": {"more": False}})
    ended = plan_workflow(run, {name: _job()}, now=T0 + timedelta(minutes=1), pods={name: _terminated(stop)})
    assert ended.phase == "Succeeded"
    assert ended.events == [
        (
            "Normal",
            "WorkflowLoopStopped",
            "step work loop stopped after iteration 1 (ConditionFalse): loop condition false after iteration 1",
        )
    ]
    bad = json.dumps({"loopControl": 7})
    failed = plan_workflow(run, {name: _job()}, now=T0 + timedelta(minutes=1), pods={name: _terminated(bad)})
    assert [(t, r) for t, r, _ in failed.events] == [("Warning", "WorkflowLoopControlInvalid")]


def test_a_conditional_loop_is_bounded_by_max_iterations() -> None:
    step = _step("work", {"maxIterations": 2, "condition": {"cel": "control.more"}})
    plan, created = _drive(_run(step), _control({"more": True}, {"more": True}, {"more": True}))
    assert plan.phase == "Succeeded" and len(created) == 2
    assert plan.steps[0]["loop"]["stopReason"] == "MaxIterationsReached"


@pytest.mark.parametrize(
    ("policy", "values", "phase", "reason", "stop_reason"),
    [
        ({}, [None], "Succeeded", "Completed", "ControlMissing"),
        ({"onMissingControl": "fail"}, [None], "Failed", "WorkflowLoopControlMissing", "ControlMissing"),
        ({}, [{"more": 1}], "Failed", "WorkflowLoopControlInvalid", "ControlInvalid"),
        ({"onInvalidControl": "stop"}, [{"more": 1}], "Succeeded", "Completed", "ControlInvalid"),
    ],
)
def test_missing_or_invalid_control_stops_or_fails_per_policy(
    policy: dict[str, Any], values: list[Any], phase: str, reason: str, stop_reason: str
) -> None:
    step = _step("work", {"maxIterations": 5, "condition": {"cel": "control.more"}, **policy})
    plan, created = _drive(_run(step, _step("after")), _control(*values))
    assert (plan.phase, plan.reason) == (phase, reason)
    assert plan.steps[0]["loop"]["stopReason"] == stop_reason
    assert len(created) == (2 if phase == "Succeeded" else 1)  # a stop goes on with the next step
    if phase == "Failed":
        assert plan.steps[0]["phase"] == "Failed" and plan.steps[0]["reason"] == reason


def test_the_history_limit_prunes_old_iterations() -> None:
    plan, created = _drive(_run(_step("work", {"maxIterations": 5, "historyLimit": 2})), _control())
    loop = plan.steps[0]["loop"]
    assert len(created) == 5
    assert [i["index"] for i in loop["iterations"]] == [4, 5]
    assert (loop["pruned"], loop["retained"]) == (3, 2)


def test_a_failed_iteration_is_retried_as_its_own_attempt() -> None:
    def script(name: str, n: int) -> tuple[dict[str, Any], str | None]:
        return _job(ok=name != "run-1-step-1-iter-2-attempt-1"), None

    plan, created = _drive(_run(_step("work", {"maxIterations": 2}, retries=1)), script)
    assert plan.phase == "Succeeded"
    assert created == [
        "run-1-step-1-iter-1-attempt-1",
        "run-1-step-1-iter-2-attempt-1",
        "run-1-step-1-iter-2-attempt-2",
    ]
    second = plan.steps[0]["loop"]["iterations"][1]
    assert (second["index"], second["phase"], second["attempt"]) == (2, "Succeeded", 2)


def test_an_iteration_that_fails_for_good_fails_the_step_with_iteration_failed() -> None:
    def script(name: str, n: int) -> tuple[dict[str, Any], str | None]:
        return _job(ok=n == 0), None

    plan, created = _drive(_run(_step("work", {"maxIterations": 3})), script)
    assert (plan.phase, plan.reason) == ("Failed", "WorkflowStepFailed")
    assert len(created) == 2  # the third iteration never starts
    loop = plan.steps[0]["loop"]
    assert loop["stopReason"] == "IterationFailed"
    assert [i["phase"] for i in loop["iterations"]] == ["Succeeded", "Failed"]


def test_a_timed_out_attempt_is_retried_with_backoff_then_fails_the_run_as_timed_out() -> None:
    step = _step("work", retries=1, retryBackoffSeconds=30, timeoutSeconds=5)
    run = _run(step)
    first = plan_workflow(run, {}, now=T0)
    run["status"] = {"workflow": {"steps": first.steps}}
    late = _job(ok=False, reason="DeadlineExceeded", deadline=5)
    retrying = plan_workflow(run, {"run-1-step-1-attempt-1": late}, now=T0 + timedelta(seconds=10))
    entry = retrying.steps[0]
    assert (retrying.phase, entry["phase"], entry["reason"]) == (
        "Running",
        "Retrying",
        "WorkflowStepTimedOut",
    )
    assert entry["message"] == "attempt 1 ran longer than timeoutSeconds=5"
    assert retrying.requeue_after == 30 and retrying.submit is None
    assert retrying.events == [
        ("Warning", "WorkflowStepTimedOut", "step work: attempt 1 ran longer than timeoutSeconds=5; retrying")
    ]
    run["status"] = {"workflow": {"steps": retrying.steps}}
    again = plan_workflow(run, {}, now=T0 + timedelta(seconds=41))
    assert again.submit is not None and again.submit.attempt == 2
    run["status"] = {"workflow": {"steps": again.steps}}
    jobs = {"run-1-step-1-attempt-1": late, "run-1-step-1-attempt-2": late}
    failed = plan_workflow(run, jobs, now=T0 + timedelta(seconds=60))
    assert (failed.phase, failed.reason) == ("Failed", "WorkflowStepTimedOut")
    assert [e[2].endswith("no attempt left") for e in failed.events] == [True]
    assert failed.steps[0]["reason"] == "WorkflowStepTimedOut"
    # a later pass over the failed step keeps the reason
    run["status"] = {"workflow": {"steps": failed.steps}}
    assert plan_workflow(run, jobs, now=T0 + timedelta(seconds=70)).reason == "WorkflowStepTimedOut"


def test_a_loop_iteration_in_flight_is_adopted_not_resubmitted() -> None:
    run = _run(_step("work", {"maxIterations": 2}))
    first = plan_workflow(run, {}, now=T0)
    run["status"] = {"workflow": {"steps": first.steps}}
    jobs = {
        "run-1-step-1-iter-1-attempt-1": {"metadata": {"uid": "u"}, "status": {"active": 1, "startTime": "x"}}
    }
    again = plan_workflow(run, jobs, now=T0 + timedelta(seconds=5))
    assert again.submit is None and again.phase == "Running"
    assert again.steps[0]["loop"]["iterations"][0]["phase"] == "Running"


def test_an_iteration_whose_job_vanished_is_recorded_on_the_iteration() -> None:
    """A looping step's Job deleted under it: the iteration's history says so (Retrying, then Failed with
    stopReason IterationFailed), as for an attempt that failed, instead of staying Running for ever."""
    run = _run(_step("work", {"maxIterations": 3}, retries=1))
    first = plan_workflow(run, {}, now=T0)
    run["status"] = {"workflow": {"steps": first.steps}}
    job = {"metadata": {"uid": "u"}, "status": {"active": 1, "startTime": "x"}}
    seen = plan_workflow(run, {"run-1-step-1-iter-1-attempt-1": job}, now=T0 + timedelta(seconds=5))
    run["status"] = {"workflow": {"steps": seen.steps}}
    lost = plan_workflow(run, {}, now=T0 + timedelta(seconds=10))
    assert lost.warnings[0][0] == "WorkflowJobMissing"
    iteration = lost.steps[0]["loop"]["iterations"][0]
    assert (iteration["phase"], iteration["reason"]) == ("Retrying", "WorkflowJobMissing")
    run["status"] = {"workflow": {"steps": lost.steps}}
    retry = plan_workflow(run, {}, now=T0 + timedelta(minutes=5))
    assert retry.submit is not None and retry.submit.key == (1, 2, 1)
    run["status"] = {"workflow": {"steps": retry.steps}}
    seen = plan_workflow(run, {"run-1-step-1-iter-1-attempt-2": job}, now=T0 + timedelta(minutes=6))
    run["status"] = {"workflow": {"steps": seen.steps}}
    failed = plan_workflow(run, {}, now=T0 + timedelta(minutes=7))
    assert (failed.phase, failed.reason) == ("Failed", "WorkflowJobMissing")
    loop = failed.steps[0]["loop"]
    assert loop["stopReason"] == "IterationFailed"
    assert (loop["iterations"][0]["phase"], loop["iterations"][0]["attempt"]) == ("Failed", 2)


# -- the cost bound of a condition (cel-python has no cost limit and runs on the controller's loop) --------


@pytest.mark.parametrize(
    "expression",
    [
        "control.items.map(x, x.map(y, y + 1)).size() > 0",
        "control.a.exists(x, control.b.all(y, y == x))",
        "control.a.filter(x, x.map(y, y).size() > 0).size() == 0",
    ],
)
def test_nested_comprehensions_are_refused_at_admission(expression: str) -> None:
    error = condition_error(expression)
    assert error is not None and "nest 2 deep" in error


@pytest.mark.parametrize(
    "expression",
    [
        "control.items.all(x, x > 0) && control.more.exists(y, y == 1)",
        "control.items.map(x, x * 2).size() < 5",
        "control.continue == true",
    ],
)
def test_single_level_comprehensions_are_allowed(expression: str) -> None:
    assert condition_error(expression) is None


def test_an_overlong_condition_is_refused_with_the_limit() -> None:
    error = condition_error("control.x == " + "1 + " * 300 + "1")
    assert error is not None and "at most 1024" in error
