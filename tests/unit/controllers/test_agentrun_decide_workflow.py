"""`decide` for `workflow` runs: admission starts the first step, each step attempt is its own Job, retries
back off exponentially, a vanished or stuck step Job is handled, per-step deadlines reach the Job."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.admission import Admit
from jangar.controllers.agentrun.decide import decide, on_foreign_child
from tests.unit.controllers.agentrun_objects import (
    NOW,
    ago,
    conditions,
    job,
    pulling_pod,
    snapshot,
    tuned,
    workflow_run,
    world,
)

ADMIT = Admit(NOW)
STEP1 = "run-1-step-1-attempt-1"


def step(name: str, phase: str, attempt: int = 1, **extra: Any) -> dict[str, Any]:
    index = 1 if name == "plan" else 2
    attempt = 0 if phase == "Pending" else attempt
    entry: dict[str, Any] = {"name": name, "phase": phase, "attempt": attempt, "startedAt": ago(20)}
    if phase != "Pending":
        entry["jobRef"] = {"name": f"run-1-step-{index}-attempt-{attempt}", "namespace": "agents"}
    return entry | extra


def running(*steps: dict[str, Any], spec_steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return workflow_run(
        "Running",
        steps=spec_steps,
        status={
            "startedAt": ago(30),
            "queue": {"admittedAt": ago(30)},
            "workflow": {"phase": "Running", "lastTransitionTime": ago(30), "steps": list(steps)},
        },
    )


def steps_of(plan: Any) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in plan.status.status["workflow"]["steps"]}


def test_admission_starts_the_first_step_in_the_same_pass() -> None:
    plan = decide(snapshot(workflow_run()), ADMIT)
    assert plan.admitted and plan.create is not None and plan.create.job_name == STEP1
    assert plan.status is not None and plan.status.phase == "Running"
    status = plan.status.status
    assert status["queue"] == {"admittedAt": "2026-06-01T12:00:00Z"}
    assert status["jobRef"] == {"name": STEP1, "namespace": "agents"}
    assert status["runtimeRef"]["type"] == "workflow" and status["runtimeRef"]["stepName"] == "plan"
    steps = steps_of(plan)
    assert steps["plan"]["phase"] == "Running" and steps["plan"]["attempt"] == 1
    assert steps["build"]["phase"] == "Pending"
    labels = plan.create.job["metadata"]["labels"]
    assert labels["agents.proompteng.ai/step"] == "plan" and labels["agents.proompteng.ai/step-index"] == "1"
    assert plan.create.job["spec"]["backoffLimit"] == 0  # a step retries as a new Job, not in its own
    assert "step plan attempt 1 started" in plan.status.details.message


def test_a_workflow_is_validated_before_admission() -> None:
    plan = decide(snapshot(workflow_run(steps=[{"name": "plan", "implementationSpecRef": {"name": "nope"}}])))
    assert plan.status is not None and plan.status.phase in ("Pending", "Failed")
    assert conditions(plan.status.status)["InvalidSpec"][0] == "True"


def test_a_step_job_not_seen_yet_is_waited_for_then_resubmitted() -> None:
    obj = running(step("plan", "Running", startedAt=ago(5)), step("build", "Pending"))
    plan = decide(snapshot(obj))
    assert plan.create is None and plan.requeue_after == pytest.approx(55.0)
    late = running(step("plan", "Running", startedAt=ago(61)), step("build", "Pending"))
    again = decide(snapshot(late))
    assert again.create is not None and again.create.job_name == STEP1


def test_a_succeeded_step_starts_the_next_one_and_patches_the_finished_jobs_ttl() -> None:
    obj = running(step("plan", "Running"), step("build", "Pending"))
    plan = decide(snapshot(obj, jobs=(job(STEP1, complete=True),)))
    assert plan.create is not None and plan.create.job_name == "run-1-step-2-attempt-1"
    assert plan.job_ttls == ((STEP1, 600),)
    steps = steps_of(plan)
    assert steps["plan"]["phase"] == "Succeeded" and steps["plan"]["jobRef"]["uid"] == f"uid-{STEP1}"
    assert steps["build"]["phase"] == "Running"
    assert plan.status is not None and plan.status.status["runtimeRef"]["stepName"] == "build"


def test_the_last_step_succeeding_succeeds_the_run() -> None:
    obj = running(step("plan", "Succeeded"), step("build", "Running"))
    jobs = (job(STEP1, complete=True, ttl=600), job("run-1-step-2-attempt-1", complete=True))
    plan = decide(snapshot(obj, jobs=jobs))
    assert plan.status is not None and plan.status.phase == "Succeeded" and plan.create is None
    assert conditions(plan.status.status)["Succeeded"] == ("True", "Completed")
    assert plan.status.status["workflow"]["phase"] == "Succeeded"
    assert plan.job_ttls == (("run-1-step-2-attempt-1", 600),)
    assert plan.status.status["finishedAt"] == "2026-06-01T12:00:00Z"


@pytest.mark.parametrize(("failed_attempt", "delay"), [(1, 10.0), (2, 20.0), (3, 40.0)])
def test_a_failed_attempt_retries_with_exponential_backoff(failed_attempt: int, delay: float) -> None:
    spec = [{"name": "plan", "retries": 5, "retryBackoffSeconds": 10}]
    obj = running(step("plan", "Running", attempt=failed_attempt), spec_steps=spec)
    name = f"run-1-step-1-attempt-{failed_attempt}"
    plan = decide(snapshot(obj, jobs=(job(name, failed="BackoffLimitExceeded"),)))
    assert plan.status is not None and plan.status.phase == "Running" and plan.create is None
    entry = steps_of(plan)["plan"]
    assert entry["phase"] == "Retrying" and entry["reason"] == "BackoffLimitExceeded"
    assert plan.requeue_after == delay
    assert "retrying at" in plan.status.details.message


def test_the_backoff_is_capped_at_an_hour() -> None:
    spec = [{"name": "plan", "retries": 30, "retryBackoffSeconds": 600}]
    obj = running(step("plan", "Running", attempt=9), spec_steps=spec)
    plan = decide(snapshot(obj, jobs=(job("run-1-step-1-attempt-9", failed="BackoffLimitExceeded"),)))
    assert plan.requeue_after == 3600.0


def test_a_retry_without_backoff_starts_the_next_attempt_at_once() -> None:
    spec = [{"name": "plan", "retries": 1}]
    obj = running(step("plan", "Running"), spec_steps=spec)
    plan = decide(snapshot(obj, jobs=(job(STEP1, failed="BackoffLimitExceeded"),)))
    assert plan.create is not None and plan.create.job_name == "run-1-step-1-attempt-2"
    assert steps_of(plan)["plan"]["attempt"] == 2


def test_a_retrying_step_waits_for_its_time_then_starts_the_next_attempt() -> None:
    spec = [{"name": "plan", "retries": 2, "retryBackoffSeconds": 30}]
    waiting = running(step("plan", "Retrying", nextRetryAt=ago(-12)), spec_steps=spec)
    plan = decide(snapshot(waiting))
    assert plan.create is None and plan.requeue_after == pytest.approx(12.0)
    due = running(step("plan", "Retrying", nextRetryAt=ago(1)), spec_steps=spec)
    started = decide(snapshot(due))
    assert started.create is not None and started.create.job_name == "run-1-step-1-attempt-2"


def test_retries_exhausted_fail_the_run() -> None:
    obj = running(step("plan", "Running"), spec_steps=[{"name": "plan"}])
    plan = decide(snapshot(obj, jobs=(job(STEP1, failed="BackoffLimitExceeded"),)))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["Failed"] == ("True", "WorkflowStepFailed")
    assert plan.job_ttls == ((STEP1, 600),)


def test_a_failed_step_status_fails_the_run() -> None:
    plan = decide(snapshot(running(step("plan", "Failed", message="boom"))))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert "boom" in plan.status.details.message


def test_a_step_job_that_vanished_after_it_was_seen_is_retried_or_fails_the_run() -> None:
    spec = [{"name": "plan", "retries": 1, "retryBackoffSeconds": 5}]
    obj = running(step("plan", "Running", jobObservedAt=ago(3)), spec_steps=spec)
    plan = decide(snapshot(obj))
    assert steps_of(plan)["plan"]["phase"] == "Retrying" and plan.requeue_after == 5.0
    assert plan.status is not None and conditions(plan.status.status)["Warning"] == (
        "True",
        "WorkflowJobMissing",
    )
    last = running(step("plan", "Running", attempt=2, jobObservedAt=ago(3)), spec_steps=spec)
    failed = decide(snapshot(last))
    assert failed.status is not None and conditions(failed.status.status)["Failed"] == (
        "True",
        "WorkflowJobMissing",
    )


def test_a_stuck_step_job_is_stopped_after_the_status_records_it() -> None:
    obj = running(step("plan", "Running"), spec_steps=[{"name": "plan"}])
    pods = {STEP1: [pulling_pod(STEP1, created_ago=30)]}
    plan = decide(
        snapshot(obj, jobs=(job(STEP1, active=1),), pods=pods, settings=tuned(image_pull_grace_seconds=10))
    )
    assert plan.status is not None and plan.status.phase == "Failed" and plan.delete_jobs == (STEP1,)
    assert plan.job_ttls == ()


def test_a_running_step_with_a_pod_problem_warns() -> None:
    obj = running(step("plan", "Running"), step("build", "Pending"))
    pods = {STEP1: [pulling_pod(STEP1, created_ago=30)]}
    plan = decide(snapshot(obj, jobs=(job(STEP1, active=1),), pods=pods))
    assert plan.status is not None and plan.status.phase == "Running"
    assert conditions(plan.status.status)["Warning"] == ("True", "ImagePullBackOff")
    assert "is running" in plan.status.details.message


def test_a_step_whose_implementation_vanished_fails_the_run() -> None:
    spec = [{"name": "plan", "implementationSpecRef": {"name": "gone"}}]
    obj = running(step("plan", "Pending"), spec_steps=spec)
    held = decide(snapshot(obj))
    assert held.create is None and held.status is not None and held.status.phase == "Running"
    assert conditions(held.status.status)["Warning"][1] == "MissingImplementation"
    plan = decide(snapshot(obj, settings=tuned(reference_grace_seconds=5)))
    assert plan.create is None and plan.status is not None and plan.status.phase == "Failed"
    entry = steps_of(plan)["plan"]
    assert entry["phase"] == "Failed" and "jobRef" not in entry
    assert "step plan cannot start" in plan.status.details.message


def test_a_step_timeout_becomes_its_jobs_deadline() -> None:
    spec = [{"name": "plan", "timeoutSeconds": 90}, {"name": "build"}]
    plan = decide(snapshot(workflow_run(steps=spec)), ADMIT)
    assert plan.create is not None and plan.create.job["spec"]["activeDeadlineSeconds"] == 90


def test_step_parameters_overlay_the_runs_and_must_meet_the_contract() -> None:
    from tests.unit.controllers.agentrun_objects import impl

    spec = [{"name": "plan", "parameters": {"stage": "plan"}}]
    lookup = world(impl(contract={"requiredKeys": ["stage", "repository"]}))
    obj = workflow_run(steps=spec, parameters={"repository": "acme/x"})
    plan = decide(snapshot(obj, lookup=lookup), ADMIT)
    assert plan.create is not None
    missing = decide(snapshot(workflow_run(steps=spec), lookup=lookup), ADMIT)
    assert missing.create is None and missing.status is not None and missing.status.phase == "Failed"


def test_a_taken_step_job_name_only_waits() -> None:
    plan = on_foreign_child(snapshot(running(step("plan", "Running"))), "taken")
    assert plan.status is None and plan.requeue_after == 5.0 and not plan.release_admission


def test_a_step_waits_for_a_missing_agent_within_the_grace_then_fails() -> None:
    """An Agent replaced between two steps (delete + create) does not fail the run at once."""
    obj = running(step("plan", "Succeeded", finishedAt=ago(30)), step("build", "Pending"))
    lookup = world().__class__(
        *[o for o in world().list("AgentProvider")], *[o for o in world().list("ImplementationSpec")]
    )
    held = decide(snapshot(obj, lookup=lookup))
    assert held.create is None and held.status is not None and held.status.phase == "Running"
    assert conditions(held.status.status)["Warning"][1] == "MissingAgent"
    assert conditions(held.status.status)["Accepted"][0] == "True"
    assert steps_of(held)["build"]["phase"] == "Pending" and steps_of(held)["build"]["attempt"] == 0
    assert held.requeue_after == 10.0
    late = decide(snapshot(obj, lookup=lookup, settings=tuned(reference_grace_seconds=20)))
    assert late.status is not None and late.status.phase == "Failed"
    assert conditions(late.status.status)["Failed"][1] == "MissingAgent"


def test_the_step_jobs_uid_reaches_the_runs_job_ref_once_observed() -> None:
    obj = running(step("plan", "Running"), step("build", "Pending"))
    obj["status"]["jobRef"] = {"name": STEP1, "namespace": "agents"}
    obj["status"]["runtimeRef"] = {"type": "workflow", "name": STEP1, "stepName": "plan"}
    plan = decide(snapshot(obj, jobs=(job(STEP1, active=1),)))
    assert plan.status is not None
    assert plan.status.status["jobRef"]["uid"] == f"uid-{STEP1}"
    assert plan.status.status["runtimeRef"]["uid"] == f"uid-{STEP1}"
    assert steps_of(plan)["plan"].get("message", "") == ""


def test_a_lost_step_job_is_resubmitted_once_per_grace() -> None:
    late = running(step("plan", "Running", startedAt=ago(61)), step("build", "Pending"))
    first = decide(snapshot(late))
    assert first.create is not None and first.status is not None
    again = running(*first.status.status["workflow"]["steps"])
    assert decide(snapshot(again, now=NOW)).create is None
