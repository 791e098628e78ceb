"""The Tool and ToolRun controllers against a real API server (no kubelet, no Job controller: the test writes
the Pod and Job status those would write).

Covers Tool status, the ToolRun's Job and ConfigMap, outputs from the Pod's termination message, cancel, a
vanished Job, and a restart that adopts the Job instead of creating a second one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from jangar.api.contract import ANNOTATION_CANCEL, LABEL_TOOL_RUN
from jangar.api.refs import TOOLRUNS, TOOLS
from jangar.controllers.kinds import CONFIGMAPS, EVENTS, JOBS, PODS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError, PropagationPolicy
from jangar.scheduler.toolrun_job import build_toolrun_job
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    cond,
    eventually,
    running_controller,
    settings_for,
)
from tests.envtest.test_controllers_agentrun import finish_job


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tool(ns: str, name: str = "echo-tool", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": "alpine:3.20",
        "command": ["/bin/sh", "-c"],
        "args": ['echo "{{parameters.message}}"'],
    }
    return {"metadata": {"name": name, "namespace": ns}, "spec": base | spec}


def toolrun(ns: str, name: str, tool_name: str = "echo-tool", **parameters: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"toolRef": {"name": tool_name}, "parameters": parameters or {"message": "hello"}},
    }


async def get_obj(client: Client, ref: Any, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await client.get(ref, name, ns)
    return obj


async def wait_toolrun(
    client: Client, ns: str, name: str, *phases: str, timeout: float = 30.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get_obj(client, TOOLRUNS, ns, name)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    found: dict[str, Any] = await eventually(check, timeout=timeout, what=f"toolrun {name} in {phases}")
    return found


async def finish_pod(
    client: Client, ns: str, job: dict[str, Any], *, message: str | None, exit_code: int = 0
) -> None:
    """The Pod the Job controller would create, terminated as the kubelet would report it."""
    name = job["metadata"]["name"]
    labels = dict(job["spec"]["template"]["metadata"]["labels"]) | {"job-name": name}
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": job["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    body = {
        "metadata": {"name": f"{name}-abcde", "namespace": ns, "labels": labels, "ownerReferences": [owner]},
        "spec": job["spec"]["template"]["spec"],
    }
    pod = await client.create(PODS, body)
    now = _now()
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": now,
        "finishedAt": now,
    }
    if message is not None:
        terminated["message"] = message
    pod["status"] = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": "tool-runner",
                "image": "alpine:3.20",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    await client.update_status(PODS, pod)


async def events_for(client: Client, ns: str, name: str) -> list[tuple[str, str]]:
    events = (await client.list(EVENTS, ns)).items
    return sorted(
        (e["type"], e["reason"])
        for e in events
        if e["involvedObject"]["kind"] == "ToolRun" and e["involvedObject"]["name"] == name
    )


async def test_tool_status_follows_its_spec(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(TOOLS, tool(namespace, "good"))
    await client.create(TOOLS, tool(namespace, "bad", image="", env=[{"name": "1X", "value": "v"}]))

    async def phase(name: str, want: str) -> dict[str, Any] | None:
        obj = await get_obj(client, TOOLS, namespace, name)
        return obj if (obj.get("status") or {}).get("phase") == want else None

    good = await eventually(lambda: phase("good", "Ready"), what="good tool Ready")
    assert cond(good, "Ready")["status"] == "True"
    assert cond(good, "Ready")["reason"] == "ValidSpec"
    assert good["status"]["observedGeneration"] == good["metadata"]["generation"]
    bad = await eventually(lambda: phase("bad", "Invalid"), what="bad tool Invalid")
    assert cond(bad, "Ready")["status"] == "False"
    assert cond(bad, "Ready")["reason"] == "MissingImage"
    assert "1X" in cond(bad, "Ready")["message"]
    assert cond(bad, "InvalidSpec")["status"] == "True"
    assert cond(bad, "Degraded")["status"] == "True"

    await client.patch(TOOLS, "bad", {"spec": {"image": "alpine:3.20", "env": []}}, namespace=namespace)
    fixed = await eventually(lambda: phase("bad", "Ready"), what="fixed tool Ready")
    assert cond(fixed, "InvalidSpec")["status"] == "False"
    assert cond(fixed, "Degraded")["status"] == "False"


async def test_toolrun_gets_its_job_and_configmap_and_reports_outputs(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(
        TOOLS,
        tool(
            namespace, env=[{"name": "TARGET", "value": "{{parameters.path}}"}], ttlSecondsAfterFinished=120
        ),
    )
    await client.create(TOOLRUNS, toolrun(namespace, "lint", message="linting", path="./src"))
    obj = await wait_toolrun(client, namespace, "lint", "Running")
    assert obj["status"]["jobRef"]["name"] == "lint-job"
    assert obj["status"]["startedAt"]
    assert cond(obj, "Running")["reason"] == "Submitted"
    assert cond(obj, "Accepted")["status"] == "True"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    job = await get_obj(client, JOBS, namespace, "lint-job")
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ToolRun",
        "lint",
        obj["metadata"]["uid"],
        True,
    )
    assert job["metadata"]["labels"][LABEL_TOOL_RUN] == "lint"
    assert job["spec"]["template"]["metadata"]["labels"][LABEL_TOOL_RUN] == "lint"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "tool-runner"
    assert container["args"] == ['echo "linting"']
    assert {"name": "TOOL_RUN_SPEC", "value": "/workspace/run.json"} in container["env"]
    assert {"name": "TARGET", "value": "./src"} in container["env"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    cm = await get_obj(client, CONFIGMAPS, namespace, "lint-spec")
    assert cm["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    document = json.loads(cm["data"]["run.json"])
    assert document["parameters"] == {"message": "linting", "path": "./src"}
    assert document["toolRun"]["metadata"]["name"] == "lint"
    assert document["tool"]["spec"]["image"] == "alpine:3.20"

    await finish_pod(
        client, namespace, job, message=json.dumps({"outputs": {"issues": 0, "report": "clean"}})
    )
    await finish_job(client, namespace, "lint-job", ok=True)
    done = await wait_toolrun(client, namespace, "lint", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["outputs"] == {"issues": 0, "report": "clean"}
    assert done["status"]["finishedAt"]
    assert cond(done, "Succeeded")["status"] == "True"
    assert cond(done, "Running")["status"] == "False"
    assert cond(done, "InProgress")["status"] == "False"

    async def ttl() -> Any:
        return (await get_obj(client, JOBS, namespace, "lint-job"))["spec"].get("ttlSecondsAfterFinished")

    assert await eventually(ttl, what="job ttl after the outcome") == 120

    async def announced() -> bool:
        return {("Normal", "Created"), ("Normal", "Succeeded")} <= set(
            await events_for(client, namespace, "lint")
        )

    assert await eventually(announced, what="Created and Succeeded events")
    jobs = await client.list(JOBS, namespace)
    assert [j["metadata"]["name"] for j in jobs.items] == ["lint-job"]


async def test_a_failing_tool_reports_its_exit_and_log_tail(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(TOOLS, tool(namespace))
    await client.create(TOOLRUNS, toolrun(namespace, "boom"))
    await wait_toolrun(client, namespace, "boom", "Running")
    job = await get_obj(client, JOBS, namespace, "boom-job")
    await finish_pod(client, namespace, job, message="cannot open ./src: no such file", exit_code=3)
    await finish_job(client, namespace, "boom-job", ok=False)
    done = await wait_toolrun(client, namespace, "boom", "Failed")
    failed = cond(done, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "exited with code 3" in failed["message"] and "no such file" in failed["message"]
    assert "outputs" not in done["status"]

    async def warned() -> bool:
        return ("Warning", "Failed") in await events_for(client, namespace, "boom")

    assert await eventually(warned, what="Warning Failed event")


async def test_missing_parameter_and_missing_tool_fail_clearly(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    tuning = ControllerTuning(reference_grace_seconds=3.0)
    async with running_controller(envtest.kubeconfig, settings_for(namespace), tuning):
        await client.create(TOOLS, tool(namespace))
        await client.create(TOOLRUNS, toolrun(namespace, "noparam", other="x"))
        done = await wait_toolrun(client, namespace, "noparam", "Failed")
        assert cond(done, "Failed")["reason"] == "MissingParameter"
        assert "parameters.message" in cond(done, "Failed")["message"]
        with pytest.raises(NotFoundError):
            await client.get(JOBS, "noparam-job", namespace)

        await client.create(TOOLRUNS, toolrun(namespace, "notool", tool_name="absent"))
        waiting = await wait_toolrun(client, namespace, "notool", "Pending")
        assert cond(waiting, "InvalidSpec")["reason"] == "MissingTool"
        failed = await wait_toolrun(client, namespace, "notool", "Failed")
        assert cond(failed, "Failed")["reason"] == "MissingTool"

        # A ToolRun created before its Tool starts once the Tool appears (woken by the Tool event).
        await client.create(TOOLRUNS, toolrun(namespace, "early", tool_name="later"))
        await wait_toolrun(client, namespace, "early", "Pending")
        await client.create(TOOLS, tool(namespace, "later"))
        started = await wait_toolrun(client, namespace, "early", "Running", timeout=10)
        assert started["status"]["jobRef"]["name"] == "early-job"


async def test_cancel_deletes_the_job(controller: ControllerProcess, client: Client, namespace: str) -> None:
    await client.create(TOOLS, tool(namespace))
    await client.create(TOOLRUNS, toolrun(namespace, "stopme"))
    await wait_toolrun(client, namespace, "stopme", "Running")
    await client.get(JOBS, "stopme-job", namespace)
    await client.patch(
        TOOLRUNS, "stopme", {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}}, namespace=namespace
    )
    done = await wait_toolrun(client, namespace, "stopme", "Cancelled")
    assert done["status"]["finishedAt"]
    assert cond(done, "Failed")["reason"] == "Cancelled"
    assert cond(done, "Running")["status"] == "False"

    async def job_gone() -> bool:
        try:
            job = await client.get(JOBS, "stopme-job", namespace)
        except NotFoundError:
            return True
        return bool(job["metadata"].get("deletionTimestamp"))

    assert await eventually(job_gone, what="job deleted")

    async def announced() -> bool:
        return ("Normal", "Cancelled") in await events_for(client, namespace, "stopme")

    assert await eventually(announced, what="Cancelled event")


async def test_a_vanished_job_fails_the_run_after_the_grace(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    tuning = ControllerTuning(missing_job_grace_seconds=3.0, reference_grace_seconds=5.0)
    async with running_controller(envtest.kubeconfig, settings_for(namespace), tuning):
        await client.create(TOOLS, tool(namespace))
        await client.create(TOOLRUNS, toolrun(namespace, "lost"))

        async def observed() -> bool:
            obj = await get_obj(client, TOOLRUNS, namespace, "lost")
            return bool(((obj.get("status") or {}).get("runtimeRef") or {}).get("jobObservedAt"))

        await eventually(observed, what="jobObservedAt")
        await client.delete(JOBS, "lost-job", namespace, propagation_policy=PropagationPolicy.BACKGROUND)

        async def warned() -> dict[str, Any] | None:
            obj = await get_obj(client, TOOLRUNS, namespace, "lost")
            return obj if cond(obj, "Warning").get("reason") == "JobMissing" else None

        missing = await eventually(warned, what="JobMissing warning")
        assert missing["status"]["phase"] == "Running"
        assert missing["status"]["runtimeRef"]["jobMissingSince"]
        done = await wait_toolrun(client, namespace, "lost", "Failed", timeout=20)
        assert cond(done, "Failed")["reason"] == "JobMissing"
        jobs = await client.list(JOBS, namespace)
        assert jobs.items == []  # not recreated: the tool may have had effects already


async def test_a_restart_adopts_the_job_instead_of_duplicating_it(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    settings = settings_for(namespace)
    await client.create(TOOLS, tool(namespace))
    created = await client.create(TOOLRUNS, toolrun(namespace, "adopt"))
    # A controller that crashed after creating the Job and before writing the status left this Job behind.
    plan = build_toolrun_job(created, tool(namespace), settings).plan
    assert plan is not None
    left = await client.create(JOBS, plan.job)
    first = await ControllerProcess(envtest.kubeconfig, settings).start()
    obj = await wait_toolrun(client, namespace, "adopt", "Running")
    assert obj["status"]["jobRef"]["uid"] == left["metadata"]["uid"]
    await first.kill()
    # Killed mid-run; the next controller picks the run up where it was.
    async with running_controller(envtest.kubeconfig, settings):
        job = await get_obj(client, JOBS, namespace, "adopt-job")
        await finish_pod(client, namespace, job, message='{"ok": true}')
        await finish_job(client, namespace, "adopt-job", ok=True)
        done = await wait_toolrun(client, namespace, "adopt", "Succeeded")
        assert done["status"]["outputs"] == {"ok": True}
    jobs = await client.list(JOBS, namespace)
    assert [(j["metadata"]["name"], j["metadata"]["uid"]) for j in jobs.items] == [
        ("adopt-job", left["metadata"]["uid"])
    ]
