"""Admission exact under bursts (issue 12 §3), against a real API server.

* A queue cap of 1 under a burst decided by 8 workers: exactly one run Queued, the others rejected. Before
  queue places were reserved, two workers deciding before either's `Queued` write reached the cache both
  gave the last place away (two runs Queued).
* Deleting finished runs does not free rate budget, neither in the running controller nor in a restarted
  one (the rate window's durable record, ConfigMap `jangar-admissions`).
"""

from __future__ import annotations

import json
from typing import Any

from jangar.api.contract import ADMISSION_WINDOW_CONFIGMAP, FINALIZER_RUNTIME_CLEANUP
from jangar.controllers.kinds import AGENTRUNS, CONFIGMAPS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    get_run,
    run,
    running_controller,
    settings_for,
    wait_phase,
)
from tests.envtest.test_controllers_agentrun import finish_job

BURST = 20
WORKERS = 8


def _burst_run(namespace: str, name: str) -> dict[str, Any]:
    """A run created with the controller's finalizer already set, so its first pass is the admission one
    (no finalizer write first): each run is decided as soon as it arrives."""
    body = run(namespace, name)
    body["metadata"]["finalizers"] = [FINALIZER_RUNTIME_CLEANUP]
    return body


async def _phases(client: Client, namespace: str, names: list[str]) -> dict[str, dict[str, Any]]:
    return {name: await get_run(client, namespace, name) for name in names}


async def test_a_burst_never_overfills_a_queue_cap_of_one(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    settings = settings_for(
        namespace,
        JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="1",
        JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE="1",
    )
    tuning = ControllerTuning(agentrun_workers=WORKERS, reference_grace_seconds=5.0)
    async with running_controller(envtest.kubeconfig, settings, tuning):
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "holder"))
        await wait_phase(client, namespace, "holder", "Running")
        # Created newest-name first within the same second or two: each run to arrive sorts before the ones
        # already decided (FIFO is creation second, then the name), so it claims the place a younger run was
        # just given, while that run's Queued write is still on its way to the cache.
        names = [f"burst-{i}" for i in range(BURST)]
        for name in reversed(names):
            await client.create(AGENTRUNS, _burst_run(namespace, name))

        async def settled() -> dict[str, dict[str, Any]] | None:
            runs = await _phases(client, namespace, names)
            phases = [(r.get("status") or {}).get("phase") for r in runs.values()]
            return runs if all(p in ("Queued", "Failed") for p in phases) else None

        runs = await eventually(settled, timeout=90, what="every burst run Queued or rejected")
        queued = sorted(n for n, r in runs.items() if r["status"]["phase"] == "Queued")
        rejected = [r for r in runs.values() if r["status"]["phase"] == "Failed"]
        assert len(queued) == 1, f"queue cap 1 overfilled: {queued}"
        assert len(rejected) == BURST - 1
        assert all(cond(r, "Failed")["reason"] == "QueueLimitExceeded" for r in rejected)
        assert runs[queued[0]]["status"]["queue"]["position"] == 1
        # Settled for good: a Queued run is never rejected later and a rejected one never comes back.
        again = await _phases(client, namespace, names)
        assert sorted(n for n, r in again.items() if r["status"]["phase"] == "Queued") == queued


async def _gone(client: Client, namespace: str, name: str) -> bool:
    try:
        await get_run(client, namespace, name)
    except NotFoundError:
        return True
    return False


async def test_deleting_finished_runs_does_not_free_rate_budget(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    settings = settings_for(
        namespace,
        JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="0",
        JANGAR_AGENTS_CONTROLLER_RATE_NAMESPACE="2",
        JANGAR_AGENTS_CONTROLLER_RATE_WINDOW_SECONDS="3600",
    )
    async with running_controller(envtest.kubeconfig, settings):
        await apply_basics(client, namespace)
        for name in ("rate-a", "rate-b"):
            await client.create(AGENTRUNS, run(namespace, name))
            await wait_phase(client, namespace, name, "Running")
            await finish_job(client, namespace, f"{name}-job", ok=True)
            await wait_phase(client, namespace, name, "Succeeded")
            await client.delete(AGENTRUNS, name, namespace)
            await eventually(lambda n=name: _gone(client, namespace, n), timeout=30, what=f"{name} deleted")

        await client.create(AGENTRUNS, run(namespace, "rate-c"))
        held = await wait_phase(client, namespace, "rate-c", "Queued")
        assert cond(held, "Blocked")["reason"] == "RateLimited"
        assert held["status"]["queue"]["scope"] == "rate"

        async def recorded() -> dict[str, Any] | None:
            try:
                cm = await client.get(CONFIGMAPS, ADMISSION_WINDOW_CONFIGMAP, namespace)
            except NotFoundError:
                return None
            stamps = json.loads((cm.get("data") or {}).get("admissions.json") or "{}")
            return cm if len(stamps) == 2 else None

        await eventually(recorded, timeout=30, what="the rate window's durable record")

    # A new controller process: no memory, the admitted runs are gone; the record still holds the window.
    async with running_controller(envtest.kubeconfig, settings):
        await client.create(AGENTRUNS, run(namespace, "rate-d"))
        later = await wait_phase(client, namespace, "rate-d", "Queued")
        assert cond(later, "Blocked")["reason"] == "RateLimited"
        assert later["status"]["queue"]["position"] == 2  # behind rate-c, both held by the window
        still = await get_run(client, namespace, "rate-c")
        assert still["status"]["phase"] == "Queued"
