"""Admission checks of workflow step loops: disabled, bad CEL, bad bounds or policies, state volumes."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.settings import Settings
from jangar.validation import resolve_run, summarize, validate_agent_run
from tests.unit.scheduler.objects import agent_run
from tests.unit.validation.test_agentrun import IMAGE, world

ON = {"JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED": "true"}


def _problems(loop: Any, env: dict[str, str] | None = None, **spec: Any) -> tuple[list[str], str]:
    run = agent_run(runtime="workflow", workflow={"steps": [{"name": "work", "loop": loop}]}, **spec)
    problems = validate_agent_run(run, resolve_run(run, world()), Settings.from_env(IMAGE | (env or {})))
    return [p.reason for p in problems], summarize(problems)[1]


def test_loops_are_off_unless_the_controller_enables_them() -> None:
    reasons, message = _problems({"maxIterations": 2})
    assert reasons == ["WorkflowLoopsDisabled"]
    assert (
        "JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED=true" in message and "spec.workflow.steps[0].loop" in message
    )
    assert _problems({"maxIterations": 2}, {"AGENTS_AGENTRUN_WORKFLOW_LOOPS_ENABLED": "true"})[0] == []
    assert _problems({"maxIterations": 2}, ON)[0] == []


@pytest.mark.parametrize(
    ("loop", "reason", "says"),
    [
        (
            {"maxIterations": 3, "condition": {"cel": "control.more =="}},
            "InvalidLoopCondition",
            "syntax error",
        ),
        ({"maxIterations": 3, "condition": {"cel": " "}}, "InvalidLoopCondition", "must be a CEL expression"),
        ({"maxIterations": 0}, "InvalidWorkflowLoop", "maxIterations must be an integer from 1 to 1000"),
        ({}, "InvalidWorkflowLoop", "maxIterations"),
        ({"maxIterations": 2, "historyLimit": 0}, "InvalidWorkflowLoop", "historyLimit"),
        ({"maxIterations": 2, "onMissingControl": "retry"}, "InvalidWorkflowLoop", "must be stop or fail"),
        ({"maxIterations": 2, "stateVolumes": ["scratch"]}, "InvalidWorkflowLoop", "cannot carry state"),
        ("twice", "InvalidWorkflowLoop", "must be an object"),
    ],
)
def test_bad_loops_fail_admission_with_a_reason(loop: Any, reason: str, says: str) -> None:
    reasons, message = _problems(loop, ON)
    assert reasons == [reason] and says in message


def test_state_volumes_name_pvc_volumes_or_the_workspace() -> None:
    workload = {"volumes": [{"type": "pvc", "name": "state", "mountPath": "/state", "claimName": "c"}]}
    loop = {"maxIterations": 2, "stateVolumes": ["state"]}
    assert _problems(loop, ON, workload=workload)[0] == []
    loop = {"maxIterations": 2, "stateVolumes": ["ws"]}
    reasons = _problems(loop, ON, workspaceRef={"name": "ws"})[0]
    assert "InvalidWorkflowLoop" not in reasons  # (the Workspace itself is looked up by its own check)
