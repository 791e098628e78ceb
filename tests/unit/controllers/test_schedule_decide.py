"""`decide(snapshot)`: every path of the Schedule decision, without an API server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.api.contract import ANNOTATION_SCHEDULE_SPEC_HASH, ANNOTATION_SCHEDULED_TIME, LABEL_SCHEDULE
from jangar.conditions import format_time
from jangar.controllers.kinds import CONFIGMAPS
from jangar.controllers.schedule.decide import (
    FOREIGN_CHILD_REQUEUE_SECONDS,
    PHASE_ACTIVE,
    PHASE_INVALID,
    PHASE_SUSPENDED,
    decide,
)
from jangar.controllers.schedule.plan import SchedulePlan
from jangar.controllers.schedule.snapshot import ScheduleSnapshot, cronjob_inputs
from jangar.scheduler.schedules import CRONJOBS, TEMPLATE_KEY
from jangar.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
SETTINGS = Settings.from_env({"JANGAR_IMAGE": "jangar:1"})
UID = "sched-uid"


def sched(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    base = {"cron": "*/5 * * * *", "targetRef": {"kind": "AgentRun", "name": "tpl"}}
    obj: dict[str, Any] = {
        "metadata": {
            "name": "every5",
            "namespace": "ns",
            "uid": UID,
            "generation": 3,
            "resourceVersion": "7",
        },
        "spec": base | spec,
    }
    if status:
        obj["status"] = status
    return obj


def target() -> dict[str, Any]:
    return {
        "metadata": {"name": "tpl", "namespace": "ns", "uid": "t-uid"},
        "spec": {"agentRef": {"name": "coder"}, "implementationSpecRef": {"name": "task"}},
    }


def snap(schedule: dict[str, Any] | None = None, **kw: Any) -> ScheduleSnapshot:
    s = schedule or sched()
    kw.setdefault("target", target())
    return ScheduleSnapshot(schedule=s, now=NOW, inputs=cronjob_inputs(s, SETTINGS), **kw)


def owned(obj: dict[str, Any], uid: str = UID) -> dict[str, Any]:
    meta = obj["metadata"]
    meta["ownerReferences"] = [{"kind": "Schedule", "name": "every5", "uid": uid, "controller": True}]
    meta["resourceVersion"] = "1"
    return obj


def children(plan: SchedulePlan) -> dict[str, dict[str, Any]]:
    return {w.ref.kind: w.desired for w in plan.writes}


def cond(plan: SchedulePlan, type_: str) -> tuple[str, str]:
    assert plan.status is not None
    c = next(c for c in plan.status["conditions"] if c["type"] == type_)
    return c["status"], c["reason"]


def settled(schedule: dict[str, Any] | None = None, **kw: Any) -> ScheduleSnapshot:
    """A snapshot whose children are exactly what the first pass wrote."""
    first = decide(snap(schedule, **kw))
    kids = children(first)
    return snap(
        schedule,
        template=owned(kids["ConfigMap"]),
        cronjob=owned(kids["CronJob"]),
        **kw,
    )


# -- the valid path ----------------------------------------------------------------------------------


def test_first_pass_creates_template_and_cronjob_and_reports_active() -> None:
    plan = decide(snap())
    kids = children(plan)
    assert [w.ref for w in plan.writes] == [CONFIGMAPS, CRONJOBS]  # template first: the Job reads it
    assert all(w.existing is None for w in plan.writes)
    template = json.loads(kids["ConfigMap"]["data"][TEMPLATE_KEY])
    assert template["spec"]["agentRef"] == {"name": "coder"}
    assert kids["ConfigMap"]["metadata"]["ownerReferences"][0]["uid"] == UID
    cron = kids["CronJob"]
    assert cron["spec"]["schedule"] == "*/5 * * * *" and cron["spec"]["suspend"] is False
    assert cron["metadata"]["ownerReferences"][0]["controller"] is True
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == "jangar:1"
    assert plan.phase == PHASE_ACTIVE
    assert plan.status is not None
    assert plan.status["nextRunTime"] == "2026-06-01T12:05:00Z"
    assert plan.status["cronJobName"] == "every5-cron" and plan.status["templateName"] == "every5-template"
    assert plan.status["observedGeneration"] == 3
    assert cond(plan, "Ready") == ("True", "Active")
    assert cond(plan, "InvalidSpec") == ("False", "ValidSpec")
    assert cond(plan, "TargetResolved") == ("True", "TargetFound")
    assert cond(plan, "Suspended") == ("False", "NotSuspended")
    # woken just after the next tick, so nextRunTime moves on
    assert plan.requeue_after == pytest.approx(4 * 60 + 30 + 1)
    assert [e.reason for e in plan.events] == ["Active"]


def test_a_settled_schedule_writes_no_child() -> None:
    plan = decide(settled())
    assert plan.writes == () and plan.deletes == ()


def test_a_changed_cron_or_target_rewrites_the_child() -> None:
    first = settled()
    plan = decide(snap(sched(cron="0 * * * *"), template=first.template, cronjob=first.cronjob))
    assert [w.ref for w in plan.writes] == [CRONJOBS]
    assert plan.writes[0].existing is first.cronjob
    changed = target()
    changed["spec"]["parameters"] = {"x": "1"}
    plan = decide(snap(target=changed, template=first.template, cronjob=first.cronjob))
    assert [w.ref for w in plan.writes] == [CONFIGMAPS]


def test_api_server_defaults_on_the_cronjob_are_not_a_change() -> None:
    first = settled()
    assert first.cronjob is not None
    defaulted = json.loads(json.dumps(first.cronjob))
    defaulted["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    defaulted["status"] = {"lastScheduleTime": "2026-06-01T12:00:00Z"}
    assert decide(snap(template=first.template, cronjob=defaulted)).writes == ()
    defaulted["metadata"]["annotations"][ANNOTATION_SCHEDULE_SPEC_HASH] = "stale"
    assert [w.ref for w in decide(snap(template=first.template, cronjob=defaulted)).writes] == [CRONJOBS]


def test_suspend_suspends_the_cronjob_and_has_no_next_run() -> None:
    s = sched(status={"phase": PHASE_ACTIVE}, suspend=True)
    plan = decide(snap(s))
    assert children(plan)["CronJob"]["spec"]["suspend"] is True
    assert plan.phase == PHASE_SUSPENDED
    assert plan.status is not None and "nextRunTime" not in plan.status
    assert cond(plan, "Suspended") == ("True", "Suspended")
    assert cond(plan, "Ready") == ("False", "Suspended")
    assert plan.requeue_after is None
    assert [e.reason for e in plan.events] == ["Suspended"]
    resumed = decide(snap(sched(status={"phase": PHASE_SUSPENDED})))
    assert [e.reason for e in resumed.events] == ["Resumed"]


def test_last_run_is_the_newest_tick_and_an_event_names_it() -> None:
    def run(name: str, tick: str) -> dict[str, Any]:
        return {
            "apiVersion": "agents.proompteng.ai/v1alpha1",
            "kind": "AgentRun",
            "metadata": {
                "name": name,
                "namespace": "ns",
                "labels": {LABEL_SCHEDULE: "every5"},
                "annotations": {ANNOTATION_SCHEDULED_TIME: tick},
            },
        }

    runs = [
        run("every5-202606011155", "2026-06-01T11:55:00Z"),
        run("every5-202606011200", "2026-06-01T12:00:00Z"),
    ]
    s = sched(status={"phase": PHASE_ACTIVE, "lastRun": {"kind": "AgentRun", "name": "every5-202606011155"}})
    plan = decide(snap(s, runs=runs))
    assert plan.status is not None
    assert plan.status["lastRunTime"] == "2026-06-01T12:00:00Z"
    assert plan.status["lastRun"] == {
        "kind": "AgentRun",
        "name": "every5-202606011200",
        "namespace": "ns",
        "scheduledTime": "2026-06-01T12:00:00Z",
    }
    assert [e.reason for e in plan.events] == ["RunCreated"]


def test_without_runs_last_run_time_is_the_cronjobs_last_schedule_time() -> None:
    first = settled()
    assert first.cronjob is not None
    cron = json.loads(json.dumps(first.cronjob))
    cron["status"] = {
        "lastScheduleTime": "2026-06-01T12:00:00Z",
        "lastSuccessfulTime": "2026-06-01T12:00:09Z",
    }
    plan = decide(snap(template=first.template, cronjob=cron))
    assert plan.status is not None
    assert plan.status["lastRunTime"] == "2026-06-01T12:00:00Z"
    assert plan.status["lastScheduleTime"] == "2026-06-01T12:00:00Z"
    assert plan.status["lastSuccessfulTime"] == "2026-06-01T12:00:09Z"


def test_a_child_name_held_by_another_object_is_not_touched() -> None:
    first = settled()
    assert first.cronjob is not None
    foreign = owned(json.loads(json.dumps(first.cronjob)), uid="someone-else")
    foreign["metadata"]["annotations"][ANNOTATION_SCHEDULE_SPEC_HASH] = "other"
    plan = decide(snap(template=first.template, cronjob=foreign))
    assert plan.writes == ()
    assert cond(plan, "Warning") == ("True", "ChildNameTaken")
    assert plan.requeue_after == FOREIGN_CHILD_REQUEUE_SECONDS


def test_being_deleted_does_nothing() -> None:
    s = sched()
    s["metadata"]["deletionTimestamp"] = format_time(NOW - timedelta(seconds=1))
    assert decide(snap(s)) == SchedulePlan()


# -- the invalid paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "has_target", "condition", "reason"),
    [
        ({"cron": ""}, True, "InvalidSpec", "InvalidSpec"),
        ({"cron": "0 0 0 * * *"}, True, "InvalidSpec", "InvalidCron"),
        ({"timezone": "Nowhere/Land"}, True, "InvalidSpec", "InvalidTimeZone"),
        ({"targetRef": {"kind": "Job", "name": "x"}}, True, "InvalidSpec", "UnsupportedTargetKind"),
        ({"targetRef": {"kind": "AgentRun", "name": ""}}, True, "InvalidSpec", "MissingTargetRef"),
        (
            {"targetRef": {"kind": "AgentRun", "name": "tpl", "namespace": "elsewhere"}},
            True,
            "InvalidSpec",
            "CrossNamespaceTarget",
        ),
        ({}, False, "TargetResolved", "MissingTarget"),
    ],
)
def test_invalid_schedules_say_why_and_remove_the_cronjob(
    spec: dict[str, Any], has_target: bool, condition: str, reason: str
) -> None:
    base = settled()
    s = sched(status={"phase": PHASE_ACTIVE}, **spec)
    plan = decide(
        snap(s, target=target() if has_target else None, template=base.template, cronjob=base.cronjob)
    )
    assert plan.phase == PHASE_INVALID and plan.writes == ()
    assert plan.deletes == ((CRONJOBS, "every5-cron"), (CONFIGMAPS, "every5-template"))
    expected = "True" if condition == "InvalidSpec" else "False"
    assert cond(plan, condition) == (expected, reason)
    assert cond(plan, "Ready") == ("False", reason)
    assert cond(plan, "Degraded")[0] == "True"
    assert plan.status is not None and "nextRunTime" not in plan.status and "cronJobName" not in plan.status
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]
    assert plan.requeue_after is None


def test_a_target_without_spec_is_invalid() -> None:
    plan = decide(snap(target={"metadata": {"name": "tpl", "namespace": "ns"}}))
    assert plan.phase == PHASE_INVALID
    assert cond(plan, "TargetResolved") == ("False", "InvalidTarget")


def test_an_invalid_schedule_turns_active_when_the_target_appears() -> None:
    invalid = decide(snap(target=None))
    assert invalid.status is not None
    plan = decide(snap(sched(status=invalid.status)))
    assert plan.phase == PHASE_ACTIVE and len(plan.writes) == 2
    assert cond(plan, "TargetResolved") == ("True", "TargetFound")
    assert [e.reason for e in plan.events] == ["Active"]


def test_service_account_choice() -> None:
    s = sched()
    assert cronjob_inputs(s, SETTINGS).service_account is None
    own = Settings.from_env({"JANGAR_POD_NAMESPACE": "ns", "JANGAR_SERVICE_ACCOUNT_NAME": "jangar"})
    assert cronjob_inputs(s, own).service_account == "jangar"
    other = Settings.from_env(
        {"JANGAR_POD_NAMESPACE": "jangar-system", "JANGAR_SERVICE_ACCOUNT_NAME": "jangar"}
    )
    assert cronjob_inputs(s, other).service_account is None
    explicit = Settings.from_env(
        {"JANGAR_SCHEDULE_SERVICE_ACCOUNT": "runner", "JANGAR_SCHEDULE_RUNNER_IMAGE": "r:2"}
    )
    inputs = cronjob_inputs(s, explicit)
    assert inputs.service_account == "runner" and inputs.image == "r:2"
