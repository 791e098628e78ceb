from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jangar.scheduler.outcome import classify_job, missing_job_action

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
START = "2026-01-01T11:50:00Z"


def job(status: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "run-1-job"}, "spec": spec or {}, "status": {"startTime": START} | status}


def pod(container_status: dict[str, Any], created: str = START) -> dict[str, Any]:
    return {
        "metadata": {"name": "run-1-job-abcde", "creationTimestamp": created},
        "status": {"containerStatuses": [{"name": "agent-runner", "image": "img:1"} | container_status]},
    }


def cond(type_: str, reason: str = "", at: str = "2026-01-01T11:59:00Z") -> dict[str, Any]:
    return {"type": type_, "status": "True", "reason": reason, "lastTransitionTime": at}


def test_succeeded_with_times_from_job() -> None:
    out = classify_job(
        job({"succeeded": 1, "completionTime": "2026-01-01T11:58:00Z", "conditions": [cond("Complete")]}),
        now=NOW,
    )
    assert (out.phase, out.reason, out.terminal) == ("Succeeded", "Completed", True)
    assert out.started_at == datetime(2026, 1, 1, 11, 50, tzinfo=UTC)
    assert out.finished_at == datetime(2026, 1, 1, 11, 58, tzinfo=UTC)


def test_backoff_limit_exceeded_with_container_detail() -> None:
    failed_pod = pod({"state": {"terminated": {"exitCode": 2, "reason": "Error"}}})
    out = classify_job(
        job({"failed": 1, "conditions": [cond("Failed", "BackoffLimitExceeded")]}), [failed_pod], now=NOW
    )
    assert (out.phase, out.reason) == ("Failed", "BackoffLimitExceeded")
    assert "exited with code 2" in out.message
    assert out.finished_at == datetime(2026, 1, 1, 11, 59, tzinfo=UTC)


def test_oom_killed_wins_over_backoff() -> None:
    oom = pod({"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}})
    out = classify_job(
        job({"failed": 1, "conditions": [cond("Failed", "BackoffLimitExceeded")]}), [oom], now=NOW
    )
    assert (out.phase, out.reason) == ("Failed", "OOMKilled")
    assert "memory" in out.message


def test_deadline_exceeded() -> None:
    out = classify_job(
        job({"conditions": [cond("Failed", "DeadlineExceeded")]}, {"activeDeadlineSeconds": 60}), now=NOW
    )
    assert (out.phase, out.reason) == ("Failed", "DeadlineExceeded")
    assert "60s" in out.message


def test_image_pull_backoff_warns_then_fails_after_grace() -> None:
    stuck = {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}
    early = classify_job(job({"active": 1}), [pod(stuck, created="2026-01-01T11:58:00Z")], now=NOW)
    assert (early.phase, early.reason, early.stop_job) == ("Running", "ImagePullBackOff", False)
    assert "img:1" in early.message
    assert early.requeue_after == 180
    late = classify_job(job({"active": 1}), [pod(stuck)], now=NOW)
    assert (late.phase, late.reason, late.stop_job) == ("Failed", "ImagePullBackOff", True)
    err = classify_job(job({"active": 1}), [pod({"state": {"waiting": {"reason": "ErrImagePull"}}})], now=NOW)
    assert err.reason == "ErrImagePull"


def test_running_and_pending() -> None:
    assert classify_job(job({"active": 1}), [pod({"state": {"running": {}}})], now=NOW).phase == "Running"
    assert classify_job({"metadata": {}, "status": {}}, now=NOW).phase == "Pending"


def test_missing_job_actions() -> None:
    assert missing_job_action({"jobObservedAt": START}, submitted_at=None, now=NOW) == ("fail", None)
    action, after = missing_job_action({}, submitted_at=NOW - timedelta(seconds=20), now=NOW)
    assert action == "wait" and after == 40
    assert missing_job_action({}, submitted_at=NOW - timedelta(seconds=61), now=NOW) == ("recreate", None)


def _unschedulable(since: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "run-1-job-abcde", "creationTimestamp": since},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: insufficient cpu",
                    "lastTransitionTime": since,
                }
            ],
        },
    }


def test_unschedulable_pod_waits_then_fails_instead_of_staying_running() -> None:
    waiting = classify_job(job({"active": 1}), [_unschedulable("2026-01-01T11:58:00Z")], now=NOW)
    assert (waiting.phase, waiting.reason) == ("Running", "Unschedulable")
    assert "insufficient cpu" in waiting.message
    assert waiting.requeue_after == 600 - 120
    failed = classify_job(job({"active": 1}), [_unschedulable("2026-01-01T11:49:00Z")], now=NOW)
    assert (failed.phase, failed.reason, failed.stop_job) == ("Failed", "Unschedulable", True)


def test_job_without_any_pod_fails_after_the_grace() -> None:
    fresh = {"metadata": {"name": "j", "creationTimestamp": "2026-01-01T11:59:00Z"}, "spec": {}, "status": {}}
    pending = classify_job(fresh, [], now=NOW)
    assert pending.phase == "Pending" and pending.requeue_after == 540
    old = {"metadata": {"name": "j", "creationTimestamp": "2026-01-01T11:45:00Z"}, "spec": {}, "status": {}}
    failed = classify_job(old, [], now=NOW)
    assert (failed.phase, failed.reason, failed.stop_job) == ("Failed", "PodsNotCreated", True)
