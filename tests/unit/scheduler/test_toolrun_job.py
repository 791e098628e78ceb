"""`build_toolrun_job` / `tool_problems`: the Job and ConfigMap of a ToolRun, and what makes a Tool unusable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jangar.api.contract import LABEL_TOOL_RUN
from jangar.scheduler.naming import label_value
from jangar.scheduler.toolrun_job import (
    build_toolrun_job,
    tool_problems,
    toolrun_configmap_name,
    toolrun_job_name,
)
from jangar.settings import Settings

SETTINGS = Settings.from_env({})


def tool(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": "alpine:3.20",
        "command": ["/bin/sh", "-c"],
        "args": ['echo "{{parameters.message}}"'],
    }
    return {"metadata": {"name": "echo-tool", "namespace": "ns", "uid": "tool-uid"}, "spec": base | spec}


def toolrun(name: str = "lint-run", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "toolRef": {"name": "echo-tool"},
        "parameters": {"message": "hi", "path": "./src"},
    }
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": "run-uid", "annotations": {"x": "y"}},
        "spec": base | spec,
        "status": {"phase": "Pending"},
    }


def test_the_job_and_configmap_follow_the_reference_shape() -> None:
    build = build_toolrun_job(
        toolrun(),
        tool(
            env=[
                {"name": "TARGET", "value": "{{parameters.path}}"},
                {"name": "RUN", "value": "{{toolRun.metadata.name}}"},
            ],
            workingDir="/src",
            serviceAccount="tools",
            timeoutSeconds=120,
            ttlSecondsAfterFinished=60,
        ),
        SETTINGS,
    )
    assert build.plan is not None and not build.missing
    job, (cm,) = build.plan.job, build.plan.configmaps
    assert job["metadata"]["name"] == "lint-run-job"
    assert cm["metadata"]["name"] == "lint-run-spec"
    for meta in (job["metadata"], cm["metadata"], job["spec"]["template"]["metadata"]):
        assert meta["labels"][LABEL_TOOL_RUN] == "lint-run"
    for meta in (job["metadata"], cm["metadata"]):
        (owner,) = meta["ownerReferences"]
        assert owner == {
            "apiVersion": "tools.proompteng.ai/v1alpha1",
            "kind": "ToolRun",
            "name": "lint-run",
            "uid": "run-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    document = json.loads(cm["data"]["run.json"])
    assert document["parameters"] == {"message": "hi", "path": "./src"}
    assert document["toolRun"] == {
        "metadata": {"name": "lint-run", "namespace": "ns", "uid": "run-uid"},
        "spec": toolrun()["spec"],
    }
    assert document["tool"]["spec"]["image"] == "alpine:3.20"
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 120
    assert spec["backoffLimit"] == 0
    assert "ttlSecondsAfterFinished" not in spec  # patched only after the outcome is recorded
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "tools"
    (container,) = pod["containers"]
    assert container["name"] == "tool-runner"
    assert container["image"] == "alpine:3.20"
    assert container["command"] == ["/bin/sh", "-c"]
    assert container["args"] == ['echo "hi"']
    assert container["workingDir"] == "/src"
    assert container["env"] == [
        {"name": "TOOL_RUN_SPEC", "value": "/workspace/run.json"},
        {"name": "TARGET", "value": "./src"},
        {"name": "RUN", "value": "lint-run"},
    ]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    (mount,) = container["volumeMounts"]
    assert (mount["mountPath"], mount["subPath"]) == ("/workspace/run.json", "run.json")
    (volume,) = pod["volumes"]
    assert volume == {"name": mount["name"], "configMap": {"name": "lint-run-spec"}}


def test_missing_placeholders_are_reported_not_rendered_empty() -> None:
    build = build_toolrun_job(
        toolrun(parameters={"other": "x"}),
        tool(env=[{"name": "A", "value": "{{tool.spec.nothing}}"}]),
        SETTINGS,
    )
    assert build.plan is None
    assert list(build.missing) == [
        "spec.args[0]: {{parameters.message}}",
        "spec.env[0].value: {{tool.spec.nothing}}",
    ]
    assert "parameters.message" in build.message


def test_defaults_without_optional_fields() -> None:
    settings = Settings.from_env({"JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "runner"})
    build = build_toolrun_job(toolrun(), tool(args=None, command=["true"]), settings)
    assert build.plan is not None
    pod = build.plan.job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "args" not in container and "workingDir" not in container
    assert "activeDeadlineSeconds" not in build.plan.job["spec"]
    assert pod["serviceAccountName"] == "runner"  # the controller default when the Tool names none


def test_long_names_stay_valid_and_distinct() -> None:
    a, b = "x" * 80 + "a", "x" * 80 + "b"
    assert toolrun_job_name(a) != toolrun_job_name(b)
    assert len(toolrun_job_name(a)) <= 54 and toolrun_job_name(a).endswith("-job")
    assert len(toolrun_configmap_name(a)) <= 63
    build = build_toolrun_job(toolrun(a), tool(), SETTINGS)
    assert build.plan is not None
    assert build.plan.job["metadata"]["labels"][LABEL_TOOL_RUN] == label_value(a)


@pytest.mark.parametrize(
    ("spec", "reasons"),
    [
        ({}, []),
        ({"image": ""}, ["MissingImage"]),
        ({"image": None, "command": None, "args": None}, ["MissingImage", "MissingCommand"]),
        ({"command": None}, []),
        ({"args": None}, []),
        ({"command": [], "args": []}, ["MissingCommand"]),
        ({"env": [{"name": "1BAD", "value": "x"}]}, ["InvalidEnvName"]),
        ({"env": [{"name": "HAS SPACE", "value": "x"}]}, ["InvalidEnvName"]),
        ({"env": [{"name": "TOOL_RUN_SPEC", "value": "x"}]}, ["InvalidEnvName"]),
        ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, ["DuplicateEnvName"]),
        ({"env": [{"name": "my.var-1", "value": "x"}]}, []),
        ({"args": ["{{secrets.token}}"]}, ["InvalidTemplate"]),
        ({"args": ["{{ tool.spec.image }} {{toolRun.metadata.name}} {{parameters.x}}"]}, []),
    ],
)
def test_tool_problems(spec: dict[str, Any], reasons: list[str]) -> None:
    assert [p.reason for p in tool_problems(tool(**spec))] == reasons
