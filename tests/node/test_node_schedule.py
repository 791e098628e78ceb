"""A Schedule fires for real: its CronJob's pod runs `jangar schedule fire` from the jangar image on the node,
in-cluster (its ServiceAccount token, the `kubernetes` Service through kube-proxy), creates the tick's AgentRun
from the template, and that run's agent runs in a real container to Succeeded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.api.refs import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS, SCHEDULES
from jangar.dev.cluster import LocalCluster
from jangar.dev.images import build_script_image
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import running_controller, settings_for
from tests.node.jobs import default_service_account
from tests.support.crds import install_crds
from tests.support.waiting import eventually

BUSYBOX = "local.jangar.dev/busybox:1"
RUNNER_SA = "schedule-runner"


@pytest_asyncio.fixture
async def client(node_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(node_client, timeout=15, field_manager="test")


async def _runner_rbac(node_client: k8s.ApiClient, ns: str) -> None:
    """What the chart's schedule-rbac.yaml grants `runtime.scheduleServiceAccount`."""
    await k8s.CoreV1Api(node_client).create_namespaced_service_account(ns, {"metadata": {"name": RUNNER_SA}})
    rbac = k8s.RbacAuthorizationV1Api(node_client)
    rules = [
        {"apiGroups": ["schedules.proompteng.ai"], "resources": ["schedules"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]},
        {"apiGroups": ["agents.proompteng.ai"], "resources": ["agentruns"], "verbs": ["get", "create"]},
    ]
    await rbac.create_namespaced_role(ns, {"metadata": {"name": RUNNER_SA}, "rules": rules})
    binding = {
        "metadata": {"name": RUNNER_SA},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RUNNER_SA},
        "subjects": [{"kind": "ServiceAccount", "name": RUNNER_SA, "namespace": ns}],
    }
    await rbac.create_namespaced_role_binding(ns, binding)


async def _diagnose(client: Client, node_client: k8s.ApiClient, ns: str) -> str:
    """What happened along the path: the Schedule's status, the CronJob, its Jobs and Pods, the fire log."""
    lines = [f"schedule status: {(await client.get(SCHEDULES, 'every-minute', ns)).get('status')}"]
    batch, core = k8s.BatchV1Api(node_client), k8s.CoreV1Api(node_client)
    for cron in (await batch.list_namespaced_cron_job(ns)).items:
        lines.append(f"cronjob {cron.metadata.name}: last schedule {cron.status.last_schedule_time}")
    for job in (await batch.list_namespaced_job(ns)).items:
        lines.append(f"job {job.metadata.name}: {job.status.conditions}")
    for pod in (await core.list_namespaced_pod(ns)).items:
        lines.append(f"pod {pod.metadata.name}: {pod.status.phase} {pod.status.container_statuses}")
        if pod.metadata.name.startswith("every-minute"):
            try:
                lines.append(await core.read_namespaced_pod_log(pod.metadata.name, ns, tail_lines=30))
            except k8s.ApiException as exc:
                lines.append(f"  no log: {exc.reason}")
    runs = (await client.list(AGENTRUNS, namespace=ns)).items
    lines += [f"run {r['metadata']['name']}: {(r.get('status') or {}).get('phase')}" for r in runs]
    return "\n".join(lines)


async def test_a_schedule_fires_in_a_real_pod_and_its_run_succeeds(
    node_cluster: LocalCluster, client: Client, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    install_crds(node_cluster.kubeconfig)
    ns = node_namespace
    await default_service_account(k8s.CoreV1Api(node_client), ns)
    await _runner_rbac(node_client, ns)
    image, archive = build_script_image("--jangar")
    node_cluster.import_image(archive, image.rsplit(":", 1)[0])

    provider = {
        "metadata": {"name": "shell", "namespace": ns},
        "spec": {"binary": "/bin/sh", "argsTemplate": ["-c", "echo scheduled run of {{agentRun.name}}"]},
    }
    await client.create(AGENTPROVIDERS, provider)
    await client.create(
        AGENTS, {"metadata": {"name": "coder", "namespace": ns}, "spec": {"providerRef": {"name": "shell"}}}
    )
    await client.create(
        IMPLEMENTATIONSPECS, {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "x"}}
    )
    template: dict[str, Any] = {
        "metadata": {"name": "nightly", "namespace": ns},
        "spec": {
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "runtime": {"type": "job"},
        },
    }
    settings = settings_for(
        ns,
        JANGAR_AGENT_RUNNER_IMAGE=BUSYBOX,
        JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY="Never",
        JANGAR_SCHEDULE_RUNNER_IMAGE=image,
        JANGAR_SCHEDULE_SERVICE_ACCOUNT=RUNNER_SA,
    )
    async with running_controller(node_cluster.kubeconfig, settings):
        await client.create(AGENTRUNS, template)
        schedule = {
            "metadata": {"name": "every-minute", "namespace": ns},
            "spec": {
                "cron": "* * * * *",
                "timezone": "UTC",
                "targetRef": {"kind": "AgentRun", "name": "nightly"},
            },
        }
        await client.create(SCHEDULES, schedule)

        async def scheduled_run() -> dict[str, Any] | None:
            runs = (await client.list(AGENTRUNS, namespace=ns)).items
            fired = [r for r in runs if r["metadata"]["name"].startswith("every-minute-")]
            done = [r for r in fired if (r.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
            return done[0] if done else None

        # the next minute boundary, the CronJob controller's tick, a pod start, the run: well under 3 min
        try:
            run = await eventually(scheduled_run, timeout=240, what="the scheduled AgentRun to finish")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{await _diagnose(client, node_client, ns)}") from None
        assert run["status"]["phase"] == "Succeeded", run["status"]
        assert run["spec"].get("idempotencyKey", "").startswith(f"schedule:{ns}/every-minute@"), run["spec"]
        status = (await client.get(SCHEDULES, "every-minute", ns))["status"]
        assert status.get("lastRunTime"), status
