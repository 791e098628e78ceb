"""The retention sweep on the kwok cluster (issue 13, drift-0.9.29.md rows 18 and 19): expired AgentRuns go
at most `JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE` per pass, most overdue first, a retained run
never; a runner Pod whose Job was deleted with orphan propagation (the real garbage collector drops its owner
reference) is reported in mode `report` and deleted in mode `delete`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from jangar.conditions import format_time
from jangar.controllers.kinds import AGENTRUNS, EVENTS, JOBS, PODS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError, PropagationPolicy
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)

INTERVAL = 4.0


def _metric(proc: ControllerProcess, name: str, ns: str) -> float:
    assert proc.manager is not None
    return proc.manager.metrics.registry.get_sample_value(name, {"namespace": ns}) or 0.0


async def _finished_run(client: Client, ns: str, name: str, finished_ago: float, **annotations: str) -> None:
    """A run that finished long ago (written before any controller runs, so it never gets a Job)."""
    body = run(ns, name, ttlSecondsAfterFinished=60)
    body["metadata"]["annotations"] = annotations
    await client.create(AGENTRUNS, body)
    at = format_time(datetime.now(UTC) - timedelta(seconds=finished_ago))
    await client.patch_status(
        AGENTRUNS, name, {"status": {"phase": "Succeeded", "finishedAt": at}}, namespace=ns
    )


async def _exists(client: Client, ref: Any, name: str, ns: str) -> bool:
    try:
        await client.get(ref, name, ns)
    except NotFoundError:
        return False
    return True


async def test_expired_runs_go_two_per_pass_most_overdue_first_and_the_retained_one_stays(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    names = [f"old-{i}" for i in range(5)]
    for i, name in enumerate(names):
        await _finished_run(client, ns, name, finished_ago=1000 - 100 * i)  # old-0 is the most overdue
    await _finished_run(client, ns, "kept", finished_ago=5000, **{"agents.proompteng.ai/retain": "true"})
    settings = settings_for(
        ns,
        JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE="2",
        JANGAR_RETENTION_SWEEP_INTERVAL_SECONDS=str(INTERVAL),
        JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE="disabled",
    )
    gone_at: dict[str, float] = {}
    async with running_controller(kwok_cluster.kubeconfig, settings) as proc:

        async def all_gone() -> bool:
            for name in names:
                if name not in gone_at and not await _exists(client, AGENTRUNS, name, ns):
                    gone_at[name] = time.monotonic()
            return len(gone_at) == len(names)

        await eventually(all_gone, timeout=4 * INTERVAL + 20, what="the five expired runs deleted")
        assert _metric(proc, "jangar_agentrun_retention_deletes_total", ns) == 5
        assert _metric(proc, "jangar_agentrun_retention_errors_total", ns) == 0
        assert await _exists(client, AGENTRUNS, "kept", ns)
    order = sorted(names, key=lambda n: gone_at[n])
    assert set(order[:2]) == {"old-0", "old-1"} and set(order[2:4]) == {"old-2", "old-3"}, gone_at
    # a pass deletes two, then the cap makes the sweep wait a whole interval (load only delays passes)
    assert gone_at[order[2]] - gone_at[order[1]] >= INTERVAL - 1.0, gone_at
    assert gone_at[order[4]] - gone_at[order[3]] >= INTERVAL - 1.0, gone_at


async def _orphaned_runner_pod(client: Client, ns: str, name: str) -> str:
    """A run that succeeded on kwok, its Job then deleted with orphan propagation: the Pod it leaves."""
    await client.create(AGENTRUNS, run(ns, name))
    await wait_phase(client, ns, name, "Succeeded", timeout=60)
    job = f"{name}-job"
    pods = (await client.list(PODS, ns, label_selector=f"job-name={job}")).items
    assert len(pods) == 1, pods
    pod = str(pods[0]["metadata"]["name"])
    await client.delete(JOBS, job, ns, propagation_policy=PropagationPolicy.ORPHAN)

    async def orphaned() -> bool:  # the garbage collector removes the Job from the Pod's owner references
        if await _exists(client, JOBS, job, ns):
            return False
        refs = (await client.get(PODS, pod, ns))["metadata"].get("ownerReferences") or []
        return not any(r.get("kind") == "Job" for r in refs)

    await eventually(orphaned, timeout=30, what="the Pod orphaned")
    return pod


async def test_an_orphaned_runner_pod_is_reported_then_deleted(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    env = {
        "JANGAR_RETENTION_SWEEP_INTERVAL_SECONDS": "1",
        "JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS": "1",
    }
    async with running_controller(
        kwok_cluster.kubeconfig, settings_for(ns, JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE="report", **env)
    ) as proc:
        await apply_basics(client, ns)
        pod = await _orphaned_runner_pod(client, ns, "leftover")

        async def reported() -> bool:
            return _metric(proc, "jangar_runtime_debris_found_total", ns) == 1

        await eventually(reported, timeout=30, what="the orphaned Pod counted")

        async def event() -> list[dict[str, Any]]:
            return [
                e
                for e in (await client.list(EVENTS, ns)).items
                if e.get("reason") == "RuntimeDebrisFound"
                and (e.get("involvedObject") or {}).get("name") == pod
            ]

        found = await eventually(event, what="the RuntimeDebrisFound Event")
        assert (
            found[0]["type"] == "Warning"
            and "JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE=report" in found[0]["message"]
        )
        assert await _exists(client, PODS, pod, ns)  # report mode never deletes
        assert _metric(proc, "jangar_runtime_debris_deleted_total", ns) == 0
    async with running_controller(
        kwok_cluster.kubeconfig, settings_for(ns, JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE="delete", **env)
    ) as proc:

        async def deleted() -> bool:
            return not await _exists(client, PODS, pod, ns)

        await eventually(deleted, timeout=30, what="the orphaned Pod deleted")
        assert _metric(proc, "jangar_runtime_debris_deleted_total", ns) == 1
        assert _metric(proc, "jangar_runtime_debris_errors_total", ns) == 0
        assert await _exists(client, AGENTRUNS, "leftover", ns)  # the run itself is not debris
