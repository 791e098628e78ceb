"""Job helpers for the node tier: a busybox Job, waiting for its outcome, its pod and its log."""

from __future__ import annotations

import time
from typing import Any

from kubernetes_asyncio import client as k8s

from jangar.dev.images import BUSYBOX_IMAGE
from tests.support.waiting import eventually

# Generous: two shared cores, other test sessions beside this one.
FINISH_TIMEOUT = 120.0


def busybox_job(
    name: str,
    script: str,
    *,
    deadline: int | None = None,
    memory: str | None = None,
    volumes: list[k8s.V1Volume] | None = None,
    mounts: list[k8s.V1VolumeMount] | None = None,
    env_from: list[k8s.V1EnvFromSource] | None = None,
) -> k8s.V1Job:
    resources = None
    if memory:
        limits = {"memory": memory, "cpu": "100m"}
        resources = k8s.V1ResourceRequirements(requests=limits, limits=limits)
    container = k8s.V1Container(
        name="main",
        image=BUSYBOX_IMAGE,
        image_pull_policy="Never",  # imported with ctr; there is no registry
        command=["/bin/sh", "-c", script],
        resources=resources,
        volume_mounts=mounts,
        env_from=env_from,
    )
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=deadline,
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(
                    restart_policy="Never",
                    termination_grace_period_seconds=1,
                    containers=[container],
                    volumes=volumes,
                )
            ),
        ),
    )


async def default_service_account(core: k8s.CoreV1Api, namespace: str) -> None:
    """ServiceAccount admission rejects pods until the controller created `default`."""
    await eventually(
        lambda: core.read_namespaced_service_account("default", namespace),
        60,
        interval=0.2,
        what=f"ServiceAccount default in {namespace}",
        ignoring=(k8s.ApiException,),
    )


async def run_job(api: k8s.ApiClient, namespace: str, job: k8s.V1Job) -> tuple[dict[str, Any], float]:
    """Create the Job and wait until it is Complete or Failed: (its conditions by type, seconds taken)."""
    batch, core = k8s.BatchV1Api(api), k8s.CoreV1Api(api)
    await default_service_account(core, namespace)
    started = time.monotonic()
    await batch.create_namespaced_job(namespace, job)

    async def finished() -> dict[str, Any] | None:
        current = await batch.read_namespaced_job_status(job.metadata.name, namespace)
        conditions = {c.type: c for c in (current.status.conditions or []) if c.status == "True"}
        return conditions if {"Complete", "Failed"} & conditions.keys() else None

    conditions = await eventually(
        finished, FINISH_TIMEOUT, interval=0.2, what=f"Job {job.metadata.name} Complete or Failed"
    )
    return conditions, round(time.monotonic() - started, 2)


async def start_job(api: k8s.ApiClient, namespace: str, job: k8s.V1Job) -> None:
    """Create the Job and wait until its pod runs (not until it finishes)."""
    core, batch = k8s.CoreV1Api(api), k8s.BatchV1Api(api)
    await default_service_account(core, namespace)
    await batch.create_namespaced_job(namespace, job)

    async def running() -> bool:
        pods = await core.list_namespaced_pod(namespace, label_selector=f"job-name={job.metadata.name}")
        return any(p.status.phase == "Running" for p in pods.items)

    await eventually(
        running, FINISH_TIMEOUT, interval=0.2, what=f"the pod of Job {job.metadata.name} Running"
    )


async def job_pod(api: k8s.ApiClient, namespace: str, name: str) -> k8s.V1Pod:
    core = k8s.CoreV1Api(api)

    async def one() -> k8s.V1Pod | None:
        pods = await core.list_namespaced_pod(namespace, label_selector=f"job-name={name}")
        return pods.items[0] if len(pods.items) == 1 else None

    pod: k8s.V1Pod = await eventually(one, 30, interval=0.2, what=f"the pod of Job {name}")
    return pod


async def terminated(api: k8s.ApiClient, namespace: str, name: str) -> k8s.V1ContainerStateTerminated:
    """The `main` container's terminated state once the kubelet reported it."""
    core = k8s.CoreV1Api(api)

    async def state() -> k8s.V1ContainerStateTerminated | None:
        pod = await job_pod(api, namespace, name)
        current = await core.read_namespaced_pod_status(pod.metadata.name, namespace)
        for status in current.status.container_statuses or []:
            if status.name == "main" and status.state and status.state.terminated:
                return status.state.terminated
        return None

    result: k8s.V1ContainerStateTerminated = await eventually(
        state, FINISH_TIMEOUT, interval=0.2, what=f"container main of Job {name} terminated"
    )
    return result


async def pod_log(api: k8s.ApiClient, namespace: str, name: str) -> str:
    pod = await job_pod(api, namespace, name)
    log: str = await k8s.CoreV1Api(api).read_namespaced_pod_log(
        pod.metadata.name, namespace, container="main"
    )
    return log
