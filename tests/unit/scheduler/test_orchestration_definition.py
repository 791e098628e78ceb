"""Orchestration definitions: every validation reason, the DAG order, references and step inputs."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.scheduler.orchestration import (
    referenced_objects,
    render_inputs,
    step_ref,
    topological_order,
    transitive_dependencies,
    validate_definition,
)
from jangar.scheduler.templating import references, render_strict

AGENT = {
    "name": "a",
    "kind": "AgentRun",
    "agentRef": {"name": "coder"},
    "implementationSpecRef": {"name": "t"},
}


def s(name: str, kind: str = "Checkpoint", *deps: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": kind, **extra}
    if deps:
        out["dependsOn"] = list(deps)
    return out


@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        ({}, "MissingSteps", "at least one"),
        ({"steps": []}, "MissingSteps", "at least one"),
        ({"steps": [{"kind": "Checkpoint"}]}, "StepMissingName", "spec.steps[0]"),
        ({"steps": ["x"]}, "StepMissingName", "spec.steps[0]"),
        ({"steps": [{"name": "a"}]}, "StepMissingKind", "'a'"),
        ({"steps": [s("a"), s("a")]}, "DuplicateStep", "'a'"),
        ({"entrypoint": "main", "steps": [s("a")]}, "EntrypointMissing", "'main'"),
        ({"steps": [s("a", "Checkpoint", "a")]}, "InvalidDependency", "itself"),
        ({"steps": [s("a", "Checkpoint", "b")]}, "MissingDependency", "'b'"),
        ({"steps": [s("a", "Teleport")]}, "UnknownStepKind", "'Teleport'"),
        (
            {"steps": [s("a", "AgentRun", implementationSpecRef={"name": "t"})]},
            "StepMissingAgentRef",
            "agentRef",
        ),
        (
            {"steps": [s("a", "AgentRun", agentRef={"name": "c"})]},
            "StepMissingImplementation",
            "implementation",
        ),
        ({"steps": [s("a", "ToolRun")]}, "StepMissingToolRef", "toolRef"),
        ({"steps": [s("a", "SubOrchestration")]}, "StepMissingOrchestrationRef", "orchestrationRef"),
        ({"steps": [s("a", "ApprovalGate")]}, "StepMissingPolicyRef", "policyRef"),
        ({"steps": [s("a", "SignalWait")]}, "StepMissingSignalRef", "signalRef or deliveryId"),
        (
            {"steps": [s("a", "SubOrchestration", orchestrationRef={"name": "self"})]},
            "RecursiveSubOrchestration",
            "'self'",
        ),
        (
            {"steps": [s("a", "Checkpoint", "b"), s("b", "Checkpoint", "c"), s("c", "Checkpoint", "a")]},
            "DependencyCycle",
            "cycle",
        ),
        (
            {"steps": [s("a"), s("b", **{"with": {"x": "{{steps.nope.outputs.k}}"}})]},
            "InvalidTemplateReference",
            "unknown step",
        ),
        (
            {"steps": [s("a"), s("b", **{"with": {"x": "{{steps.a.outputs.k}}"}})]},
            "InvalidTemplateReference",
            "not a dependency",
        ),
        ({"steps": [s("a", **{"with": {"x": "{{ run.name }}"}})]}, "InvalidTemplateReference", "neither"),
        ({"steps": [s("a", **{"with": {"x": "{{steps.a.status}}"}})]}, "InvalidTemplateReference", "neither"),
    ],
)
def test_validation_reasons(spec: dict[str, Any], reason: str, fragment: str) -> None:
    problem = validate_definition(spec, "self")
    assert problem is not None and problem.reason == reason, problem
    assert fragment in problem.message


def test_a_valid_definition_with_transitive_template_references() -> None:
    spec = {
        "entrypoint": "a",
        "steps": [
            s("a", "ToolRun", toolRef={"name": "t"}),
            s("b", "Checkpoint", "a"),
            s(
                "c",
                "ToolRun",
                "b",
                toolRef="t",
                **{"with": {"x": "{{ steps.a.outputs.k }}-{{parameters.p}}", "y": "{{steps.b.outputs}}"}},
            ),
            s("d", "SignalWait", deliveryId="d1"),
            s("e", "SignalWait", signalRef={"name": "go"}),
            s("f", "ApprovalGate", **{"with": {"policyRef": "p"}}),
            AGENT | {"name": "g"},
            s("h", "AgentRun", agentRef={"name": "c"}, implementation={"text": "x"}),
        ],
    }
    assert validate_definition(spec, "flow") is None


def test_topological_order_is_kahn_with_spec_order_ties() -> None:
    steps = [s("d", "Checkpoint", "b", "c"), s("c", "Checkpoint", "a"), s("b", "Checkpoint", "a"), s("a")]
    assert topological_order(steps) == ["a", "c", "b", "d"]
    assert topological_order([s("x", "Checkpoint", "y"), s("y", "Checkpoint", "x")]) is None
    assert transitive_dependencies(steps, "d") == {"a", "b", "c"}


def test_step_refs_accept_the_reference_forms() -> None:
    assert step_ref({"agentRef": {"name": " a "}}, "agentRef") == "a"
    assert step_ref({"agentRef": "b"}, "agentRef") == "b"
    assert step_ref({"with": {"agentRef": "c"}}, "agentRef") == "c"
    assert step_ref({"agentRef": {"name": ""}}, "agentRef") is None
    assert referenced_objects(AGENT) == [("Agent", "coder"), ("ImplementationSpec", "t")]
    assert referenced_objects(s("w", "SignalWait", deliveryId="x")) == []


def test_render_inputs_reports_what_resolved_to_nothing() -> None:
    step = {
        "with": {"a": "{{parameters.p}}/{{steps.x.outputs.k}}", "b": "{{steps.x.outputs.none}}", "c": "lit"}
    }
    out = render_inputs(step, {"p": "P"}, {"x": {"k": 1, "none": None}})
    assert out.values == {"a": "P/1", "b": "", "c": "lit"}
    assert out.missing == ["steps.x.outputs.none"]
    assert render_inputs({"with": {"j": "{{steps.x.outputs}}"}}, {}, {"x": {"k": [1]}}).values == {
        "j": '{"k":[1]}'
    }


def test_templating_references_and_strict_render() -> None:
    assert references("{{ a.b }} and {{c}} {{}}") == ["a.b", "c"]
    assert render_strict("{{a}}-{{b}}", {"a": "x"}) == ("x-", ["b"])
