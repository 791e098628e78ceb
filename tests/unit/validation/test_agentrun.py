"""AgentRun validation: each InvalidSpec reason a user can hit, with an actionable message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from jangar.settings import Settings
from jangar.validation import Problem, resolve_run, summarize, validate_agent_run
from tests.unit.scheduler.objects import agent, agent_run, provider

IMAGE = {"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"}


class FakeLookup:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        for obj in objects:
            self.objects[(obj["kind"], obj["metadata"]["name"])] = obj

    def get(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((kind, name))

    def list(self, kind: str) -> Iterable[Mapping[str, Any]]:
        return [o for (k, _), o in self.objects.items() if k == kind]


def kinded(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind} | obj


def world(*extra: dict[str, Any], agent_spec: dict[str, Any] | None = None) -> FakeLookup:
    return FakeLookup(
        kinded("Agent", agent(**(agent_spec or {}))),
        kinded("AgentProvider", provider()),
        {"kind": "ImplementationSpec", "metadata": {"name": "impl-1"}, "spec": {"text": "do it"}},
        *extra,
    )


def binding(*secrets: str, subject: tuple[str, str] = ("Agent", "agent-1")) -> dict[str, Any]:
    return {
        "kind": "SecretBinding",
        "metadata": {"name": "b"},
        "spec": {"subjects": [{"kind": subject[0], "name": subject[1]}], "allowedSecrets": list(secrets)},
    }


def reasons(run: dict[str, Any], lookup: FakeLookup, env: dict[str, str] | None = None) -> list[str]:
    problems = validate_agent_run(run, resolve_run(run, lookup), Settings.from_env(IMAGE | (env or {})))
    return [p.reason for p in problems]


def test_valid_run_has_no_problems() -> None:
    assert reasons(agent_run(parameters={"a": "b"}), world()) == []


def test_missing_references() -> None:
    assert reasons(agent_run(), FakeLookup()) == ["MissingAgent", "MissingImplementation"]
    lookup = FakeLookup(kinded("Agent", agent()))
    assert "MissingProvider" in reasons(agent_run(), lookup)
    assert reasons(agent_run(memoryRef={"name": "mem"}), world()) == ["MissingMemory"]


def test_inline_implementation_needs_no_reference() -> None:
    run = agent_run(implementation={"inline": {"text": "inline"}})
    del run["spec"]["implementationSpecRef"]
    assert reasons(run, world()) == []


@pytest.mark.parametrize("runtime", ["temporal", "custom", "lambda"])
def test_unsupported_runtime(runtime: str) -> None:
    run = agent_run(runtime=runtime)
    problems = validate_agent_run(run, resolve_run(run, world()), Settings.from_env(IMAGE))
    assert problems[0].reason == "UnsupportedRuntime"
    assert "'job' or 'workflow'" in problems[0].message


def test_missing_runtime() -> None:
    run = agent_run()
    del run["spec"]["runtime"]
    assert reasons(run, world())[0] == "MissingRuntime"


def test_parameter_limits() -> None:
    too_many = {f"k{i}": "v" for i in range(101)}
    assert "ParametersTooLarge" in reasons(agent_run(parameters=too_many), world())
    assert reasons(agent_run(parameters={"n": 3}), world()) == ["ParameterNotString"]
    assert reasons(agent_run(parameters={"big": "é" * 1025}), world()) == ["ParameterValueTooLarge"]
    assert reasons(agent_run(parameters={"ok": "x" * 2048}), world()) == []


def test_label_policy() -> None:
    env = {
        "JANGAR_AGENTS_CONTROLLER_LABELS_REQUIRED": "team",
        "JANGAR_AGENTS_CONTROLLER_LABELS_DENIED": '["internal/*"]',
        "JANGAR_AGENTS_CONTROLLER_LABELS_ALLOWED": "team,internal/*",
    }
    run = agent_run()
    assert reasons(run, world(), env) == ["MissingRequiredLabels"]
    run["metadata"]["labels"] = {"team": "a", "internal/x": "1", "other": "2", "empty": ""}
    assert reasons(run, world(), env) == ["LabelBlocked", "LabelNotAllowed"]


def test_image_policy() -> None:
    env = {
        "JANGAR_AGENTS_CONTROLLER_IMAGES_DENIED": "evil/*",
        "JANGAR_AGENTS_CONTROLLER_IMAGES_ALLOWED": "ghcr.io/*",
    }
    assert reasons(agent_run(workload={"image": "evil/x:1"}), world(), env) == ["ImageBlocked"]
    assert reasons(agent_run(workload={"image": "docker.io/x:1"}), world(), env) == ["ImageNotAllowed"]
    assert reasons(agent_run(workload={"image": "ghcr.io/x:1"}), world(), env) == []
    run = agent_run()
    problems = validate_agent_run(run, resolve_run(run, world()), Settings())
    assert [p.reason for p in problems] == ["MissingWorkloadImage"]
    assert "runner.image" in problems[0].message


def test_secrets_need_allow_list_binding_and_not_blocked() -> None:
    run = agent_run(secrets=["api-key"])
    assert reasons(run, world()) == ["SecretNotBound"]
    assert reasons(run, world(binding("api-key"))) == []
    assert reasons(run, world(binding("api-key", subject=("AgentRun", "run-1")))) == []
    assert reasons(run, world(binding("api-key", subject=("Agent", "someone-else")))) == ["SecretNotBound"]
    restricted = world(binding("api-key"), agent_spec={"security": {"allowedSecrets": ["other"]}})
    assert reasons(run, restricted) == ["SecretNotAllowed"]
    blocked = {"JANGAR_AGENTS_CONTROLLER_BLOCKED_SECRETS": "api-key"}
    assert reasons(run, world(binding("api-key")), blocked) == ["SecretBlocked"]


def test_workload_secret_volume_is_a_secret_use() -> None:
    run = agent_run(
        workload={"volumes": [{"type": "secret", "name": "v", "mountPath": "/s", "secretName": "sv"}]}
    )
    assert reasons(run, world()) == ["SecretNotBound"]


def test_auth_secret_must_be_in_agent_allow_list() -> None:
    env = {"JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "codex-auth"}
    assert reasons(agent_run(), world(), env) == []  # no binding needed for the operator's secret
    restricted = world(agent_spec={"security": {"allowedSecrets": ["x"]}})
    assert reasons(agent_run(), restricted, env) == ["SecretNotAllowed"]


def test_memory_secret_rules() -> None:
    memory = {
        "kind": "Memory",
        "metadata": {"name": "mem"},
        "spec": {"type": "postgres", "default": True, "connection": {"secretRef": {"name": "db"}}},
    }
    assert reasons(agent_run(), world(memory, binding("db"))) == []
    assert reasons(agent_run(secrets=["x"]), world(memory, binding("db", "x"))) == ["SecretNotAllowed"]


def test_service_account_allow_list() -> None:
    lookup = world(agent_spec={"security": {"allowedServiceAccounts": ["runner"]}})
    assert reasons(agent_run(), lookup) == ["ServiceAccountNotAllowed"]
    assert reasons(agent_run(config={"serviceAccount": "runner"}), lookup) == []
    assert reasons(agent_run(), lookup, {"JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "runner"}) == []


def test_contract_problems() -> None:
    impl = {
        "kind": "ImplementationSpec",
        "metadata": {"name": "impl-1"},
        "spec": {"text": "x", "contract": {"requiredKeys": ["repository"]}},
    }
    lookup = FakeLookup(kinded("Agent", agent()), kinded("AgentProvider", provider()), impl)
    assert reasons(agent_run(), lookup) == ["MissingRequiredMetadata"]
    assert reasons(agent_run(parameters={"repo": "a/b"}), lookup) == []


def workflow_run(steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return agent_run(runtime="workflow", workflow={"steps": steps}, **spec)


def test_workflow_validation() -> None:
    assert reasons(workflow_run([]), world()) == ["MissingWorkflowSteps"]
    assert reasons(workflow_run([{"name": ""}]), world()) == ["WorkflowStepMissingName"]
    assert reasons(workflow_run([{"name": "a"}, {"name": "a"}]), world()) == ["WorkflowStepDuplicate"]
    assert reasons(workflow_run([{"name": "a", "parameters": {"x": 1}}]), world()) == ["ParameterNotString"]
    assert reasons(workflow_run([{"name": "a", "retries": -1}]), world()) == ["InvalidWorkflowStep"]
    missing = workflow_run([{"name": "a", "implementationSpecRef": {"name": "nope"}}])
    assert reasons(missing, world()) == ["MissingImplementation"]
    env = {"JANGAR_AGENTS_CONTROLLER_IMAGES_DENIED": "bad:*"}
    assert reasons(workflow_run([{"name": "a", "workload": {"image": "bad:1"}}]), world(), env) == [
        "ImageBlocked"
    ]
    assert reasons(workflow_run([{"name": "plan"}, {"name": "implement", "retries": 2}]), world()) == []


def test_summarize() -> None:
    assert summarize([Problem("A", "first"), Problem("B", "second")]) == ("A", "first; second")
    assert summarize([]) == ("Valid", "")


def test_workload_volumes_must_be_addressable() -> None:
    def volumes(*vols: dict[str, Any]) -> list[str]:
        return reasons(agent_run(workload={"volumes": list(vols)}), world())

    ok = {"type": "emptyDir", "name": "tmp", "mountPath": "/tmp"}
    assert volumes(ok) == []
    assert volumes(ok, ok | {"mountPath": "/other"}) == ["InvalidWorkloadVolume"]  # duplicate name
    assert volumes(ok, ok | {"name": "tmp2"}) == ["InvalidWorkloadVolume"]  # duplicate path
    assert volumes(ok | {"name": "Bad_Name"}) == ["InvalidWorkloadVolume"]
    assert volumes(ok | {"mountPath": "relative"}) == ["InvalidWorkloadVolume"]
    assert volumes(ok | {"mountPath": "/workspace/run.json"}) == ["InvalidWorkloadVolume"]
    assert volumes(ok | {"type": "hostPath"}) == ["InvalidWorkloadVolume"]
    assert volumes(ok | {"name": "run-1-spec-vol"}) == ["InvalidWorkloadVolume"]  # the builder's own name
    step = {"name": "a", "workload": {"volumes": [ok | {"type": "nfs"}]}}
    assert reasons(agent_run(runtime="workflow", workflow={"steps": [step]}), world()) == [
        "InvalidWorkloadVolume"
    ]


def test_runtime_config_shapes() -> None:
    good = {
        "nodeSelector": {"pool": "a"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "imagePullSecrets": ["a", {"name": "b"}],
        "serviceAccount": "default",
        "ttlSecondsAfterFinished": "60",
        "timeoutSeconds": 0,
    }
    assert reasons(agent_run(config=good), world()) == []
    bad = {
        "nodeSelector": {"pool": 1},
        "tolerations": {"key": "k"},
        "backoffLimit": -1,
        "imagePullSecrets": "x",
    }
    run = agent_run(config=bad)
    problems = validate_agent_run(run, resolve_run(run, world()), Settings.from_env(IMAGE))
    assert [p.reason for p in problems] == ["InvalidRuntimeConfig"] * 4
    assert problems[0].message == "spec.runtime.config.nodeSelector must be a map of strings"
