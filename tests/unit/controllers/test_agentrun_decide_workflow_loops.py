"""`decide` for looping workflow steps: the feature flag and a bad CEL condition fail the run before it
starts, and a looping step's iteration Job carries its iteration (name, env, template context)."""

from __future__ import annotations

import dataclasses
import json

from jangar.admission import Admit
from jangar.controllers.agentrun.decide import decide
from jangar.settings import WorkflowLoopSettings
from tests.unit.controllers.agentrun_objects import NOW, SETTINGS, conditions, snapshot, workflow_run

LOOPS_ON = dataclasses.replace(SETTINGS, workflow_loops=WorkflowLoopSettings(enabled=True))
CONDITIONAL = {
    "maxIterations": 3,
    "condition": {"cel": "control.more", "source": {"path": "/workspace/ws/loop.json"}},
}


def test_a_loop_while_loops_are_disabled_fails_the_run_with_workflow_loops_disabled() -> None:
    plan = decide(snapshot(workflow_run(steps=[{"name": "plan", "loop": {"maxIterations": 2}}])), Admit(NOW))
    assert plan.status is not None and plan.status.phase == "Failed" and plan.create is None
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "WorkflowLoopsDisabled")
    (invalid,) = [c for c in plan.status.status["conditions"] if c["type"] == "InvalidSpec"]
    assert "JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED" in invalid["message"]


def test_a_condition_that_does_not_compile_fails_the_run_with_invalid_loop_condition() -> None:
    loop = {"maxIterations": 2, "condition": {"cel": "control.more &&"}}
    plan = decide(
        snapshot(workflow_run(steps=[{"name": "plan", "loop": loop}]), settings=LOOPS_ON), Admit(NOW)
    )
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["InvalidSpec"][:2] == ("True", "InvalidLoopCondition")


def test_the_first_iteration_job_is_named_and_told_where_its_control_file_is() -> None:
    obj = workflow_run(steps=[{"name": "plan", "loop": CONDITIONAL}, {"name": "build"}])
    plan = decide(snapshot(obj, settings=LOOPS_ON), Admit(NOW))
    assert plan.create is not None and plan.create.job_name == "run-1-step-1-iter-1-attempt-1"
    (container,) = plan.create.job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AGENT_LOOP_CONTROL_PATH"] == "/workspace/ws/loop.json"
    run_json = json.loads(plan.create.configmaps[0]["data"]["run.json"])
    assert run_json["step"] == {"name": "plan", "index": 1, "attempt": 1, "iteration": 1}
    assert plan.status is not None
    (first, _) = plan.status.status["workflow"]["steps"]
    assert first["loop"]["iteration"] == 1 and first["loop"]["iterations"][0]["phase"] == "Running"
    assert "step plan iteration 1 attempt 1 started" in plan.status.details.message


def test_a_step_without_a_loop_gets_no_control_path() -> None:
    plan = decide(snapshot(workflow_run(), settings=LOOPS_ON), Admit(NOW))
    assert plan.create is not None
    (container,) = plan.create.job["spec"]["template"]["spec"]["containers"]
    assert "AGENT_LOOP_CONTROL_PATH" not in {e["name"] for e in container["env"]}
