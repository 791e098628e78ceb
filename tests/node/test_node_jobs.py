"""Jobs on the real node: the container really runs (runc), and the Job's outcome is what Kubernetes says
for real containers (Complete, exit codes, DeadlineExceeded, OOMKilled), with its output in the pod log."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster, kubectl_env
from tests.node.jobs import busybox_job, job_pod, pod_log, run_job, terminated


async def test_a_job_runs_for_real_and_completes_with_its_output_in_the_log(
    node_cluster: LocalCluster, node_client: k8s.ApiClient, node_namespace: str, kubectl_bin: Path
) -> None:
    script = 'echo "hello from a real pod on $(hostname)"; grep memory /proc/self/cgroup; id -u'
    conditions, took = await run_job(node_client, node_namespace, busybox_job("hello", script))
    assert "Complete" in conditions, conditions
    print(f"Job create -> Complete: {took}s")

    pod = await job_pod(node_client, node_namespace, "hello")
    assert pod.spec.node_name == node_cluster.node_name
    assert pod.status.phase == "Succeeded"
    assert pod.status.pod_ip and pod.status.pod_ip.startswith("10.88."), pod.status.pod_ip
    log = await pod_log(node_client, node_namespace, "hello")
    assert f"hello from a real pod on {pod.metadata.name}" in log
    assert "kubepods" in log  # the container ran in the kubelet's pod cgroup
    # kubectl logs goes the same way (apiserver -> kubelet, mTLS as apiserver-kubelet-client)
    out = subprocess.run(
        [str(kubectl_bin), "logs", "-n", node_namespace, "job/hello"],
        env=kubectl_env(node_cluster),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"hello from a real pod on {pod.metadata.name}" in out


async def test_a_failing_container_fails_the_job_with_its_exit_code(
    node_client: k8s.ApiClient, node_namespace: str
) -> None:
    conditions, _ = await run_job(
        node_client, node_namespace, busybox_job("fails", "echo about to fail; exit 3")
    )
    assert "Failed" in conditions and "Complete" not in conditions, conditions
    state = await terminated(node_client, node_namespace, "fails")
    assert state.exit_code == 3
    assert state.reason == "Error"
    assert "about to fail" in await pod_log(node_client, node_namespace, "fails")


async def test_active_deadline_seconds_kills_the_pod_with_deadline_exceeded(
    node_client: k8s.ApiClient, node_namespace: str
) -> None:
    conditions, took = await run_job(
        node_client, node_namespace, busybox_job("deadline", "echo started; sleep 600", deadline=3)
    )
    assert "Failed" in conditions, conditions
    assert conditions["Failed"].reason == "DeadlineExceeded", conditions["Failed"]
    assert took < 120


async def test_a_memory_limit_kill_is_oomkilled_in_the_container_status(
    node_client: k8s.ApiClient, node_namespace: str
) -> None:
    # busybox tail keeps a line in memory until a newline comes: /dev/zero has none.
    job = busybox_job("oom", "echo eating; head -c 500m /dev/zero | tail", memory="24Mi")
    conditions, _ = await run_job(node_client, node_namespace, job)
    assert "Failed" in conditions, conditions
    state = await terminated(node_client, node_namespace, "oom")
    assert state.reason == "OOMKilled", state
    assert state.exit_code == 137


async def test_a_configmap_subpath_mount_and_an_envfrom_secret_are_visible_in_the_container(
    node_client: k8s.ApiClient, node_namespace: str
) -> None:
    core = k8s.CoreV1Api(node_client)
    await core.create_namespaced_config_map(
        node_namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name="run-spec"),
            data={"run.json": '{"run": "r1"}', "other.txt": "not mounted"},
        ),
    )
    await core.create_namespaced_secret(
        node_namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name="agent-env"),
            data={"API_TOKEN": base64.b64encode(b"s3cret-value").decode()},
        ),
    )
    script = (
        "cat /etc/agent/run.json; echo; ls /etc/agent; "
        'echo "token=$API_TOKEN"; grep -c other /etc/agent/run.json || true'
    )
    job = busybox_job(
        "mounts",
        script,
        volumes=[k8s.V1Volume(name="spec", config_map=k8s.V1ConfigMapVolumeSource(name="run-spec"))],
        mounts=[
            k8s.V1VolumeMount(
                name="spec", mount_path="/etc/agent/run.json", sub_path="run.json", read_only=True
            )
        ],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="agent-env"))],
    )
    conditions, _ = await run_job(node_client, node_namespace, job)
    assert "Complete" in conditions, conditions
    lines = (await pod_log(node_client, node_namespace, "mounts")).splitlines()
    assert lines[0] == '{"run": "r1"}'
    assert lines[1] == "run.json"  # subPath: only that file, not the whole ConfigMap
    assert "token=s3cret-value" in lines


async def test_kwok_fake_nodes_run_beside_the_real_node_without_taking_it_over(
    node_cluster: LocalCluster, node_client: k8s.ApiClient, node_namespace: str
) -> None:
    fake = busybox_job("on-fake-node", "true")
    fake.spec.template.spec.node_selector = {"type": "kwok"}
    fake.spec.template.spec.tolerations = [
        k8s.V1Toleration(key="kwok.x-k8s.io/node", operator="Exists", effect="NoSchedule")
    ]
    real = busybox_job("on-real-node", "echo real")
    (fake_conditions, _), (real_conditions, _) = (
        await run_job(node_client, node_namespace, fake),
        await run_job(node_client, node_namespace, real),
    )
    assert "Complete" in fake_conditions and "Complete" in real_conditions
    assert (await job_pod(node_client, node_namespace, "on-fake-node")).spec.node_name == "kwok-node-0"
    assert (
        await job_pod(node_client, node_namespace, "on-real-node")
    ).spec.node_name == node_cluster.node_name
    assert "real" in await pod_log(node_client, node_namespace, "on-real-node")
    # kwok manages only the annotated fake nodes: the real node's Ready comes from its kubelet
    node = await k8s.CoreV1Api(node_client).read_node(node_cluster.node_name)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True" and ready.reason == "KubeletReady", ready
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})
