"""The AgentRun controller on the kwok cluster: real Job controller, scheduler, garbage collector and fake
kubelet (kwok stages: Job Pods succeed; reserved images fail or take 2 s, see `jangar.dev.kwok_stages`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jangar.controllers.kinds import AGENTRUNS, CONFIGMAPS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import FAIL_IMAGE, PULL_BACKOFF_IMAGE, SLOW_IMAGE
from jangar.runtime import Client, NotFoundError
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)


def _finished(job: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


async def test_sample_run_succeeds_and_job_gets_its_ttl(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(AGENTRUNS, run(ns, "hello"))
        done = await wait_phase(client, ns, "hello", "Succeeded", "Failed", timeout=60)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Succeeded")["reason"] == "Completed"
        assert done["status"]["startedAt"] and done["status"]["finishedAt"]
        assert cond(done, "Progressing")["status"] == "False"

        async def ttl() -> Any:
            return (await client.get(JOBS, "hello-job", ns))["spec"].get("ttlSecondsAfterFinished")

        assert await eventually(ttl, what="job ttl") == 600


async def test_failing_run_reports_the_job_failure(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        spec = {"workload": {"image": FAIL_IMAGE}, "runtime": {"type": "job", "config": {"backoffLimit": 0}}}
        await client.create(AGENTRUNS, run(ns, "boom", **spec))
        done = await wait_phase(client, ns, "boom", "Succeeded", "Failed", timeout=60)
        assert done["status"]["phase"] == "Failed"
        failed = cond(done, "Failed")
        assert failed["reason"] == "BackoffLimitExceeded", failed
        assert "exited with code 1" in failed["message"]
        assert done["status"]["finishedAt"]


async def test_image_that_cannot_be_pulled_fails_the_run_and_stops_the_job(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    tuning = ControllerTuning(image_pull_grace_seconds=15.0, reference_grace_seconds=5.0)
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), tuning):
        await apply_basics(client, ns)
        await client.create(AGENTRUNS, run(ns, "nopull", workload={"image": PULL_BACKOFF_IMAGE}))

        async def warned() -> Any:
            obj = await client.get(AGENTRUNS, "nopull", ns)
            return obj if cond(obj, "Warning").get("reason") == "ImagePullBackOff" else None

        running = await eventually(warned, timeout=30, what="ImagePullBackOff warning")
        assert running["status"]["phase"] == "Running"
        done = await wait_phase(client, ns, "nopull", "Failed", timeout=30)
        failed = cond(done, "Failed")
        assert failed["reason"] == "ImagePullBackOff"
        assert PULL_BACKOFF_IMAGE in failed["message"]

        async def job_stopped() -> bool:
            try:
                job = await client.get(JOBS, "nopull-job", ns)
            except NotFoundError:
                return True
            return bool(job["metadata"].get("deletionTimestamp"))

        await eventually(job_stopped, timeout=30, what="the stuck Job deleted")


async def test_workflow_runs_its_steps_to_success(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        steps = [
            {"name": "plan"},
            {"name": "flaky", "retries": 1, "retryBackoffSeconds": 1, "workload": {"image": FAIL_IMAGE}},
        ]
        await client.create(
            AGENTRUNS, run(ns, "flow", runtime={"type": "workflow"}, workflow={"steps": steps})
        )
        done = await wait_phase(client, ns, "flow", "Succeeded", "Failed", timeout=90)
        # plan succeeds; flaky fails twice (its image always fails) and exhausts its one retry.
        assert done["status"]["phase"] == "Failed"
        assert cond(done, "Failed")["reason"] == "WorkflowStepFailed"
        by_name = {s["name"]: s for s in done["status"]["workflow"]["steps"]}
        assert by_name["plan"]["phase"] == "Succeeded"
        assert (by_name["flaky"]["phase"], by_name["flaky"]["attempt"]) == ("Failed", 2)
        jobs = sorted(j["metadata"]["name"] for j in (await client.list(JOBS, ns)).items)
        assert jobs == ["flow-step-1-attempt-1", "flow-step-2-attempt-1", "flow-step-2-attempt-2"]


async def test_short_ttl_lets_kubernetes_delete_the_job_and_the_run_stays_succeeded(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        spec = {"runtime": {"type": "job", "config": {"ttlSecondsAfterFinished": 5}}}  # clamped to 30
        await client.create(AGENTRUNS, run(ns, "brief", **spec))
        await wait_phase(client, ns, "brief", "Succeeded", timeout=60)

        async def ttl() -> Any:
            return (await client.get(JOBS, "brief-job", ns))["spec"].get("ttlSecondsAfterFinished")

        assert await eventually(ttl, what="job ttl") == 30

        async def job_gone() -> bool:
            try:
                await client.get(JOBS, "brief-job", ns)
            except NotFoundError:
                return True
            return False

        await eventually(job_gone, timeout=90, interval=1, what="TTL controller deleting the Job")
        await asyncio.sleep(1)
        after = await client.get(AGENTRUNS, "brief", ns)
        assert after["status"]["phase"] == "Succeeded"  # a finished run never turns JobLost


async def test_deleting_a_run_removes_its_job_and_configmaps(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(ns, JANGAR_AGENT_RUNNER_IMAGE=SLOW_IMAGE)
    async with running_controller(kwok_cluster.kubeconfig, settings):
        await apply_basics(client, ns)
        await client.create(AGENTRUNS, run(ns, "gone"))
        await wait_phase(client, ns, "gone", "Running", timeout=30)
        assert (await client.get(CONFIGMAPS, "gone-spec", ns))["metadata"]["name"] == "gone-spec"
        await client.delete(AGENTRUNS, "gone", ns)

        async def all_gone() -> bool:
            for ref, name in ((AGENTRUNS, "gone"), (JOBS, "gone-job"), (CONFIGMAPS, "gone-spec")):
                try:
                    await client.get(ref, name, ns)
                except NotFoundError:
                    continue
                return False
            return True

        await eventually(all_gone, timeout=60, interval=0.5, what="run, Job and ConfigMap deleted")


class JobSampler:
    """Samples the namespace's unfinished Jobs and the order in which runs reach Running, continuously."""

    def __init__(self, client: Client, ns: str) -> None:
        self.client = client
        self.ns = ns
        self.max_active = 0
        self.admitted: list[set[str]] = []  # runs first seen admitted, per sample
        self._seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            jobs = (await self.client.list(JOBS, self.ns)).items
            self.max_active = max(self.max_active, sum(1 for j in jobs if not _finished(j)))
            runs = (await self.client.list(AGENTRUNS, self.ns)).items
            new = {
                r["metadata"]["name"]
                for r in runs
                if (r.get("status") or {}).get("jobRef") and r["metadata"]["name"] not in self._seen
            }
            if new:
                self.admitted.append(new)
                self._seen |= new
            await asyncio.sleep(0.05)

    def __enter__(self) -> JobSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def assert_fifo(self, names: list[str]) -> None:
        """Runs start in creation order. Runs admitted by the same decision (two slots freed at once) are
        started by different workers in any order, so one sample of slack is allowed, never more."""
        sample_of = {n: i for i, batch in enumerate(self.admitted) for n in batch}
        assert set(sample_of) == set(names)
        late = [
            (a, b) for i, a in enumerate(names) for b in names[i + 1 :] if sample_of[a] > sample_of[b] + 1
        ]
        assert not late, f"runs started long after younger ones: {late[:5]}"


