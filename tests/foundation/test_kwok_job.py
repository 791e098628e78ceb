"""The kwok tier works: a Job's Pod is scheduled onto a fake node, runs, and the Job completes."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio import client as k8s

pytestmark = pytest.mark.kwok


async def test_job_pod_scheduled_and_job_completes(kwok_client: k8s.ApiClient, kwok_namespace: str) -> None:
    batch = k8s.BatchV1Api(kwok_client)
    core = k8s.CoreV1Api(kwok_client)
    # The service-account controller must have created `default` before a Pod can be admitted.
    for _ in range(100):
        try:
            await core.read_namespaced_service_account("default", kwok_namespace)
            break
        except k8s.ApiException:
            await asyncio.sleep(0.1)
    job = k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name="hello"),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(
                    restart_policy="Never",
                    containers=[k8s.V1Container(name="main", image="busybox", command=["true"])],
                )
            ),
        ),
    )
    await batch.create_namespaced_job(kwok_namespace, job)
    for _ in range(600):
        current = await batch.read_namespaced_job_status("hello", kwok_namespace)
        conditions = {c.type: c.status for c in (current.status.conditions or [])}
        if conditions.get("Complete") == "True":
            break
        assert conditions.get("Failed") != "True", current.status
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"Job never completed: {current.status}")
    assert current.status.succeeded == 1
    pods = await core.list_namespaced_pod(kwok_namespace, label_selector="job-name=hello")
    assert len(pods.items) == 1
    pod = pods.items[0]
    assert pod.spec.node_name and pod.spec.node_name.startswith("kwok-node-")
    assert pod.status.phase == "Succeeded"
