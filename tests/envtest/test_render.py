"""`agentctl run render` against a real API server: what it prints is what the controller creates.

The controller runs in-process and creates the Job and ConfigMaps of a run; `agentctl run render` (a real
process, kube mode) renders the same run as read back from the cluster. Every field the render sets must be
in the created object with the same value (the API server only adds defaults and server fields).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from jangar.controllers.kinds import AGENTRUNS, CONFIGMAPS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from tests.envtest.controllers_fixtures import (
    RUNNER_IMAGE,
    ControllerProcess,
    apply_basics,
    eventually,
    run,
)
from tests.support.commands import run_command


def assert_subset(rendered: Any, actual: Any, path: str = "") -> None:
    """Every field of `rendered` is in `actual` with the same value (lists: same length, item by item)."""
    if isinstance(rendered, dict):
        assert isinstance(actual, dict), f"{path}: expected a mapping, got {actual!r}"
        for key, value in rendered.items():
            assert key in actual, f"{path}.{key}: rendered but not in the created object"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(rendered, list):
        assert isinstance(actual, list) and len(actual) == len(rendered), (
            f"{path}: {rendered!r} != {actual!r}"
        )
        for i, (r, a) in enumerate(zip(rendered, actual, strict=True)):
            assert_subset(r, a, f"{path}[{i}]")
    else:
        assert rendered == actual, f"{path}: rendered {rendered!r}, created {actual!r}"


async def agentctl_render(
    kubeconfig: Path, namespace: str, manifest: dict[str, Any], tmp: Path, *extra: str
) -> Any:
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(manifest))
    done = await run_command(
        "jangar.agentctl",
        "--kubeconfig",
        str(kubeconfig),
        "run",
        "render",
        "-f",
        str(path),
        "-o",
        "json",
        *extra,
        env={"JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace, "JANGAR_AGENT_RUNNER_IMAGE": RUNNER_IMAGE},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["items"]


async def created_children(client: Client, ns: str, job_name: str) -> dict[str, Any]:
    async def job() -> Any:
        try:
            return await client.get(JOBS, job_name, ns)
        except NotFoundError:
            return None

    return await eventually(job, what=f"Job {job_name} created by the controller")


async def test_render_equals_what_the_controller_creates(
    envtest: LocalCluster, client: Client, controller: ControllerProcess, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    await apply_basics(client, ns)
    await client.create(
        AGENTRUNS,
        run(
            ns,
            "same",
            workload={"image": "registry.example/agent:1", "resources": {"requests": {"cpu": "100m"}}},
            runtime={"type": "job", "config": {"timeoutSeconds": 120, "serviceAccount": "default"}},
        ),
    )
    created_job = await created_children(client, ns, "same-job")
    stored = await client.get(AGENTRUNS, "same", ns)
    items = await agentctl_render(envtest.kubeconfig, ns, stored, tmp_path)
    kinds = [i["kind"] for i in items]
    assert kinds == ["ConfigMap", "Job"]
    rendered_job = items[-1]
    assert rendered_job["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"]
    assert_subset(rendered_job, created_job, "Job")
    for configmap in items[:-1]:
        actual = await client.get(CONFIGMAPS, configmap["metadata"]["name"], ns)
        assert_subset(configmap, actual, f"ConfigMap {configmap['metadata']['name']}")


async def test_render_of_a_workflow_step_equals_the_step_job(
    envtest: LocalCluster, client: Client, controller: ControllerProcess, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    await apply_basics(client, ns)
    steps = [{"name": "plan", "parameters": {"stage": "plan"}, "timeoutSeconds": 300}, {"name": "build"}]
    await client.create(AGENTRUNS, run(ns, "flow", runtime={"type": "workflow"}, workflow={"steps": steps}))
    created_job = await created_children(client, ns, "flow-step-1-attempt-1")
    stored = await client.get(AGENTRUNS, "flow", ns)
    items = await agentctl_render(envtest.kubeconfig, ns, stored, tmp_path, "--step", "plan")
    jobs = [i for i in items if i["kind"] == "Job"]
    assert [j["metadata"]["name"] for j in jobs] == ["flow-step-1-attempt-1"]
    assert jobs[0]["spec"]["activeDeadlineSeconds"] == 300
    assert_subset(jobs[0], created_job, "Job")
    for configmap in (i for i in items if i["kind"] == "ConfigMap"):
        actual = await client.get(CONFIGMAPS, configmap["metadata"]["name"], ns)
        assert_subset(configmap, actual, f"ConfigMap {configmap['metadata']['name']}")


async def test_render_reports_the_controllers_reason_for_a_run_it_would_not_start(
    envtest: LocalCluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    await apply_basics(client, namespace)
    path = tmp_path / "bad.yaml"
    manifest = run(namespace, "bad", agent_name="nobody")
    path.write_text(
        yaml.safe_dump({"apiVersion": "agents.proompteng.ai/v1alpha1", "kind": "AgentRun", **manifest})
    )
    done = await run_command(
        "jangar.agentctl",
        "--kubeconfig",
        str(envtest.kubeconfig),
        "run",
        "render",
        "-f",
        str(path),
        env={"JANGAR_AGENT_RUNNER_IMAGE": RUNNER_IMAGE},
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "MissingAgent" in done.stderr and "'nobody'" in done.stderr
