"""agentctl's kubectl-style verbs (issue 13 item 4) as processes against a real API server, each in kube
mode (the kubeconfig) and in gRPC mode (`--server` to jangar's gRPC API, as `jangar serve` builds it):
get/list (also -A), describe (Jobs, Pods, Events), wait --for, watch, cancel, delete, retry/resubmit and
logs --step, the same in both modes, and bad input (exit 2)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from jangar.api.contract import (
    ANNOTATION_CANCEL,
    ANNOTATION_RETRY_VERB,
    LABEL_ORCHESTRATION_RUN,
    LABEL_RETRY_OF,
    LABEL_RUN,
    LABEL_STEP,
)
from jangar.api.refs import AGENTRUNS, MEMORIES, ORCHESTRATIONRUNS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from jangar.runtime.resources import EVENTS, JOBS, PODS
from tests.envtest.controllers_fixtures import run
from tests.envtest.test_grpc import TOKEN, _serve
from tests.support.commands import Completed, run_command

Ctl = Callable[..., Awaitable[Completed]]


@pytest_asyncio.fixture(params=["kube", "grpc"])
async def ctl(request: Any, envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[Ctl]:
    """`agentctl -n NS VERB ...` as a process, in the mode of the parameter; `ctl.mode` names it and
    `ctl.argv` is the command line prefix (for the watch test's long-running process)."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "kube":
            prefix = ["--kubeconfig", str(envtest_crds.kubeconfig)]
        else:
            running = await stack.enter_async_context(_serve(envtest_crds, namespace, {}, controllers=False))
            prefix = ["--server", running.address]
        prefix += ["-n", namespace]

        async def call(*args: str) -> Completed:
            done = await run_command("jangar.agentctl", *prefix, *args, env={"AGENTCTL_TOKEN": TOKEN})
            if os.environ.get("AGENTCTL_TRANSCRIPT"):  # docs/agentctl.md's examples come from here
                with open(os.environ["AGENTCTL_TRANSCRIPT"], "a") as out:
                    out.write(f"$ agentctl [{request.param}] {' '.join(args)}\n{done.stdout}{done.stderr}")
                    out.write(f"[exit {done.returncode}]\n\n")
            return done

        call.mode = request.param  # type: ignore[attr-defined]
        call.argv = prefix  # type: ignore[attr-defined]
        yield call


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


async def make_run(
    client: Client, ns: str, name: str, phase: str | None = None, *conds: dict[str, str], **meta: Any
) -> dict[str, Any]:
    body = run(ns, name)
    body["metadata"].update(meta)
    created = await client.create(AGENTRUNS, body)
    if phase:
        status = {"phase": phase, "conditions": list(conds)}
        await client.patch_status(AGENTRUNS, name, {"status": status}, namespace=ns)
    return created


async def test_get_and_list(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(client, namespace, "r1", "Running", labels={"team": "a"})
    await make_run(client, namespace, "r2", "Failed", cond("Failed", "True", "BackoffLimitExceeded", "boom"))

    done = await ctl("get", "ar")
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0].split()[:2] == ["NAME", "PHASE"] and [line.split()[:2] for line in lines[1:]] == [
        ["r1", "Running"],
        ["r2", "Failed"],
    ]
    done = await ctl("list", "agentruns", "-l", "team=a", "-o", "name")
    assert (done.returncode, done.stdout.split()) == (0, ["agentruns.agents.proompteng.ai/r1"]), done.stderr
    done = await ctl("get", "AgentRun", "r2", "-o", "json")
    obj = json.loads(done.stdout)
    assert (obj["kind"], obj["status"]["phase"]) == ("AgentRun", "Failed")
    assert "managedFields" not in obj["metadata"]
    done = await ctl("get", "ar", "ghost")
    assert done.returncode == 1 and 'agentruns.agents.proompteng.ai "ghost" not found' in done.stderr
    # bad input exits 2 before anything is contacted, in both modes
    done = await ctl("get", "agentrn")
    assert done.returncode == 2 and "did you mean 'agentrun'?" in done.stderr
    done = await ctl("get", "ar", "-l", "team in (a")
    assert done.returncode == 2 and "bad label selector" in done.stderr
    done = await ctl("get", "ar", "-o", "xml")
    assert done.returncode == 2 and "invalid choice: 'xml'" in done.stderr
    # -A: every namespace (kube mode: the whole shared envtest cluster, where other tests' runs live too;
    # gRPC mode: every namespace the server manages, here this one), so only this namespace's rows are compared
    done = await ctl("get", "ar", "-A")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = [line.split()[:2] for line in lines[1:]]
    assert [row for row in rows if row[0] == namespace] == [[namespace, "r1"], [namespace, "r2"]]
    if ctl.mode == "grpc":  # type: ignore[attr-defined]
        assert {row[0] for row in rows} == {namespace}
    done = await ctl("list", "ar", "-A", "-l", "team=a", "-o", "wide")
    assert done.returncode == 0, done.stderr
    mine = [line.split()[:2] for line in done.stdout.splitlines()[1:] if line.split()[0] == namespace]
    assert mine == [[namespace, "r1"]]


async def test_describe_a_run_with_its_job_pods_and_events(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(
        client, namespace, "d1", "Failed", cond("Failed", "True", "BackoffLimitExceeded", "exit code 3")
    )
    await client.create(
        JOBS,
        {
            "metadata": {"name": "d1-job", "labels": {LABEL_RUN: "d1"}},
            "spec": {
                "template": {
                    "metadata": {"labels": {LABEL_RUN: "d1"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "agent-runner", "image": "x"}],
                    },
                }
            },
        },
        namespace=namespace,
    )
    await client.create(
        PODS,
        {
            "metadata": {"name": "d1-job-abcde", "labels": {LABEL_RUN: "d1"}},
            "spec": {"containers": [{"name": "agent-runner", "image": "x"}]},
        },
        namespace=namespace,
    )
    terminated = {"terminated": {"exitCode": 3, "reason": "Error"}}
    await client.patch_status(
        PODS,
        "d1-job-abcde",
        {
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "agent-runner",
                        "image": "x",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": terminated,
                    }
                ],
            }
        },
        namespace=namespace,
    )
    await client.create(
        EVENTS,
        {
            "metadata": {"name": "d1.1"},
            "involvedObject": {"kind": "AgentRun", "name": "d1", "namespace": namespace},
            "reason": "JobFailed",
            "message": "the agent exited 3",
            "type": "Warning",
            "source": {"component": "agents-controller"},
            "lastTimestamp": "2026-01-01T00:00:00Z",
        },
        namespace=namespace,
    )

    done = await ctl("describe", "ar", "d1")
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Name:         d1" in out and "agentRef:" in out and "phase:  Failed" in out
    condition = next(line for line in out.splitlines() if line.strip().startswith("Failed "))
    assert condition.split()[:3] == ["Failed", "True", "BackoffLimitExceeded"] and "exit code 3" in condition
    # both modes: the gRPC server lists the same Jobs, Pods and Events (DescribeResource)
    assert "Jobs:" in out and "d1-job" in out
    pod = next(line for line in out.splitlines() if "d1-job-abcde" in line)
    assert pod.split()[1:] == ["Failed", "<none>", "agent-runner=3"]
    event = next(line for line in out.splitlines() if "JobFailed" in line)
    assert event.split()[0] == "Warning" and "agents-controller" in event and "exited 3" in event
    done = await ctl("describe", "ar", "ghost")
    assert done.returncode == 1 and "not found" in done.stderr


