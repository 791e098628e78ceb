"""The kwok tier works: a Job's Pod is scheduled onto a fake node, runs, and the Job completes."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio import client as k8s

from tests.support.waiting import eventually


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


async def _job_outcome(batch: k8s.BatchV1Api, namespace: str, name: str) -> dict[str, str]:
    for _ in range(600):
        current = await batch.read_namespaced_job_status(name, namespace)
        conditions = {c.type: c.status for c in (current.status.conditions or [])}
        if conditions.get("Complete") == "True" or conditions.get("Failed") == "True":
            return conditions
        await asyncio.sleep(0.1)
    pytest.fail(f"Job {name} never finished")


def _job(name: str, image: str) -> k8s.V1Job:
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(
                    restart_policy="Never", containers=[k8s.V1Container(name="main", image=image)]
                )
            ),
        ),
    )


async def test_reserved_fail_image_fails_the_job(kwok_client: k8s.ApiClient, kwok_namespace: str) -> None:
    from jangar.dev.kwok_stages import FAIL_IMAGE

    batch = k8s.BatchV1Api(kwok_client)
    await _wait_default_sa(kwok_client, kwok_namespace)
    await batch.create_namespaced_job(kwok_namespace, _job("doomed", FAIL_IMAGE))
    conditions = await _job_outcome(batch, kwok_namespace, "doomed")
    assert conditions.get("Failed") == "True"
    pods = await k8s.CoreV1Api(kwok_client).list_namespaced_pod(
        kwok_namespace, label_selector="job-name=doomed"
    )
    terminated = pods.items[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 1
    assert pods.items[0].status.phase == "Failed"


async def test_reserved_pull_backoff_image_waits(kwok_client: k8s.ApiClient, kwok_namespace: str) -> None:
    from jangar.dev.kwok_stages import PULL_BACKOFF_IMAGE

    core = k8s.CoreV1Api(kwok_client)
    await _wait_default_sa(kwok_client, kwok_namespace)
    await k8s.BatchV1Api(kwok_client).create_namespaced_job(kwok_namespace, _job("stuck", PULL_BACKOFF_IMAGE))
    for _ in range(300):
        pods = await core.list_namespaced_pod(kwok_namespace, label_selector="job-name=stuck")
        statuses = pods.items[0].status.container_statuses if pods.items else None
        if statuses and statuses[0].state.waiting:
            assert statuses[0].state.waiting.reason == "ImagePullBackOff"
            assert pods.items[0].status.phase == "Pending"
            return
        await asyncio.sleep(0.1)
    pytest.fail("pod never reported ImagePullBackOff")


async def _wait_default_sa(api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    await eventually(
        lambda: core.read_namespaced_service_account("default", namespace),
        interval=0.1,
        ignoring=(k8s.ApiException,),
        what=f"the default ServiceAccount in {namespace}",
    )
