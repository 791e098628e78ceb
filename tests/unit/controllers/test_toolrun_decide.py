"""`decide(snapshot)`: every path of the ToolRun decision, without an API server."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.conditions import format_time
from jangar.controllers.toolrun.decide import OUTPUTS_WAIT_SECONDS, decide, job_ttl, on_foreign_child
from jangar.controllers.toolrun.plan import EventSpec, ToolRunPlan
from jangar.controllers.toolrun.snapshot import ToolRunSnapshot
from jangar.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings.from_env({})
GRACE = SETTINGS.tuning.missing_job_grace_seconds
REF_GRACE = SETTINGS.tuning.reference_grace_seconds


def ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


def tool(**spec: Any) -> dict[str, Any]:
    base = {"image": "alpine:3.20", "command": ["/bin/sh", "-c"], "args": ["echo {{parameters.message}}"]}
    return {"metadata": {"name": "echo", "namespace": "ns", "uid": "tool-uid"}, "spec": base | spec}


def toolrun(
    phase: str | None = None,
    *,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    created_ago: float = 10,
    deleting: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "tr",
        "namespace": "ns",
        "uid": "tr-uid",
        "generation": 2,
        "resourceVersion": "5",
        "creationTimestamp": ago(created_ago),
    }
    if annotations:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = ago(1)
    body: dict[str, Any] = dict(status or {})
    if phase:
        body["phase"] = phase
    base = {"toolRef": {"name": "echo"}, "parameters": {"message": "hi"}}
    return {"metadata": meta, "spec": base | spec, **({"status": body} if body else {})}


def running(**ref: Any) -> dict[str, Any]:
    """A ToolRun whose Job tr-job was created 5 s ago."""
    return toolrun(
        "Running",
        status={
            "startedAt": ago(5),
            "jobRef": {"name": "tr-job", "namespace": "ns"},
            "runtimeRef": {"type": "job", "name": "tr-job", "namespace": "ns", "submittedAt": ago(5)} | ref,
        },
    )


def job(*conds: str, name: str = "tr-job", ttl: int | None = None, **status: Any) -> dict[str, Any]:
    conditions = [
        {
            "type": c,
            "status": "True",
            "reason": "BackoffLimitExceeded" if c == "Failed" else "",
            "lastTransitionTime": ago(2),
        }
        for c in conds
    ]
    spec: dict[str, Any] = {"ttlSecondsAfterFinished": ttl} if ttl is not None else {}
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": "job-uid", "creationTimestamp": ago(5)},
        "spec": spec,
        "status": {"startTime": ago(4), "active": 0 if conds else 1, "conditions": conditions}
        | ({"succeeded": 1, "completionTime": ago(2)} if "Complete" in conds else {})
        | status,
    }


def pod(message: str | None = None, *, exit_code: int = 0, terminated: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = (
        {
            "terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
            | ({"message": message} if message else {})
        }
        if terminated
        else {"running": {}}
    )
    return {
        "metadata": {"name": "tr-job-abcde", "namespace": "ns", "creationTimestamp": ago(4)},
        "status": {"containerStatuses": [{"name": "tool-runner", "image": "alpine:3.20", "state": state}]},
    }


def snapshot(
    run: dict[str, Any],
    *,
    tool_obj: dict[str, Any] | None = None,
    no_tool: bool = False,
    jobs: tuple[dict[str, Any], ...] = (),
    pods: tuple[dict[str, Any], ...] = (),
    settings: Settings = SETTINGS,
    now: datetime = NOW,
) -> ToolRunSnapshot:
    return ToolRunSnapshot(
        toolrun=run,
        now=now,
        settings=settings,
        tool=None if no_tool else (tool_obj or tool()),
        jobs={j["metadata"]["name"]: j for j in jobs},
        pods={j["metadata"]["name"]: list(pods) for j in jobs},
    )


def cond(plan: ToolRunPlan, type_: str) -> dict[str, Any]:
    assert plan.status is not None
    return next(c for c in plan.status["conditions"] if c["type"] == type_)


def summary(plan: ToolRunPlan) -> tuple[str | None, str | None]:
    """(phase, the deciding reason): Failed's reason when failed, else the condition that explains it."""
    assert plan.status is not None
    phase = plan.status["phase"]
    if phase in ("Failed", "Cancelled"):
        return phase, cond(plan, "Failed")["reason"]
    if phase == "Succeeded":
        return phase, cond(plan, "Succeeded")["reason"]
    invalid = cond(plan, "InvalidSpec")
    if invalid["status"] == "True":
        return phase, invalid["reason"]
    warning = cond(plan, "Warning")
    return phase, warning["reason"] if warning["status"] == "True" else cond(plan, "Running")["reason"]