async def _burst(client: Client, ns: str, names: list[str]) -> None:
    for name in names:
        await client.create(AGENTRUNS, run(ns, name))


async def _all_succeeded(client: Client, ns: str, names: list[str]) -> bool:
    runs = {r["metadata"]["name"]: r for r in (await client.list(AGENTRUNS, ns)).items}
    return all((runs.get(n, {}).get("status") or {}).get("phase") == "Succeeded" for n in names)


async def test_burst_of_50_with_concurrency_5(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(
        ns, JANGAR_AGENT_RUNNER_IMAGE=SLOW_IMAGE, JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="5"
    )
    names = [f"run-{i:02d}" for i in range(50)]
    async with running_controller(kwok_cluster.kubeconfig, settings, ControllerTuning(agentrun_workers=4)):
        await apply_basics(client, ns)
        started = time.monotonic()
        with JobSampler(client, ns) as sampler:
            await _burst(client, ns, names)
            queued = await eventually(
                lambda: _queued_with_position(client, ns), timeout=30, what="a queued run with its position"
            )
            await eventually(
                lambda: _all_succeeded(client, ns, names), timeout=300, interval=0.5, what="all 50 done"
            )
        elapsed = time.monotonic() - started
        print(f"burst of 50 (concurrency 5, 2 s pods): {elapsed:.1f}s, max active Jobs {sampler.max_active}")
        assert sampler.max_active <= 5
        assert sampler.max_active >= 3  # the limit was actually used
        blocked = cond(queued, "Blocked")
        assert blocked["status"] == "True" and blocked["reason"] == "ConcurrencyLimit"
        assert queued["status"]["queue"]["position"] >= 1
        sampler.assert_fifo(names)
        jobs = (await client.list(JOBS, ns)).items
        assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"{n}-job" for n in names)
        for r in (await client.list(AGENTRUNS, ns)).items:
            assert cond(r, "Blocked")["status"] == "False"  # cleared once admitted


async def _queued_with_position(client: Client, ns: str) -> dict[str, Any] | None:
    for r in (await client.list(AGENTRUNS, ns)).items:
        if (r.get("status") or {}).get("phase") == "Queued" and (r["status"].get("queue") or {}).get(
            "position"
        ):
            return r
    return None


async def test_killing_the_controller_mid_burst_loses_nothing_and_duplicates_nothing(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(
        ns, JANGAR_AGENT_RUNNER_IMAGE=SLOW_IMAGE, JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="5"
    )
    names = [f"crash-{i:02d}" for i in range(20)]
    await apply_basics(client, ns)
    with JobSampler(client, ns) as sampler:
        first = await ControllerProcess(
            kwok_cluster.kubeconfig, settings, ControllerTuning(agentrun_workers=4)
        ).start()
        await _burst(client, ns, names)

        async def some_admitted() -> bool:
            return sum(len(b) for b in sampler.admitted) >= 7

        await eventually(some_admitted, timeout=60, what="7 runs admitted")
        await first.kill()
        await asyncio.sleep(1)
        async with running_controller(
            kwok_cluster.kubeconfig, settings, ControllerTuning(agentrun_workers=4)
        ):
            await eventually(
                lambda: _all_succeeded(client, ns, names), timeout=240, interval=0.5, what="all 20 done"
            )
    assert sampler.max_active <= 5
    jobs = (await client.list(JOBS, ns)).items
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"{n}-job" for n in names)
    for r in (await client.list(AGENTRUNS, ns)).items:
        assert r["status"]["jobRef"]["name"] == f"{r['metadata']['name']}-job"