async def test_describe_an_orchestration_run_lists_its_step_runs(
    envtest_crds: LocalCluster, client: Client, namespace: str
) -> None:
    await client.create(
        ORCHESTRATIONRUNS,
        {"metadata": {"name": "o1", "namespace": namespace}, "spec": {"orchestrationRef": {"name": "flow"}}},
    )
    await make_run(client, namespace, "o1-build", "Running", labels={LABEL_ORCHESTRATION_RUN: "o1"})
    done = await run_command(
        "jangar.agentctl",
        "--kubeconfig",
        str(envtest_crds.kubeconfig),
        "-n",
        namespace,
        "describe",
        "orchrun",
        "o1",
    )
    assert done.returncode == 0, done.stderr
    if os.environ.get("AGENTCTL_TRANSCRIPT"):
        with open(os.environ["AGENTCTL_TRANSCRIPT"], "a") as out:
            out.write(f"$ agentctl [kube] describe orchrun o1\n{done.stdout}[exit 0]\n\n")
    step = next(line for line in done.stdout.splitlines() if "o1-build" in line)
    assert "Step runs:" in done.stdout and step.split()[:3] == ["AgentRun", "o1-build", "Running"]


async def test_wait_for_condition_phase_and_delete(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(client, namespace, "w1")
    done = await ctl("wait", "ar", "w1", "--for=condition=Succeeded", "--timeout=1s")
    assert done.returncode == 1
    assert "timed out waiting for the condition Succeeded=True on agentruns/w1" in done.stderr

    async def succeed() -> None:  # while the wait below starts or polls (unit tests cover the polling)
        status = {"phase": "Succeeded", "conditions": [cond("Succeeded", "True", "Completed")]}
        await client.patch_status(AGENTRUNS, "w1", {"status": status}, namespace=namespace)

    task = asyncio.create_task(succeed())
    done = await ctl("wait", "agentrun", "w1", "--for", "condition=Succeeded", "--timeout", "2m")
    await task
    assert (done.returncode, done.stdout.strip()) == (0, "agentrun.agents.proompteng.ai/w1 condition met")
    done = await ctl("wait", "ar", "w1", "--for=phase=succeeded")
    assert done.returncode == 0, done.stderr
    done = await ctl("wait", "ar", "w1", "--for=condition=Succeeded=False", "--timeout=1s")
    assert done.returncode == 1
    done = await ctl("wait", "ar", "ghost", "--for=phase=Succeeded")
    assert done.returncode == 1 and "not found" in done.stderr
    done = await ctl("wait", "ar", "w1", "--for=phase", "--timeout=1s")
    assert done.returncode == 2 and "bad --for" in done.stderr
    done = await ctl("wait", "ar", "w1", "--for=delete", "--timeout=soon")
    assert done.returncode == 2 and "bad duration" in done.stderr
    await client.delete(AGENTRUNS, "w1", namespace)
    done = await ctl("wait", "ar", "w1", "--for=delete", "--timeout=1m")
    assert (done.returncode, done.stdout.strip()) == (0, "agentrun.agents.proompteng.ai/w1 deleted"), (
        done.stderr
    )


async def test_watch_prints_a_row_per_change(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(client, namespace, "v1", "Pending")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jangar.agentctl",
        *ctl.argv,  # type: ignore[attr-defined]
        "watch",
        "ar",
        "--timeout",
        "10m",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "AGENTCTL_TOKEN": TOKEN},
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []

        async def line() -> str:
            text = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()  # type: ignore[union-attr]
            lines.append(text)
            return text

        assert (await line()).split()[:2] == ["NAME", "PHASE"]
        assert (await line()).split()[:2] == ["v1", "Pending"]
        await client.patch_status(AGENTRUNS, "v1", {"status": {"phase": "Running"}}, namespace=namespace)
        assert (await line()).split()[:2] == ["v1", "Running"]
        await make_run(client, namespace, "v2", "Pending")
        assert (await line()).split()[:2] == ["v2", "Pending"]
    finally:
        proc.terminate()
        await proc.wait()
    if os.environ.get("AGENTCTL_TRANSCRIPT"):
        with open(os.environ["AGENTCTL_TRANSCRIPT"], "a") as out:
            out.write(f"$ agentctl [{ctl.mode}] watch ar\n{''.join(lines)}^C\n\n")  # type: ignore[attr-defined]


async def test_cancel_and_delete(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(client, namespace, "c1", "Running")
    await make_run(client, namespace, "c2", "Succeeded")
    done = await ctl("cancel", "ar", "c1", "c2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "agentrun.agents.proompteng.ai/c1 cancel requested",
        "agentrun.agents.proompteng.ai/c2 already Succeeded",
    ]
    annotations = (await client.get(AGENTRUNS, "c1", namespace))["metadata"].get("annotations") or {}
    assert ANNOTATION_CANCEL in annotations
    assert ANNOTATION_CANCEL not in (
        (await client.get(AGENTRUNS, "c2", namespace))["metadata"].get("annotations") or {}
    )
    done = await ctl("cancel", "memory", "m")
    assert done.returncode == 2 and "cancel applies to runs" in done.stderr
    done = await ctl("cancel", "ar", "ghost")
    assert done.returncode == 1 and "not found" in done.stderr

    await client.create(
        MEMORIES,
        {"metadata": {"name": "m1"}, "spec": {"type": "redis", "connection": {"secretRef": {"name": "s"}}}},
        namespace=namespace,
    )
    done = await ctl("delete", "mem", "m1", "ghost")
    assert done.returncode == 1 and 'memories.agents.proompteng.ai "ghost" not found' in done.stderr
    assert done.stdout.strip() == 'memory.agents.proompteng.ai "m1" deleted'
    with pytest.raises(NotFoundError):
        await client.get(MEMORIES, "m1", namespace)


async def test_retry_and_resubmit(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(
        client,
        namespace,
        "f1",
        "Failed",
        cond("Failed", "True", "BackoffLimitExceeded"),
        labels={"team": "a"},
        annotations={ANNOTATION_CANCEL: "true", "note": "keep"},
    )
    await client.patch(AGENTRUNS, "f1", {"spec": {"idempotencyKey": "k-1"}}, namespace=namespace)
    await make_run(client, namespace, "s1", "Succeeded")

    done = await ctl("retry", "f1", "--name", "f1-again")
    assert (done.returncode, done.stdout.strip()) == (
        0,
        "agentrun.agents.proompteng.ai/f1-again created (retry of f1)",
    ), done.stderr
    new = await client.get(AGENTRUNS, "f1-again", namespace)
    old = await client.get(AGENTRUNS, "f1", namespace)
    assert new["spec"] == {k: v for k, v in old["spec"].items() if k != "idempotencyKey"}
    assert new["metadata"]["labels"] == {"team": "a", LABEL_RETRY_OF: "f1"}
    assert new["metadata"]["annotations"] == {"note": "keep", ANNOTATION_RETRY_VERB: "retry"}
    assert "status" not in new or not (new.get("status") or {}).get("phase")

    done = await ctl("retry", "s1")
    assert done.returncode == 1 and "is Succeeded: retry is for a run that failed" in done.stderr
    done = await ctl("resubmit", "s1", "-o", "name")
    assert done.returncode == 0, done.stderr
    name = done.stdout.strip().rsplit("/", 1)[1]
    assert name.startswith("s1-r") and len(name) == len("s1-r") + 5
    fresh = await client.get(AGENTRUNS, name, namespace)
    assert fresh["metadata"]["labels"][LABEL_RETRY_OF] == "s1"
    done = await ctl("retry", "ghost")
    assert done.returncode == 1 and "not found" in done.stderr


async def test_logs_of_a_workflow_step(ctl: Ctl, client: Client, namespace: str) -> None:
    await make_run(client, namespace, "l1", "Running")
    for step in ("plan", "build"):
        await client.create(
            PODS,
            {
                "metadata": {"name": f"l1-{step}", "labels": {LABEL_RUN: "l1", LABEL_STEP: step}},
                "spec": {"containers": [{"name": "agent-runner", "image": "x"}]},
            },
            namespace=namespace,
        )
    # both modes (gRPC: StreamAgentRunLogsRequest.step). No kubelet here: the API server answers an
    # empty log, so success proves the pod was found.
    done = await ctl("logs", "l1", "--step", "build", "-c", "agent-runner")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    done = await ctl("logs", "l1", "--step", "build", "-c", "nope")
    assert done.returncode == 1 and "nope" in done.stderr
    done = await ctl("logs", "l1", "--step", "deploy")
    assert done.returncode == 1 and "no pods for step 'deploy' of AgentRun l1" in done.stderr
    done = await ctl("logs", "l1", "-c", "agent-runner")
    assert done.returncode == 0, done.stderr
    done = await ctl("logs", "ghost")
    assert done.returncode == 1 and "not found" in done.stderr
    done = await ctl("logs", "memory/m")
    assert done.returncode == 2 and "logs are a run's" in done.stderr
