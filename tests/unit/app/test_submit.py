"""One manifest builder for agentctl and the HTTP API: valid runs, clear errors, idempotent names."""

from __future__ import annotations

import pytest

from jangar.api.agents import AgentRun
from jangar.submit import Submission, SubmissionError, build_agent_run, idempotent_name


def test_workflow_submission_from_the_readme_is_a_valid_agent_run() -> None:
    manifest = build_agent_run(
        Submission(
            agent="codex-agent",
            namespace="agents",
            implementation_spec="codex-impl-sample",
            runtime="workflow",
            workload_image="registry.example/codex-universal:latest",
            parameters={"repository": "proompteng/lab"},
        )
    )
    run = AgentRun.model_validate(manifest)
    assert run.spec.runtime.type == "workflow"
    assert run.spec.agent_ref.name == "codex-agent"
    assert manifest["spec"]["implementationSpecRef"] == {"name": "codex-impl-sample"}
    assert manifest["spec"]["workload"] == {"image": "registry.example/codex-universal:latest"}
    assert manifest["metadata"]["generateName"] == "codex-agent-"
    # The CRD requires at least one workflow step: the reference's single step, named after the stage.
    assert manifest["spec"]["workflow"] == {
        "steps": [{"name": "implement", "parameters": {"stage": "implement"}}]
    }


def test_workflow_step_is_named_after_the_stage_parameter() -> None:
    manifest = build_agent_run(
        Submission("a", "agents", "impl", runtime="workflow", parameters={"stage": "plan"})
    )
    assert manifest["spec"]["workflow"]["steps"] == [{"name": "plan", "parameters": {"stage": "plan"}}]
    assert "workflow" not in build_agent_run(Submission("a", "agents", "impl"))["spec"]


def test_idempotency_key_gives_a_stable_name() -> None:
    a = build_agent_run(Submission("a", "agents", "impl", idempotency_key="issue-42"))
    b = build_agent_run(Submission("a", "agents", "impl", idempotency_key="issue-42"))
    c = build_agent_run(Submission("a", "agents", "impl", idempotency_key="issue-43"))
    assert a["metadata"]["name"] == b["metadata"]["name"] == idempotent_name("issue-42", prefix="a")
    assert c["metadata"]["name"] != a["metadata"]["name"]
    assert "generateName" not in a["metadata"]


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        (Submission("Bad_Agent", "agents", "impl"), "agent 'Bad_Agent' is not a valid Kubernetes name"),
        (Submission("a", "agents", None), "an implementation spec is required"),
        (Submission("a", "agents", "impl", runtime="lambda"), "runtime must be one of"),
        (Submission("a", "agents", "impl", name="UPPER"), "name 'UPPER'"),
    ],
)
def test_bad_submissions_say_what_is_wrong(sub: Submission, message: str) -> None:
    with pytest.raises(SubmissionError, match=message):
        build_agent_run(sub)
