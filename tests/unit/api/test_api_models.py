"""The models accept the manifests users write, give them back unchanged, and refuse wrong ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from jangar.api import registry
from jangar.api.agents import AgentRun, AgentRunSpec, AgentRunStatus, StepStatus
from jangar.api.meta import Condition, ObjectMeta
from jangar.api.orchestration import Orchestration
from jangar.api.signals import Signal
from jangar.api.tools import Tool
from tests.unit.api.samples import agentrun_status, kinds, sample

EXAMPLES = Path(__file__).resolve().parents[3] / "charts" / "agents" / "examples"


def test_every_kind_has_a_sample() -> None:
    assert kinds() == sorted(info.kind for info in registry.KINDS)
    assert len(registry.KINDS) == 19


@pytest.mark.parametrize("kind", kinds())
def test_sample_round_trips_exactly(kind: str) -> None:
    manifest = sample(kind)
    model = registry.parse(manifest)
    assert type(model) is registry.by_kind(kind).model
    assert model.to_k8s() == manifest


def _example_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and str(doc.get("apiVersion", "")).split("/")[0].endswith(".proompteng.ai"):
                docs.append((f"{path.name}:{doc['kind']}", doc))
    return docs


@pytest.mark.parametrize(("name", "manifest"), _example_documents())
def test_chart_examples_round_trip(name: str, manifest: dict[str, Any]) -> None:
    """The chart's examples are what users copy; the models must neither reject nor drop anything in them."""
    assert registry.parse(manifest).to_k8s() == manifest, name


def test_agentrun_status_with_every_controller_field_round_trips() -> None:
    manifest = sample("AgentRun")
    manifest["status"] = agentrun_status()
    run = AgentRun.model_validate(manifest)
    assert run.to_k8s() == manifest
    assert run.status is not None and run.status.workflow is not None and run.status.workflow.steps
    step = run.status.workflow.steps[0]
    assert step.job_observed_at == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert step.next_retry_at == datetime(2026, 1, 1, 0, 0, 33, 250000, tzinfo=UTC)


def test_identity_is_filled_in_and_checked() -> None:
    tool = Tool(metadata=ObjectMeta(name="t"))
    assert tool.to_k8s()["apiVersion"] == "tools.proompteng.ai/v1alpha1"
    assert tool.to_k8s()["kind"] == "Tool"
    wrong_kind = sample("Tool") | {"kind": "Agent"}
    with pytest.raises(ValidationError, match="kind must be 'Tool'"):
        Tool.model_validate(wrong_kind)
    wrong_group = sample("Tool") | {"apiVersion": "agents.proompteng.ai/v1alpha1"}
    with pytest.raises(ValidationError, match="apiVersion must be"):
        Tool.model_validate(wrong_group)
    with pytest.raises(KeyError):
        registry.for_object(wrong_group)


def test_snake_case_construction_dumps_camel_case() -> None:
    spec = AgentRunSpec.model_validate(
        {"agent_ref": {"name": "a"}, "runtime": {"type": "job"}, "implementation_spec_ref": {"name": "i"}}
    )
    assert spec.to_k8s() == {
        "agentRef": {"name": "a"},
        "runtime": {"type": "job"},
        "implementationSpecRef": {"name": "i"},
    }


def test_timestamps_are_rfc3339_utc() -> None:
    status = AgentRunStatus(
        started_at=datetime(2026, 5, 1, 12, 0, 0),  # naive: taken as UTC
        finished_at=datetime(2026, 5, 1, 12, 0, 1, 5000, tzinfo=UTC),
        workflow=None,
    )
    dumped = status.to_k8s()
    assert dumped["startedAt"] == "2026-05-01T12:00:00Z"
    assert dumped["finishedAt"] == "2026-05-01T12:00:01.005000Z"
    assert StepStatus.model_validate({"jobObservedAt": "2026-05-01T12:00:00+02:00"}).to_k8s() == {
        "jobObservedAt": "2026-05-01T10:00:00Z"
    }


def test_free_form_objects_keep_unknown_keys_and_typed_ones_drop_them() -> None:
    """Mirrors the API server: preserved where the schema says so, pruned elsewhere."""
    orchestration = Orchestration.model_validate(sample("Orchestration"))
    assert orchestration.to_k8s()["spec"]["steps"][0]["implementationSpecRef"] == {
        "name": "codex-impl-sample"
    }
    signal = Signal.model_validate(sample("Signal"))
    assert signal.to_k8s()["spec"]["extraKey"] == "kept"
    run = sample("AgentRun")
    run["spec"]["typo"] = 1
    run["spec"]["agentRef"]["nmae"] = "x"
    dumped = AgentRun.model_validate(run).to_k8s()
    assert "typo" not in dumped["spec"] and "nmae" not in dumped["spec"]["agentRef"]


def test_agentrun_spec_limits_are_enforced_in_python_too() -> None:
    run = sample("AgentRun")
    run["spec"]["parameters"] = {f"k{i}": "v" for i in range(101)}
    with pytest.raises(ValidationError, match="at most 100"):
        AgentRun.model_validate(run)
    run = sample("AgentRun")
    run["spec"]["runtime"]["type"] = "lambda"
    with pytest.raises(ValidationError):
        AgentRun.model_validate(run)


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"reason": ""}, False),
        ({"reason": "Ends,"}, False),
        ({"reason": "Job:Failed_2"}, True),
        ({"status": "true"}, False),
        ({"type": "bad type"}, False),
        ({"type": "example.com/Ready"}, True),
        ({"observedGeneration": -1}, False),
    ],
)
def test_condition_follows_the_kubernetes_shape(change: dict[str, Any], accepted: bool) -> None:
    data = {
        "type": "Ready",
        "status": "True",
        "reason": "Ok",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    } | change
    if accepted:
        assert Condition.model_validate(data).message == ""
    else:
        with pytest.raises(ValidationError):
            Condition.model_validate(data)
