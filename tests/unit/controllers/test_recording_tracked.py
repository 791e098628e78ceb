"""The snapshot an OrchestrationRun or ToolRun hands the run recorder, and the appliers handing it over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jangar.controllers.recording import record_tracked_run, tracked_run_event
from jangar.storage import TrackedRunEvent


class _Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def record(self, event: Any) -> None:
        self.events.append(event)


def _cond(type_: str, status: str, reason: str, message: str = "", at: str = "2026-12-02T09:00:05Z") -> Any:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": at}


def _orchestration_run(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "ship-1",
            "namespace": "agents",
            "uid": "u-1",
            "creationTimestamp": "2026-12-02T09:00:00Z",
            "labels": {
                "jangar.proompteng.ai/orchestration-run": "parent",
                "jangar.proompteng.ai/orchestration-step": "sub",
            },
        },
        "spec": {"orchestrationRef": {"name": "ship"}, "deliveryId": "d-42"},
        "status": status,
    }


def test_a_waiting_orchestration_run_records_why_it_waits() -> None:
    run = _orchestration_run(
        phase="Running",
        startedAt="2026-12-02T09:00:02Z",
        conditions=[
            _cond("Succeeded", "Unknown", "InProgress"),
            _cond("Waiting", "True", "AwaitingApproval", "step review waits for a decision"),
        ],
    )
    event = tracked_run_event("OrchestrationRun", run)
    assert event is not None
    assert (event.kind, event.uid, event.name, event.phase) == (
        "OrchestrationRun",
        "u-1",
        "ship-1",
        "Running",
    )
    assert (event.target, event.delivery_id) == ("ship", "d-42")
    assert (event.parent_run, event.parent_step) == ("parent", "sub")
    assert (event.reason, event.message) == ("AwaitingApproval", "step review waits for a decision")
    assert event.at == datetime(2026, 12, 2, 9, 0, 2, tzinfo=UTC)  # startedAt: replays find the same row


def test_a_finished_run_is_recorded_at_its_finish_time_with_its_reason() -> None:
    run = _orchestration_run(
        phase="Failed",
        startedAt="2026-12-02T09:00:02Z",
        finishedAt="2026-12-02T09:10:00Z",
        conditions=[_cond("Failed", "True", "RetriesExhausted", "step build failed 3 times")],
    )
    event = tracked_run_event("OrchestrationRun", run)
    assert event is not None
    assert event.at == datetime(2026, 12, 2, 9, 10, tzinfo=UTC) == event.finished_at
    assert event.reason == "RetriesExhausted"


def test_a_tool_run_records_its_tool_and_job() -> None:
    toolrun = {
        "metadata": {"name": "lint", "namespace": "agents", "uid": "t-1"},
        "spec": {"toolRef": {"name": "echo-tool"}},
        "status": {"phase": "Running", "jobRef": {"name": "lint-job", "uid": "j-1"}},
    }
    event = tracked_run_event("ToolRun", toolrun)
    assert isinstance(event, TrackedRunEvent)
    assert event.target == "echo-tool"
    assert event.job is not None and (event.job.name, event.job.namespace, event.job.uid) == (
        "lint-job",
        "agents",
        "j-1",
    )


def test_nothing_is_recorded_before_a_phase_and_recording_never_raises() -> None:
    recorder = _Recorder()
    record_tracked_run(recorder, "ToolRun", {"metadata": {"name": "x", "uid": "u"}, "status": {}})
    record_tracked_run(
        recorder, "Schedule", {"metadata": {"name": "x", "uid": "u"}, "status": {"phase": "Running"}}
    )
    record_tracked_run(
        None, "ToolRun", {"metadata": {"name": "x", "uid": "u"}, "status": {"phase": "Running"}}
    )
    assert recorder.events == []
    record_tracked_run(
        recorder, "ToolRun", {"metadata": {"name": "x", "uid": "u"}, "status": {"phase": "Running"}}
    )
    assert [e.phase for e in recorder.events] == ["Running"]
