"""Workflow step planning, pinning the reference's workflow tests and its fixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jangar.scheduler.workflow import plan_workflow, retry_backoff
from tests.unit.scheduler.objects import agent_run

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def wf_run(*steps: dict[str, Any], status: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    run = agent_run(runtime="workflow", workflow={"steps": list(steps)})
    if status is not None:
        run["status"] = {"workflow": {"steps": status}}
    return run


def succeeded_job(uid: str = "j1") -> dict[str, Any]:
    return {
        "metadata": {"uid": uid},
        "status": {
            "succeeded": 1,
            "startTime": "2026-01-01T12:00:10Z",
            "completionTime": "2026-01-01T12:01:00Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }


def failed_job() -> dict[str, Any]:
    return {
        "metadata": {"uid": "jf"},
        "status": {
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        },
    }


def by_name(plan: Any) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in plan.steps}


def test_two_steps_advance_to_completion() -> None:
    run = wf_run({"name": "plan"}, {"name": "implement"})
    first = plan_workflow(run, {}, now=T0)
    assert first.phase == "Running"
    assert first.submit is not None and (first.submit.name, first.submit.index, first.submit.attempt) == (
        "plan",
        1,
        1,
    )
    steps = by_name(first)
    assert steps["plan"]["phase"] == "Running" and steps["plan"]["attempt"] == 1
    assert steps["plan"]["jobRef"] == {"name": "run-1-step-1-attempt-1", "namespace": "agents"}
    assert steps["implement"]["phase"] == "Pending"

    run["status"] = {"workflow": {"steps": first.steps}}
    second = plan_workflow(run, {"run-1-step-1-attempt-1": succeeded_job()}, now=T0 + timedelta(minutes=2))
    steps = by_name(second)
    assert steps["plan"]["phase"] == "Succeeded"
    assert (steps["plan"]["startedAt"], steps["plan"]["finishedAt"]) == (
        "2026-01-01T12:00:10Z",
        "2026-01-01T12:01:00Z",
    )
    assert steps["plan"]["jobRef"]["uid"] == "j1"
    assert steps["implement"]["phase"] == "Running"
    assert second.submit is not None and second.submit.name == "implement" and second.submit.index == 2
    assert second.finished_jobs == ["run-1-step-1-attempt-1"]
    assert second.steps[1]["jobRef"]["name"] == "run-1-step-2-attempt-1"

    run["status"] = {"workflow": {"steps": second.steps}}
    jobs = {"run-1-step-1-attempt-1": succeeded_job(), "run-1-step-2-attempt-1": succeeded_job("j2")}
    third = plan_workflow(run, jobs, now=T0 + timedelta(minutes=5))
    assert (third.phase, third.reason) == ("Succeeded", "Completed")
    assert third.submit is None
    assert third.finished_jobs == ["run-1-step-2-attempt-1"]


def test_waiting_for_job_then_resubmit_after_grace() -> None:
    status = [
        {
            "name": "plan",
            "phase": "Running",
            "attempt": 1,
            "startedAt": "2026-01-01T12:00:00Z",
            "jobRef": {"name": "run-1-step-1-attempt-1"},
        }
    ]
    run = wf_run({"name": "plan"}, status=status)
    waiting = plan_workflow(run, {}, now=T0 + timedelta(seconds=20))
    assert by_name(waiting)["plan"]["message"] == "Waiting for job to be created"
    assert waiting.submit is None and waiting.requeue_after == 40
    late = plan_workflow(run, {}, now=T0 + timedelta(seconds=61))
    assert late.submit is not None and late.submit.attempt == 1  # same name: the create is idempotent


def test_job_missing_after_observation_warns_and_retries_or_fails() -> None:
    status = [
        {
            "name": "plan",
            "phase": "Running",
            "attempt": 1,
            "jobObservedAt": "2026-01-01T12:00:05Z",
            "jobRef": {"name": "run-1-step-1-attempt-1"},
        }
    ]
    plan = plan_workflow(wf_run({"name": "plan"}, status=status), {}, now=T0)
    assert (plan.phase, plan.reason) == ("Failed", "WorkflowJobMissing")
    assert plan.warnings[0][0] == "WorkflowJobMissing"
    retry = plan_workflow(
        wf_run({"name": "plan", "retries": 1, "retryBackoffSeconds": 10}, status=status), {}, now=T0
    )
    assert retry.phase == "Running"
    assert by_name(retry)["plan"]["phase"] == "Retrying"
    assert retry.warnings[0][0] == "WorkflowJobMissing"


def test_retry_with_backoff_then_next_attempt() -> None:
    step = {"name": "plan", "retries": 2, "retryBackoffSeconds": 30}
    status = [
        {"name": "plan", "phase": "Running", "attempt": 1, "jobRef": {"name": "run-1-step-1-attempt-1"}}
    ]
    run = wf_run(step, status=status)
    failed = plan_workflow(run, {"run-1-step-1-attempt-1": failed_job()}, now=T0)
    entry = by_name(failed)["plan"]
    assert (failed.phase, entry["phase"], entry["nextRetryAt"]) == (
        "Running",
        "Retrying",
        "2026-01-01T12:00:30Z",
    )
    assert entry["reason"] == "BackoffLimitExceeded"
    assert failed.requeue_after == 30  # wakes up at its time
    assert failed.finished_jobs == ["run-1-step-1-attempt-1"]

    run["status"] = {"workflow": {"steps": failed.steps}}
    early = plan_workflow(run, {}, now=T0 + timedelta(seconds=10))
    assert early.submit is None and early.requeue_after == 20
    due = plan_workflow(run, {}, now=T0 + timedelta(seconds=31))
    entry = by_name(due)["plan"]
    assert (entry["phase"], entry["attempt"]) == ("Running", 2)
    assert due.submit is not None and due.submit.attempt == 2
    assert entry["jobRef"]["name"] == "run-1-step-1-attempt-2"
    assert "nextRetryAt" not in entry


def test_retries_exhausted_and_step_failed() -> None:
    status = [
        {"name": "plan", "phase": "Running", "attempt": 1, "jobRef": {"name": "run-1-step-1-attempt-1"}}
    ]
    plan = plan_workflow(
        wf_run({"name": "plan"}, status=status), {"run-1-step-1-attempt-1": failed_job()}, now=T0
    )
    assert (plan.phase, plan.reason) == ("Failed", "WorkflowStepFailed")
    assert by_name(plan)["plan"]["message"].startswith("Step failed")
    exhausted = [{"name": "plan", "phase": "Retrying", "attempt": 2, "nextRetryAt": "2026-01-01T11:00:00Z"}]
    plan = plan_workflow(wf_run({"name": "plan", "retries": 1}, status=exhausted), {}, now=T0)
    assert (plan.phase, plan.reason) == ("Failed", "WorkflowStepRetriesExhausted")


def test_zero_backoff_resubmits_in_the_same_pass() -> None:
    status = [
        {"name": "plan", "phase": "Running", "attempt": 1, "jobRef": {"name": "run-1-step-1-attempt-1"}}
    ]
    plan = plan_workflow(
        wf_run({"name": "plan", "retries": 1}, status=status),
        {"run-1-step-1-attempt-1": failed_job()},
        now=T0,
    )
    assert plan.submit is not None and plan.submit.attempt == 2


def test_running_job_reports_pod_problems() -> None:
    status = [
        {"name": "plan", "phase": "Running", "attempt": 1, "jobRef": {"name": "run-1-step-1-attempt-1"}}
    ]
    job = {"metadata": {"uid": "j"}, "status": {"active": 1, "startTime": "2026-01-01T12:00:00Z"}}
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T12:00:00Z"},
        "status": {
            "containerStatuses": [{"name": "agent-runner", "state": {"waiting": {"reason": "ErrImagePull"}}}]
        },
    }
    plan = plan_workflow(
        wf_run({"name": "plan"}, status=status),
        {"run-1-step-1-attempt-1": job},
        pods={"run-1-step-1-attempt-1": [pod]},
        now=T0 + timedelta(seconds=60),
    )
    assert plan.phase == "Running" and plan.warnings[0][0] == "ErrImagePull"
    assert by_name(plan)["plan"]["jobObservedAt"] == "2026-01-01T12:01:00Z"
    assert plan.requeue_after == 240


def test_backoff_grows_and_is_capped() -> None:
    step = {"retryBackoffSeconds": 30}
    assert [retry_backoff(step, n) for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_backoff(step, 20) == 3600
    assert retry_backoff({}, 1) == 0
