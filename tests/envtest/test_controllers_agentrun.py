"""The AgentRun controller against a real API server (no kubelet: Job outcomes are written by the test).

Covers the job runtime's Job/ConfigMap creation, status mapping, conditions set and cleared, validation
(held Pending for a missing reference, Failed with finishedAt otherwise), cancellation and deletion.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from jangar.admission.model import WAIT_REQUEUE_SECONDS
from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP as FINALIZER
from jangar.controllers.kinds import AGENTRUNS, AGENTS, CONFIGMAPS, EVENTS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError, PropagationPolicy
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    agent,
    apply_basics,
    cond,
    eventually,
    get_run,
    run,
    running_controller,
    settings_for,
    wait_phase,
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def finish_job(
    client: Client, ns: str, name: str, *, ok: bool, reason: str = "BackoffLimitExceeded"
) -> None:
    """Write the Job status the Job controller would (envtest runs no controllers)."""
    job = await client.get(JOBS, name, ns)
    now = _now()
    if ok:
        status: dict[str, Any] = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "conditions": [
                {
                    "type": "SuccessCriteriaMet",
                    "status": "True",
                    "lastTransitionTime": now,
                    "lastProbeTime": now,
                },
                {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
            ],
        }
    else:
        status = {
            "startTime": now,
            "failed": 1,
            "conditions": [
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": reason,
                    "message": "x",
                    "lastTransitionTime": now,
                    "lastProbeTime": now,
                },
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": reason,
                    "message": "x",
                    "lastTransitionTime": now,
                    "lastProbeTime": now,
                },
            ],
        }
    job["status"] = status
    await client.update_status(JOBS, job)


async def test_run_gets_job_and_configmap_then_succeeds(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "r1"))
    obj = await wait_phase(client, namespace, "r1", "Running")

    assert FINALIZER in obj["metadata"]["finalizers"]
    assert obj["status"]["jobRef"]["name"] == "r1-job"
    assert obj["status"]["queue"]["admittedAt"]
    assert cond(obj, "Accepted")["status"] == "True"
    assert cond(obj, "InProgress")["status"] == "True"
    assert cond(obj, "Succeeded")["status"] == "Unknown"
    assert cond(obj, "Blocked")["status"] == "False"
    assert cond(obj, "Progressing")["status"] == "True"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    job = await client.get(JOBS, "r1-job", namespace)
    labels = job["metadata"]["labels"]
    assert labels["agents.proompteng.ai/agent-run"] == "r1"
    assert labels["agents.proompteng.ai/agent"] == "coder"
    assert labels["agents.proompteng.ai/provider"] == "codex"
    assert labels["agents.proompteng.ai/implementation"] == "task"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "AgentRun",
        "r1",
        obj["metadata"]["uid"],
        True,
    )
    assert "ttlSecondsAfterFinished" not in job["spec"]
    spec_cm = await client.get(CONFIGMAPS, "r1-spec", namespace)
    assert {"run.json", "agent-runner.json"} <= set(spec_cm["data"])

    await finish_job(client, namespace, "r1-job", ok=True)
    done = await wait_phase(client, namespace, "r1", "Succeeded")
    assert done["status"]["finishedAt"]
    assert cond(done, "Succeeded")["status"] == "True"
    assert cond(done, "InProgress")["status"] == "False"
    assert cond(done, "Progressing")["status"] == "False"
    assert cond(done, "Ready")["status"] == "True"
    assert cond(done, "Failed")["status"] == "False"

    async def ttl() -> Any:
        return (await client.get(JOBS, "r1-job", namespace))["spec"].get("ttlSecondsAfterFinished")

    assert await eventually(ttl, what="ttl patch") == 600
    assert controller.manager is not None
    sample = controller.manager.metrics.registry.get_sample_value
    outcome = {"outcome": "Succeeded", "runtime": "job", "namespace": namespace}
    assert sample("jangar_agent_run_outcomes_total", outcome) == 1
    assert sample("jangar_reconcile_duration_ms_count", {"kind": "agentrun", "namespace": namespace})
    assert sample("jangar_agentrun_admissions_total", {"namespace": namespace, "outcome": "admitted"}) == 1
    # Exactly one Job for the run, ever.
    jobs = await client.list(JOBS, namespace)
    assert [j["metadata"]["name"] for j in jobs.items] == ["r1-job"]


async def test_job_failure_reason_reaches_the_run(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "r2"))
    await wait_phase(client, namespace, "r2", "Running")
    await finish_job(client, namespace, "r2-job", ok=False, reason="DeadlineExceeded")
    done = await wait_phase(client, namespace, "r2", "Failed")
    assert cond(done, "Failed")["reason"] == "DeadlineExceeded"
    assert cond(done, "Succeeded")["status"] == "False"
    assert cond(done, "Degraded")["status"] == "True"
    assert cond(done, "InProgress")["status"] == "False"
    assert done["status"]["finishedAt"]


async def test_missing_agent_holds_the_run_until_it_exists(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(AGENTRUNS, run(namespace, "early"))
    held = await wait_phase(client, namespace, "early", "Pending")
    invalid = cond(held, "InvalidSpec")
    assert (invalid["status"], invalid["reason"]) == ("True", "MissingAgent")
    assert "coder" in invalid["message"]
    assert "finishedAt" not in held["status"]

    await apply_basics(client, namespace)  # the index wakes the run: no sweep, no wait for the grace
    obj = await wait_phase(client, namespace, "early", "Running", timeout=4)
    assert cond(obj, "InvalidSpec")["status"] == "False"


async def test_missing_agent_fails_after_the_grace(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(AGENTRUNS, run(namespace, "orphan", agent_name="nobody"))
    done = await wait_phase(client, namespace, "orphan", "Failed", timeout=20)
    assert cond(done, "InvalidSpec")["reason"] == "MissingAgent"
    assert done["status"]["finishedAt"]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"parameters": {"prompt": "x" * 3000}}, "ParameterValueTooLarge"),
        ({"runtime": {"type": "temporal"}}, "UnsupportedRuntime"),
        ({"workload": {"image": ""}, "secrets": ["not-bound"]}, "SecretNotBound"),
    ],
)
async def test_invalid_runs_fail_with_an_actionable_reason(
    controller: ControllerProcess, client: Client, namespace: str, spec: dict[str, Any], reason: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "bad", **spec))
    done = await wait_phase(client, namespace, "bad", "Failed")
    invalid = cond(done, "InvalidSpec")
    assert (invalid["status"], invalid["reason"]) == ("True", reason)
    assert done["status"]["finishedAt"]
    assert cond(done, "Degraded")["status"] == "True"
    with pytest.raises(NotFoundError):
        await client.get(JOBS, "bad-job", namespace)


async def test_cancel_annotation_deletes_the_job(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "c1"))
    await wait_phase(client, namespace, "c1", "Running")
    await client.patch(
        AGENTRUNS, "c1", {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}}, namespace=namespace
    )
    done = await wait_phase(client, namespace, "c1", "Cancelled")
    assert done["status"]["finishedAt"]
    assert cond(done, "InProgress")["status"] == "False"

    async def job_gone() -> bool:
        try:
            job = await client.get(JOBS, "c1-job", namespace)
        except NotFoundError:
            return True
        return bool(job["metadata"].get("deletionTimestamp"))

    assert await eventually(job_gone, what="job deleted")


async def test_deleting_a_run_deletes_its_job_and_releases_the_finalizer(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "d1"))
    await wait_phase(client, namespace, "d1", "Running")
    await client.delete(AGENTRUNS, "d1", namespace)

    async def gone() -> bool:
        try:
            await get_run(client, namespace, "d1")
        except NotFoundError:
            return True
        return False

    assert await eventually(gone, what="run deleted")
    with pytest.raises(NotFoundError):
        job = await client.get(JOBS, "d1-job", namespace)
        assert job["metadata"].get("deletionTimestamp")  # foreground GC may still hold it briefly
        raise NotFoundError(404, "NotFound", "being deleted")


async def test_job_vanishing_after_observation_fails_the_run(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "lost"))

    async def observed() -> bool:
        obj = await get_run(client, namespace, "lost")
        return bool(((obj.get("status") or {}).get("runtimeRef") or {}).get("jobObservedAt"))

    await eventually(observed, what="jobObservedAt")
    await client.delete(JOBS, "lost-job", namespace, propagation_policy=PropagationPolicy.BACKGROUND)
    done = await wait_phase(client, namespace, "lost", "Failed")
    assert cond(done, "Failed")["reason"] == "JobLost"
    assert done["status"]["finishedAt"]


async def test_agent_status_follows_its_provider(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(AGENTS, agent(namespace, "a1", provider_name="later"))

    async def agent_cond(reason: str) -> Any:
        obj = await client.get(AGENTS, "a1", namespace)
        ready = cond(obj, "Ready")
        return obj if ready.get("reason") == reason else None

    obj = await eventually(lambda: agent_cond("MissingProvider"), what="MissingProvider")
    assert cond(obj, "InvalidSpec")["status"] == "True"
    from jangar.controllers.kinds import AGENTPROVIDERS
    from tests.envtest.controllers_fixtures import provider

    await client.create(AGENTPROVIDERS, provider(namespace, "later"))
    obj = await eventually(lambda: agent_cond("ValidSpec"), what="ValidSpec")
    assert cond(obj, "InvalidSpec")["status"] == "False"
    assert obj["status"]["phase"] == "Ready"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    # No churn: a settled status is not rewritten.
    rv = obj["metadata"]["resourceVersion"]
    import asyncio

    await asyncio.sleep(1.5)
    assert (await client.get(AGENTS, "a1", namespace))["metadata"]["resourceVersion"] == rv


def _steps(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((obj.get("status") or {}).get("workflow") or {}).get("steps") or [])


async def test_workflow_runs_steps_in_order_and_retries_on_time(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    steps = [
        {"name": "plan"},
        {"name": "build", "retries": 1, "retryBackoffSeconds": 2, "parameters": {"stage": "b"}},
    ]
    await client.create(
        AGENTRUNS, run(namespace, "wf", runtime={"type": "workflow"}, workflow={"steps": steps})
    )

    async def step_phases() -> list[tuple[str, str, int]]:
        obj = await get_run(client, namespace, "wf")
        return [(s["name"], s["phase"], s.get("attempt", 0)) for s in _steps(obj)]

    await eventually(
        lambda: _is(step_phases, [("plan", "Running", 1), ("build", "Pending", 0)]), what="step 1 running"
    )
    await client.get(JOBS, "wf-step-1-attempt-1", namespace)
    await finish_job(client, namespace, "wf-step-1-attempt-1", ok=True)
    await eventually(
        lambda: _is(step_phases, [("plan", "Succeeded", 1), ("build", "Running", 1)]), what="step 2 running"
    )
    job2 = await client.get(JOBS, "wf-step-2-attempt-1", namespace)
    assert job2["metadata"]["labels"]["agents.proompteng.ai/step"] == "build"
    assert job2["spec"]["backoffLimit"] == 0

    await finish_job(client, namespace, "wf-step-2-attempt-1", ok=False)
    retrying = await eventually(
        lambda: _is(step_phases, [("plan", "Succeeded", 1), ("build", "Retrying", 1)]), what="retrying"
    )
    assert retrying
    obj = await get_run(client, namespace, "wf")
    assert _steps(obj)[1]["nextRetryAt"]
    assert obj["status"]["phase"] == "Running"
    # Woken by its own timer (requeue_after), not by an unrelated event.
    await eventually(
        lambda: _is(step_phases, [("plan", "Succeeded", 1), ("build", "Running", 2)]),
        timeout=10,
        what="attempt 2",
    )
    await finish_job(client, namespace, "wf-step-2-attempt-2", ok=True)
    done = await wait_phase(client, namespace, "wf", "Succeeded")
    assert done["status"]["workflow"]["phase"] == "Succeeded"
    assert cond(done, "InProgress")["status"] == "False"
    assert done["status"]["finishedAt"]


async def test_workflow_step_out_of_retries_fails_the_run(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(
        AGENTRUNS, run(namespace, "wf2", runtime={"type": "workflow"}, workflow={"steps": [{"name": "only"}]})
    )

    async def job() -> Any:
        try:
            return await client.get(JOBS, "wf2-step-1-attempt-1", namespace)
        except NotFoundError:
            return None

    await eventually(job, what="step job")
    await finish_job(client, namespace, "wf2-step-1-attempt-1", ok=False)
    done = await wait_phase(client, namespace, "wf2", "Failed")
    assert cond(done, "Failed")["reason"] == "WorkflowStepFailed"
    assert done["status"]["workflow"]["phase"] == "Failed"


async def _is(get: Any, expected: Any) -> Any:
    value = await get()
    return value if value == expected else None


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def record(self, event: Any) -> None:
        self.events.append(event)


async def test_transitions_are_recorded_for_postgres(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    recorder = FakeRecorder()
    async with running_controller(envtest.kubeconfig, settings_for(namespace), recorder=recorder):
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "rec"))
        obj = await wait_phase(client, namespace, "rec", "Running")
        await finish_job(client, namespace, "rec-job", ok=True)
        await wait_phase(client, namespace, "rec", "Succeeded")
        await eventually(lambda: _async(any(e.phase == "Succeeded" for e in recorder.events)), what="record")
    phases = [e.phase for e in recorder.events]
    assert phases.index("Running") < phases.index("Succeeded")
    done = next(e for e in recorder.events if e.phase == "Succeeded")
    assert done.uid == obj["metadata"]["uid"]
    assert done.job is not None and done.job.name == "rec-job"
    assert done.finished_at is not None and done.agent == "coder"


async def _async(value: Any) -> Any:
    return value


async def test_finished_run_is_deleted_after_its_retention_and_events_tell_the_story(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "short", ttlSecondsAfterFinished=2))
    await wait_phase(client, namespace, "short", "Running")
    await finish_job(client, namespace, "short-job", ok=True)
    await wait_phase(client, namespace, "short", "Succeeded")

    async def reasons() -> list[str]:
        events = (await client.list(EVENTS, namespace)).items
        return sorted(e["reason"] for e in events if e["involvedObject"]["name"] == "short")

    assert await eventually(lambda: _has(reasons, {"Running", "Succeeded"}), what="events")

    async def deleted() -> bool:
        try:
            await get_run(client, namespace, "short")
        except NotFoundError:
            return True
        return False

    # The retention sweep, woken by the run's finish, passes at finishedAt + 2 s and deletes it (its default
    # interval is 30 s: only the wake-up makes this in time); nothing else touches the run meanwhile.
    assert await eventually(deleted, timeout=15, what="retention delete")


async def _has(get: Any, wanted: set[str]) -> bool:
    return wanted <= set(await get())


async def test_queue_cap_rejects_and_freed_capacity_admits_the_next(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    settings = settings_for(
        namespace,
        JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="1",
        JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE="1",
    )
    async with running_controller(envtest.kubeconfig, settings):
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "q-a"))
        await wait_phase(client, namespace, "q-a", "Running")
        b_created = time.monotonic()
        await client.create(AGENTRUNS, run(namespace, "q-b"))
        queued = await wait_phase(client, namespace, "q-b", "Queued")
        blocked = cond(queued, "Blocked")
        assert (blocked["status"], blocked["reason"]) == ("True", "ConcurrencyLimit")
        assert queued["status"]["queue"]["position"] == 1
        assert queued["status"]["queue"]["scope"] == "namespace"
        await client.create(AGENTRUNS, run(namespace, "q-c"))
        rejected = await wait_phase(client, namespace, "q-c", "Failed")
        assert cond(rejected, "Failed")["reason"] == "QueueLimitExceeded"
        assert rejected["status"]["finishedAt"]

        await finish_job(client, namespace, "q-a-job", ok=True)
        admitted = await wait_phase(client, namespace, "q-b", "Running", timeout=WAIT_REQUEUE_SECONDS)
        # Woken by q-a finishing, not by the wait timer: that one was armed after q-b was created, so it
        # cannot admit q-b before b_created + WAIT_REQUEUE_SECONDS (a bound that holds under any load).
        assert time.monotonic() - b_created < WAIT_REQUEUE_SECONDS
        assert cond(admitted, "Blocked")["status"] == "False"
        assert admitted["status"]["queue"]["admittedAt"]


async def test_a_job_left_by_a_previous_run_of_the_same_name_is_not_adopted(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    stale = {
        "metadata": {
            "name": "again-job",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "agents.proompteng.ai/v1alpha1",
                    "kind": "AgentRun",
                    "name": "again",
                    "uid": "00000000-0000-0000-0000-000000000000",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }
        },
    }
    await client.create(JOBS, stale)
    await client.create(AGENTRUNS, run(namespace, "again"))
    waiting = await wait_phase(client, namespace, "again", "Pending")
    assert cond(waiting, "Warning")["reason"] == "ChildNameTaken"
    await client.delete(JOBS, "again-job", namespace, propagation_policy=PropagationPolicy.BACKGROUND)
    obj = await wait_phase(client, namespace, "again", "Running", timeout=20)
    job = await client.get(JOBS, "again-job", namespace)
    assert job["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert cond(obj, "Warning")["status"] == "False"


async def test_cluster_limit_spans_watched_namespaces(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    from jangar.runtime.resources import NAMESPACES

    other = f"{namespace}-b"
    await client.create(NAMESPACES, {"metadata": {"name": other}})
    try:
        settings = settings_for([namespace, other], JANGAR_AGENTS_CONTROLLER_CONCURRENCY_CLUSTER="1")
        async with running_controller(envtest.kubeconfig, settings):
            for ns in (namespace, other):
                await apply_basics(client, ns)
            await client.create(AGENTRUNS, run(namespace, "first"))
            await wait_phase(client, namespace, "first", "Running")
            await client.create(AGENTRUNS, run(other, "second"))
            queued = await wait_phase(client, other, "second", "Queued")
            assert queued["status"]["queue"]["scope"] == "cluster"
            await finish_job(client, namespace, "first-job", ok=True)
            await wait_phase(client, other, "second", "Running", timeout=10)
    finally:
        await client.delete(NAMESPACES, other, ignore_not_found=True)


async def test_a_template_run_never_runs_nor_takes_capacity(
    envtest: LocalCluster, client: Client, namespace: str
) -> None:
    """0.9.29 template AgentRuns (`agents.proompteng.ai/template: "true"`) are copy sources: with room for
    exactly one running run, a template created first must not take it, nor get a Job or a finalizer."""
    settings = settings_for(
        namespace,
        JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE="1",
        JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE="1",
    )
    async with running_controller(envtest.kubeconfig, settings):
        await apply_basics(client, namespace)
        template = run(namespace, "tpl")
        template["metadata"]["annotations"] = {"agents.proompteng.ai/template": "true"}
        await client.create(AGENTRUNS, template)
        await client.create(AGENTRUNS, run(namespace, "real"))
        running = await wait_phase(client, namespace, "real", "Running")
        assert cond(running, "Blocked")["status"] == "False"
        stored = await get_run(client, namespace, "tpl")
        assert "status" not in stored and not stored["metadata"].get("finalizers")
        jobs = await client.list(JOBS, namespace)
        assert [j["metadata"]["name"] for j in jobs.items] == ["real-job"]