# -- the table: one pass, from a state to the phase and reason it records ------------------------------


CASES: list[tuple[str, ToolRunSnapshot, tuple[str, str]]] = [
    ("submits", snapshot(toolrun()), ("Running", "Submitted")),
    ("tool missing, within grace", snapshot(toolrun(), no_tool=True), ("Pending", "MissingTool")),
    (
        "tool missing, after the grace",
        snapshot(toolrun(created_ago=REF_GRACE + 1), no_tool=True),
        ("Failed", "MissingTool"),
    ),
    ("tool invalid, within grace", snapshot(toolrun(), tool_obj=tool(image="")), ("Pending", "InvalidTool")),
    (
        "tool invalid, after the grace",
        snapshot(toolrun(created_ago=REF_GRACE + 1), tool_obj=tool(image="")),
        ("Failed", "InvalidTool"),
    ),
    ("no toolRef name", snapshot(toolrun(toolRef={"name": ""})), ("Failed", "MissingToolRef")),
    ("missing parameter", snapshot(toolrun(parameters={})), ("Failed", "MissingParameter")),
    (
        "job running",
        snapshot(running(), jobs=(job(),), pods=(pod(terminated=False),)),
        ("Running", "Submitted"),
    ),
    ("job complete", snapshot(running(), jobs=(job("Complete"),), pods=(pod(),)), ("Succeeded", "Completed")),
    (
        "job failed",
        snapshot(running(), jobs=(job("FailureTarget", "Failed"),), pods=(pod("boom", exit_code=2),)),
        ("Failed", "BackoffLimitExceeded"),
    ),
    (
        "deadline exceeded",
        snapshot(
            running(),
            jobs=(
                job()
                | {
                    "status": {
                        "startTime": ago(4),
                        "conditions": [
                            {
                                "type": "Failed",
                                "status": "True",
                                "reason": "DeadlineExceeded",
                                "lastTransitionTime": ago(1),
                            }
                        ],
                    }
                },
            ),
        ),
        ("Failed", "DeadlineExceeded"),
    ),
    (
        "cancel",
        snapshot(
            running() | {"metadata": running()["metadata"] | {"annotations": {ANNOTATION_CANCEL: "true"}}},
            jobs=(job(),),
        ),
        ("Cancelled", "Cancelled"),
    ),
    ("job vanished after it was seen", snapshot(running(jobObservedAt=ago(3))), ("Running", "JobMissing")),
    (
        "job still missing after the grace",
        snapshot(running(jobObservedAt=ago(GRACE + 10), jobMissingSince=ago(GRACE + 1))),
        ("Failed", "JobMissing"),
    ),
    (
        "job never appeared, after the grace: recreated",
        snapshot(running(submittedAt=ago(GRACE + 1))),
        ("Running", "Submitted"),
    ),
    (
        "job never appeared after being recreated",
        snapshot(running(submittedAt=ago(GRACE + 1), recreated=True)),
        ("Failed", "JobMissing"),
    ),
]


