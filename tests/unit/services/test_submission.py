"""One manifest builder for agentctl, the HTTP API and gRPC: valid runs, clear errors, idempotent names."""

from __future__ import annotations

import pytest

from jangar.api.agents import AgentRun
from jangar.services.submission import Submission, SubmissionError, build_agent_run, idempotent_name


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
        (Submission("", "agents", "impl"), "an agent is required"),
        (Submission("a", "agents", ""), "an implementation spec is required"),
        (Submission("a", "agents", "impl", vcs_ref="Git Hub"), "version control provider 'Git Hub'"),
        (Submission("a", "agents", "impl", memory_ref="m_1"), "memory 'm_1'"),
    ],
)
def test_bad_submissions_say_what_is_wrong(sub: Submission, message: str) -> None:
    with pytest.raises(SubmissionError, match=message):
        build_agent_run(sub)


def test_grpc_only_fields_land_in_the_spec_and_validate() -> None:
    manifest = build_agent_run(
        Submission(
            "a",
            "agents",
            "impl",
            workload_image="img:1",
            resource_requests={"cpu": "500m", "memory": "1Gi"},
            memory_ref="mem",
            vcs_ref="github",
            vcs_policy_mode="read-only",
        )
    )
    spec = manifest["spec"]
    assert spec["workload"] == {"image": "img:1", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
    assert spec["memoryRef"] == {"name": "mem"}
    assert spec["vcsRef"] == {"name": "github"}
    assert spec["vcsPolicy"] == {"required": False, "mode": "read-only"}
    AgentRun.model_validate(manifest)
    required = build_agent_run(Submission("a", "agents", "impl", vcs_policy_required=True))
    assert required["spec"]["vcsPolicy"] == {"required": True}
    assert "vcsPolicy" not in build_agent_run(Submission("a", "agents", "impl"))["spec"]
