"""`agentctl run logs` in kube mode against a real API server (no kubelet here: the node tier shows real
output; this proves the pod lookup, the errors and the exit codes)."""

from __future__ import annotations

from pathlib import Path

from jangar.api.contract import LABEL_RUN
from jangar.controllers.kinds import AGENTRUNS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from jangar.runtime.resources import PODS
from tests.envtest.controllers_fixtures import run
from tests.support.commands import run_command


async def agentctl(kubeconfig: Path, namespace: str, *args: str) -> tuple[int, str, str]:
    done = await run_command(
        "jangar.agentctl", "--kubeconfig", str(kubeconfig), "-n", namespace, "run", "logs", *args
    )
    return done.returncode, done.stdout, done.stderr


async def test_logs_of_a_missing_run_and_of_a_run_without_pods(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    code, _, err = await agentctl(envtest.kubeconfig, namespace, "ghost")
    assert code == 1 and "not found" in err
    await client.create(AGENTRUNS, run(namespace, "quiet"))
    code, out, err = await agentctl(envtest.kubeconfig, namespace, "quiet")
    assert (code, out) == (1, "") and "no pods for AgentRun quiet" in err


async def test_logs_find_the_runs_pod_by_its_label(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    await client.create(AGENTRUNS, run(namespace, "labelled"))
    pod = {
        "metadata": {"name": "labelled-pod", "labels": {LABEL_RUN: "labelled"}},
        "spec": {"containers": [{"name": "agent-runner", "image": "busybox"}]},
    }
    await client.create(PODS, pod, namespace=namespace)
    # No node: the API server answers an empty log, so the command prints nothing and succeeds.
    code, out, err = await agentctl(envtest.kubeconfig, namespace, "labelled", "--tail", "5")
    assert (code, out) == (0, ""), err
    code, _, err = await agentctl(envtest.kubeconfig, namespace, "labelled", "-c", "nope")
    assert code == 1 and "nope" in err