@pytest.mark.parametrize(("snap", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision_table(snap: ToolRunSnapshot, expected: tuple[str, str]) -> None:
    plan = decide(snap)
    assert summary(plan) == expected
    assert plan.status is not None
    assert plan.status["observedGeneration"] == 2
    assert plan.status["runId"] == "tr"
    # Every owned condition is stated; the terminal ones are consistent with the phase.
    types = {c["type"] for c in plan.status["conditions"]}
    assert {
        "Accepted",
        "InvalidSpec",
        "InProgress",
        "Running",
        "Succeeded",
        "Failed",
        "Warning",
        "Ready",
    } <= types
    phase = plan.status["phase"]
    assert (cond(plan, "InProgress")["status"] == "True") == (phase == "Running")
    assert (cond(plan, "Running")["status"] == "True") == (phase == "Running")
    if phase in ("Succeeded", "Failed", "Cancelled"):
        assert plan.status["finishedAt"]
        assert plan.requeue_after is None


# -- details the table does not show ------------------------------------------------------------------


def test_submission_creates_configmap_and_job_and_announces_it() -> None:
    plan = decide(snapshot(toolrun()))
    assert plan.create is not None
    assert plan.create.job_name == "tr-job"
    assert [c["metadata"]["name"] for c in plan.create.configmaps] == ["tr-spec"]
    assert plan.status is not None
    assert plan.status["jobRef"] == {"name": "tr-job", "namespace": "ns"}
    assert plan.status["runtimeRef"]["submittedAt"] == format_time(NOW)
    assert plan.status["startedAt"] == format_time(NOW)
    assert plan.event == EventSpec("Normal", "Created", "created Job tr-job")
    assert cond(plan, "Running")["reason"] == "Submitted"


def test_a_job_that_already_exists_is_adopted_not_duplicated() -> None:
    plan = decide(snapshot(toolrun(), jobs=(job(),)))
    assert plan.create is not None  # create_plan returns the cached Job instead of creating a second one
    assert plan.status is not None
    assert plan.status["jobRef"]["uid"] == "job-uid"
    assert plan.event is not None and plan.event.message == "adopted existing Job tr-job"


def test_outputs_come_from_the_termination_message() -> None:
    message = json.dumps({"outputs": {"branch": "main", "count": 3}})
    plan = decide(snapshot(running(), jobs=(job("Complete"),), pods=(pod(message),)))
    assert plan.status is not None
    assert plan.status["outputs"] == {"branch": "main", "count": 3}
    assert plan.event == EventSpec("Normal", "Succeeded", "job completed")
    assert plan.status["runtimeRef"]["jobObservedAt"] == format_time(NOW)
    assert plan.job_ttls == (("tr-job", 600),)  # in the same pass, applied after the status write


def test_a_plain_text_message_is_no_output_and_becomes_failure_detail() -> None:
    plan = decide(
        snapshot(running(), jobs=(job("FailureTarget", "Failed"),), pods=(pod("disk full", exit_code=1),))
    )
    assert plan.status is not None
    assert "outputs" not in plan.status
    failed = cond(plan, "Failed")
    assert "exited with code 1" in failed["message"] and "disk full" in failed["message"]
    assert plan.event is not None and (plan.event.type, plan.event.reason) == ("Warning", "Failed")
    assert plan.event.message.startswith("BackoffLimitExceeded: ")


def test_a_completed_job_waits_briefly_for_its_pod_to_read_the_outputs() -> None:
    early = decide(snapshot(running(), jobs=(job("Complete"),)))
    assert summary(early) == ("Running", "Submitted")
    assert early.requeue_after == 1.0 and not early.job_ttls
    late = decide(
        snapshot(running(), jobs=(job("Complete"),), now=NOW + timedelta(seconds=OUTPUTS_WAIT_SECONDS))
    )
    assert summary(late) == ("Succeeded", "Completed")
    assert late.status is not None and "outputs" not in late.status


def test_cancel_deletes_the_jobs_after_the_status_write() -> None:
    run = running()
    run["metadata"]["annotations"] = {ANNOTATION_CANCEL: "TRUE"}
    plan = decide(snapshot(run, jobs=(job(),)))
    assert plan.delete_jobs == ("tr-job",)
    assert plan.job_ttls == ()
    assert plan.event == EventSpec(
        "Normal", "Cancelled", f"cancelled through the {ANNOTATION_CANCEL} annotation"
    )
    assert cond(plan, "Accepted")["status"] == "True"


def test_cancel_before_submission_creates_nothing() -> None:
    plan = decide(snapshot(toolrun(annotations={ANNOTATION_CANCEL: "true"})))
    assert plan.create is None and summary(plan) == ("Cancelled", "Cancelled")
    assert cond(plan, "Accepted")["status"] == "False"


def test_a_vanished_job_is_waited_for_then_fails_the_run() -> None:
    first = decide(snapshot(running(jobObservedAt=ago(3))))
    assert first.status is not None
    since = first.status["runtimeRef"]["jobMissingSince"]
    assert since == format_time(NOW)
    assert first.requeue_after == GRACE
    assert first.event is not None and (first.event.type, first.event.reason) == ("Warning", "JobMissing")
    # Within the grace: no write, just the wake-up at the deadline.
    waiting = decide(snapshot(running(jobObservedAt=ago(30), jobMissingSince=ago(20))))
    assert waiting == ToolRunPlan(requeue_after=GRACE - 20)
    # The Job came back (a cache relist): the mark is dropped.
    back = decide(snapshot(running(jobObservedAt=ago(30), jobMissingSince=ago(20)), jobs=(job(),)))
    assert back.status is not None and "jobMissingSince" not in back.status["runtimeRef"]
    assert cond(back, "Warning")["status"] == "False"


def test_a_job_not_in_the_cache_yet_is_waited_for() -> None:
    plan = decide(snapshot(running()))
    assert plan == ToolRunPlan(requeue_after=GRACE - 5)


def test_a_lost_create_is_recreated_once() -> None:
    plan = decide(snapshot(running(submittedAt=ago(GRACE + 1))))
    assert plan.create is not None and plan.create.job_name == "tr-job"
    assert plan.status is not None and plan.status["runtimeRef"]["recreated"] is True
    assert plan.status["startedAt"] == ago(5)  # kept from the first submission
    assert plan.notes


def test_finished_runs_set_the_job_ttl_once_and_delete_stray_jobs() -> None:
    done = toolrun("Succeeded", status={"finishedAt": ago(1), "jobRef": {"name": "tr-job"}})
    plan = decide(snapshot(done, jobs=(job("Complete"),), pods=(pod(),)))
    assert plan == ToolRunPlan(job_ttls=(("tr-job", 600),))
    assert decide(snapshot(done, jobs=(job("Complete", ttl=600),), pods=(pod(),))) == ToolRunPlan()
    stray = decide(snapshot(done, jobs=(job("Complete", ttl=600), job(name="tr-other"))))
    assert stray.delete_jobs == ("tr-other",)


@pytest.mark.parametrize(
    ("tool_ttl", "default", "expected"),
    [
        (None, 600, 600),
        (120, 600, 120),
        (5, 600, 30),
        (0, 600, None),
        (None, 0, None),
        (10**9, 600, 7 * 24 * 3600),
    ],
)
def test_job_ttl(tool_ttl: int | None, default: int, expected: int | None) -> None:
    settings = Settings.from_env({"JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": str(default)})
    spec = {"ttlSecondsAfterFinished": tool_ttl} if tool_ttl is not None else {}
    assert job_ttl(snapshot(toolrun(), tool_obj=tool(**spec), settings=settings)) == expected


def test_a_deleted_run_is_left_to_garbage_collection() -> None:
    run = running()
    run["metadata"]["deletionTimestamp"] = ago(1)
    assert decide(snapshot(run, jobs=(job(),))) == ToolRunPlan()


def test_a_foreign_child_holds_the_run_pending_with_a_warning() -> None:
    plan = on_foreign_child(snapshot(toolrun()), "Job ns/tr-job is controlled by another object")
    assert summary(plan) == ("Pending", "ChildNameTaken")
    assert plan.requeue_after == 5.0


def test_an_image_pull_problem_is_a_warning_then_a_failure_that_stops_the_job() -> None:
    pulling = {
        "metadata": {"name": "tr-job-x", "namespace": "ns", "creationTimestamp": ago(10)},
        "status": {
            "containerStatuses": [
                {
                    "name": "tool-runner",
                    "image": "nope:1",
                    "state": {"waiting": {"reason": "ImagePullBackOff"}},
                }
            ]
        },
    }
    plan = decide(snapshot(running(), jobs=(job(),), pods=(pulling,)))
    assert summary(plan) == ("Running", "ImagePullBackOff")
    assert plan.requeue_after is not None
    tuned = dataclasses.replace(
        SETTINGS, tuning=dataclasses.replace(SETTINGS.tuning, image_pull_grace_seconds=5)
    )
    failed = decide(snapshot(running(), jobs=(job(),), pods=(pulling,), settings=tuned))
    assert summary(failed) == ("Failed", "ImagePullBackOff")
    assert failed.delete_jobs == ("tr-job",)
