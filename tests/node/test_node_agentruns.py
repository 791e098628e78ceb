"""AgentRuns executed for real on the node: the controller's Job runs the provider's binary directly (`/bin/sh`
here, as the fake agent) in the jangar image (built without Docker by `scripts/build-image.sh`) or in the
seed's own sample image (busybox); the outcome, the exit code, the agent's outputs and its log come back to
the user."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS, SECRETBINDINGS
from jangar.dev.assets import repo_root
from jangar.dev.cluster import LocalCluster, kubectl_env
from jangar.dev.images import build_script_image
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import cond, running_controller, settings_for, wait_phase
from tests.node.jobs import default_service_account
from tests.support.commands import run_command
from tests.support.crds import install_crds
from tests.support.waiting import eventually

IMAGE_BASE = "local.jangar.dev/jangar"
TIMEOUT = 180.0  # a real container on two shared cores, the first start of a 100 MB image included


@pytest.fixture(scope="session")
def jangar_image_archive() -> tuple[str, Path]:
    """(reference, OCI archive) of the jangar image; cached by content hash, so built once per tree."""
    return build_script_image("--jangar")


_prepared: set[Path] = set()


@pytest.fixture
def jangar_node(
    node_cluster: LocalCluster, jangar_image_archive: tuple[str, Path]
) -> tuple[LocalCluster, str]:
    """The node cluster with the CRDs installed and the jangar image imported (once per cluster)."""
    ref, archive = jangar_image_archive
    if node_cluster.workdir not in _prepared:
        install_crds(node_cluster.kubeconfig)
        node_cluster.import_image(archive, IMAGE_BASE)
        _prepared.add(node_cluster.workdir)
    return node_cluster, ref


@pytest_asyncio.fixture
async def client(node_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(node_client, timeout=15, field_manager="test")


async def _basics(client: Client, node_client: k8s.ApiClient, ns: str, script: str) -> None:
    await default_service_account(k8s.CoreV1Api(node_client), ns)
    provider = {
        "metadata": {"name": "shell", "namespace": ns},
        "spec": {"binary": "/bin/sh", "argsTemplate": ["-c", script]},
    }
    await client.create(AGENTPROVIDERS, provider)
    agent = {"metadata": {"name": "coder", "namespace": ns}, "spec": {"providerRef": {"name": "shell"}}}
    await client.create(AGENTS, agent)
    impl = {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "Say hello."}}
    await client.create(IMPLEMENTATIONSPECS, impl)


def _run(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agentRef": {"name": "coder"},
        "implementationSpecRef": {"name": "task"},
        "runtime": {"type": "job"},
        "parameters": {"who": "the real node"},
    }
    body.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": body}


def _settings(ns: str, image: str) -> Any:
    return settings_for(ns, JANGAR_AGENT_RUNNER_IMAGE=image, JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY="Never")


async def _logs(cluster: LocalCluster, ns: str, name: str) -> str:
    done = await run_command(
        "jangar.agentctl", "--kubeconfig", str(cluster.kubeconfig), "-n", ns, "run", "logs", name
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_job_run_really_executes_the_agent_and_succeeds(
    jangar_node: tuple[LocalCluster, str], client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    cluster, image = jangar_node
    ns = node_namespace
    script = "echo hello from {{ parameters.who }}; test -s /workspace/run.json && echo spec mounted; id -u"
    await _basics(client, node_client, ns, script)
    async with running_controller(cluster.kubeconfig, _settings(ns, image)):
        await client.create(AGENTRUNS, _run(ns, "real"))
        done = await wait_phase(client, ns, "real", "Succeeded", "Failed", timeout=TIMEOUT)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Succeeded")["reason"] == "Completed"
    out = await _logs(cluster, ns, "real")
    assert "hello from the real node" in out
    assert "spec mounted" in out
    assert "10001" in out  # the image's non-root user


async def test_a_failing_agent_fails_the_run_with_its_exit_code(
    jangar_node: tuple[LocalCluster, str], client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    cluster, image = jangar_node
    ns = node_namespace
    await _basics(client, node_client, ns, "echo about to fail >&2; exit 7")
    async with running_controller(cluster.kubeconfig, _settings(ns, image)):
        await client.create(
            AGENTRUNS, _run(ns, "broken", runtime={"type": "job", "config": {"backoffLimit": 0}})
        )
        done = await wait_phase(client, ns, "broken", "Succeeded", "Failed", timeout=TIMEOUT)
    assert done["status"]["phase"] == "Failed"
    failed = cond(done, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded", failed
    # FallbackToLogsOnError: the kubelet kept the agent's last words as its termination message.
    assert "exited with code 7: about to fail" in failed["message"], failed
    assert done["status"]["runner"] == {"exitCode": 7, "reason": "Error", "message": "about to fail"}
    assert "about to fail" in await _logs(cluster, ns, "broken")


async def test_jangar_runner_wraps_an_agent_and_reports_its_outputs_and_artifacts(
    jangar_node: tuple[LocalCluster, str], client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    cluster, image = jangar_node
    ns = node_namespace
    await default_service_account(k8s.CoreV1Api(node_client), ns)
    script = 'echo patch > out.patch; echo "{\\"branch\\": \\"codex/{{ parameters.who }}\\"}" > "$AGENT_OUTPUTS_PATH"'
    provider = {
        "metadata": {"name": "wrapped", "namespace": ns},
        "spec": {
            "binary": "jangar-runner",
            "argsTemplate": ["--", "/bin/sh", "-c", script],
            "outputArtifacts": [{"name": "patch", "path": "/workspace/out.patch"}],
        },
    }
    await client.create(AGENTPROVIDERS, provider)
    agent = {"metadata": {"name": "coder", "namespace": ns}, "spec": {"providerRef": {"name": "wrapped"}}}
    await client.create(AGENTS, agent)
    await client.create(
        IMPLEMENTATIONSPECS, {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "x"}}
    )
    async with running_controller(cluster.kubeconfig, _settings(ns, image)):
        await client.create(AGENTRUNS, _run(ns, "wrapped", parameters={"who": "7"}))
        done = await wait_phase(client, ns, "wrapped", "Succeeded", "Failed", timeout=TIMEOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["runner"]["outputs"] == {"branch": "codex/7"}, done["status"]
    (patch,) = done["status"]["artifacts"]
    assert patch["name"] == "patch" and patch["present"] is True and patch["size"] == 6, patch
    assert "run wrapped: Succeeded (exit code 0)" in await _logs(cluster, ns, "wrapped")


async def test_the_documented_files_secrets_and_codex_auth_are_in_the_agents_container(
    node_cluster: LocalCluster, client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    """docs/scheduler.md's layout, seen from inside a real container (busybox, no jangar in the image): the
    run-spec ConfigMap (run.json, agent-runner.json), the rendered input file from the inputs ConfigMap, an
    allowed Secret through envFrom, and the Codex auth Secret mounted at CODEX_AUTH under CODEX_HOME."""
    install_crds(node_cluster.kubeconfig)
    ns = node_namespace
    core = k8s.CoreV1Api(node_client)
    await default_service_account(core, ns)
    for name, data in (
        ("agent-token", {"TOKEN": "s3cr3t-token"}),
        ("codex-auth", {"auth.json": '{"auth": "ok"}'}),
    ):
        await core.create_namespaced_secret(ns, {"metadata": {"name": name}, "stringData": data})
    script = (
        'grep -q \'"name": "files"\' /workspace/run.json && echo run-spec-ok; '
        "grep -q binary /workspace/agent-runner.json && echo runner-spec-ok; "
        'cat /workspace/task.md; echo; echo "token=$TOKEN"; cat "$CODEX_AUTH"; echo; '
        'echo "home=$CODEX_HOME"; touch "$CODEX_HOME/writable" && echo home-writable'
    )
    provider = {
        "metadata": {"name": "shell", "namespace": ns},
        "spec": {
            "binary": "/bin/sh",
            "argsTemplate": ["-c", script],
            "inputFiles": [{"path": "/workspace/task.md", "content": "Task for {{parameters.who}}"}],
        },
    }
    await client.create(AGENTPROVIDERS, provider)
    agent = {"metadata": {"name": "coder", "namespace": ns}, "spec": {"providerRef": {"name": "shell"}}}
    await client.create(AGENTS, agent)
    await client.create(
        IMPLEMENTATIONSPECS, {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "x"}}
    )
    binding = {
        "metadata": {"name": "coder-secrets", "namespace": ns},
        "spec": {"subjects": [{"kind": "Agent", "name": "coder"}], "allowedSecrets": ["agent-token"]},
    }
    await client.create(SECRETBINDINGS, binding)
    settings = settings_for(
        ns,
        JANGAR_AGENT_RUNNER_IMAGE="local.jangar.dev/busybox:1",
        JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY="Never",
        JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME="codex-auth",
    )
    async with running_controller(node_cluster.kubeconfig, settings):
        await client.create(AGENTRUNS, _run(ns, "files", secrets=["agent-token"]))
        done = await wait_phase(client, ns, "files", "Succeeded", "Failed", timeout=TIMEOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    out = await _logs(node_cluster, ns, "files")
    for expected in (
        "run-spec-ok",
        "runner-spec-ok",
        "Task for the real node",
        "token=s3cr3t-token",
        '{"auth": "ok"}',
        "home=/root/.codex",
        "home-writable",
    ):
        assert expected in out, out


def _apply(cluster: LocalCluster, kubectl: Path, ns: str, path: Path) -> None:
    applied = subprocess.run(
        [str(kubectl), "-n", ns, "apply", "-f", str(path)],
        env=kubectl_env(cluster),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr


async def test_the_seeds_smoke_sample_runs_unedited_in_its_busybox_image(
    node_cluster: LocalCluster,
    client: Client,
    node_client: k8s.ApiClient,
    node_namespace: str,
    kubectl_bin: Path,
) -> None:
    """charts/agents/examples/*-smoke.yaml, as a user applies them: a workflow of two steps in busybox:1.36
    whose provider is `/bin/sh -c 'echo ...'`, under the chart's default pull policy (IfNotPresent)."""
    install_crds(node_cluster.kubeconfig)
    ns = node_namespace
    await default_service_account(k8s.CoreV1Api(node_client), ns)
    examples = repo_root() / "charts" / "agents" / "examples"
    for sample in ("agentprovider-smoke", "agent-smoke", "implementationspec-smoke"):
        _apply(node_cluster, kubectl_bin, ns, examples / f"{sample}.yaml")
    settings = settings_for(ns, JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY="IfNotPresent")
    async with running_controller(node_cluster.kubeconfig, settings):
        _apply(node_cluster, kubectl_bin, ns, examples / "agentrun-workflow-smoke.yaml")
        done = await wait_phase(client, ns, "agents-workflow-smoke", "Succeeded", "Failed", timeout=TIMEOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert [s["phase"] for s in done["status"]["workflow"]["steps"]] == ["Succeeded", "Succeeded"]
    assert "smoke stage implement" in await _logs(node_cluster, ns, "agents-workflow-smoke")


async def test_a_workflow_runs_each_step_as_a_real_container(
    jangar_node: tuple[LocalCluster, str], client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    cluster, image = jangar_node
    ns = node_namespace
    await _basics(client, node_client, ns, "echo step {{ parameters.stage }} of {{ agentRun.name }}")
    steps = [
        {"name": "plan", "parameters": {"stage": "plan"}},
        {"name": "build", "parameters": {"stage": "build"}},
    ]
    async with running_controller(cluster.kubeconfig, _settings(ns, image)):
        await client.create(
            AGENTRUNS, _run(ns, "flow", runtime={"type": "workflow"}, workflow={"steps": steps})
        )
        done = await wait_phase(client, ns, "flow", "Succeeded", "Failed", timeout=TIMEOUT)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert [s["phase"] for s in done["status"]["workflow"]["steps"]] == ["Succeeded", "Succeeded"]
    # `run logs` reads the newest pod: the last step's.
    assert "step build" in await _logs(cluster, ns, "flow")


async def test_logs_follow_the_agent_until_it_ends(
    jangar_node: tuple[LocalCluster, str], client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    cluster, image = jangar_node
    ns = node_namespace
    await _basics(client, node_client, ns, "echo first line; sleep 8; echo last line")
    async with running_controller(cluster.kubeconfig, _settings(ns, image)):
        await client.create(AGENTRUNS, _run(ns, "chatty"))
        core = k8s.CoreV1Api(node_client)

        async def pod_running() -> bool:
            pods = await core.list_namespaced_pod(ns, label_selector="agents.proompteng.ai/agent-run=chatty")
            return any(p.status.phase == "Running" for p in pods.items)

        await eventually(pod_running, timeout=TIMEOUT, what="the agent's pod Running")
        followed = await run_command(
            "jangar.agentctl",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "-n",
            ns,
            "run",
            "logs",
            "chatty",
            "-f",
        )
        assert followed.returncode == 0, followed.stderr
        # -f returned only once the container ended, so it saw the line printed 8 s after the first.
        assert "first line" in followed.stdout and "last line" in followed.stdout
        done = await wait_phase(client, ns, "chatty", "Succeeded", "Failed", timeout=TIMEOUT)
    assert done["status"]["phase"] == "Succeeded"
