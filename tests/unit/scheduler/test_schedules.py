"""The pure Schedule rules: names, cron and zone checks, next ticks, the template, a tick's run, the CronJob."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from jangar.api.contract import (
    ANNOTATION_SCHEDULED_TIME,
    LABEL_DELIVERY_ID,
    LABEL_SCHEDULE,
    SCHEDULE_DELIVERY_PLACEHOLDER,
)
from jangar.scheduler.naming import label_value
from jangar.scheduler.schedules import (
    CronJobInputs,
    TemplateError,
    build_cronjob,
    build_template,
    cron_problem,
    cronjob_name,
    delivery_id,
    next_run_time,
    parse_template,
    run_for_tick,
    run_name,
    template_name,
    tick_from_job_name,
    timezone_problem,
)

TICK = datetime(2026, 1, 2, 2, 0, 0, tzinfo=UTC)


def schedule(**spec: Any) -> dict[str, Any]:
    base = {"cron": "0 2 * * *", "targetRef": {"kind": "AgentRun", "name": "template-run"}}
    return {"metadata": {"name": "nightly", "namespace": "agents", "uid": "s-uid"}, "spec": base | spec}


def agentrun(**meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {"name": "template-run", "namespace": "agents", "uid": "r-uid", **meta},
        "spec": {
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "runtime": {"type": "job"},
            "idempotencyKey": "the-original",
            "parameters": {"prompt": "hello", "tag": f"run-{SCHEDULE_DELIVERY_PLACEHOLDER}"},
        },
    }


# -- names ------------------------------------------------------------------------------------------


def test_child_names_follow_the_reference_and_fit_their_limits() -> None:
    assert template_name("nightly") == "nightly-template"
    assert cronjob_name("nightly") == "nightly-cron"
    long = "a" * 100
    assert len(template_name(long)) <= 63 and template_name(long).endswith("-template")
    assert len(cronjob_name(long)) <= 52 and cronjob_name(long).endswith("-cron")
    assert cronjob_name(long) != cronjob_name("a" * 99)  # shortened with a hash of the whole name


def test_run_name_and_delivery_id_are_functions_of_the_tick() -> None:
    assert run_name("nightly", TICK) == "nightly-202601020200"
    assert run_name("nightly", TICK.replace(second=42)) == run_name("nightly", TICK)
    assert run_name("nightly", TICK.replace(minute=1)) != run_name("nightly", TICK)
    assert delivery_id("agents", "nightly", TICK) == "schedule:agents/nightly@2026-01-02T02:00Z"
    assert delivery_id("other", "nightly", TICK) != delivery_id("agents", "nightly", TICK)
    assert len(run_name("x" * 80, TICK)) <= 63


def test_the_tick_is_read_back_from_the_cronjob_controllers_job_name() -> None:
    minutes = int(TICK.timestamp()) // 60
    assert tick_from_job_name(f"nightly-cron-{minutes}", "nightly-cron") == TICK
    assert tick_from_job_name("nightly-cron-manual", "nightly-cron") is None
    assert tick_from_job_name(f"other-cron-{minutes}", "nightly-cron") is None


# -- cron and zones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("0 2 * * *", None),
        ("*/5 * * * 1-5", None),
        ("@hourly", None),
        (None, "spec.cron is required"),
        ("  ", "spec.cron is required"),
        ("0 0 2 * * *", "five fields"),
        ("61 * * * *", "not a valid cron"),
        ("TZ=UTC 0 2 * * *", "spec.timezone"),
        ("@sometimes", "five fields"),
    ],
)
def test_cron_problems(expr: str | None, problem: str | None) -> None:
    found = cron_problem(expr)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_timezone_problems() -> None:
    assert timezone_problem(None) is None and timezone_problem("Europe/Berlin") is None
    assert "not a known IANA" in (timezone_problem("Mars/Olympus") or "")
    # longer than a file name: zoneinfo raises OSError (ENAMETOOLONG), found by the fuzz tier
    long_zone = timezone_problem("x" * 300) or ""
    assert "not a known IANA" in long_zone and len(long_zone) < 200


def test_next_run_is_strictly_after_and_read_in_the_schedules_zone() -> None:
    assert next_run_time("0 2 * * *", None, TICK) == datetime(2026, 1, 3, 2, 0, tzinfo=UTC)
    assert next_run_time("0 2 * * *", "UTC", TICK.replace(hour=1)) == TICK
    # 02:00 in Berlin is 01:00Z in winter and 00:00Z in summer
    assert next_run_time("0 2 * * *", "Europe/Berlin", TICK) == datetime(2026, 1, 3, 1, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_run_time("0 2 * * *", "Europe/Berlin", summer) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
    assert next_run_time("@hourly", None, TICK.replace(minute=30)) == TICK.replace(hour=3)


# -- template and run ------------------------------------------------------------------------------------


def test_template_copies_the_whole_spec_with_the_placeholder() -> None:
    target = agentrun(
        labels={"team": "a", "agents.proompteng.ai/agent-run": "x", "agents.proompteng.ai/delivery-id": "old"}
    )
    tpl = build_template(schedule(), target)
    assert tpl["kind"] == "AgentRun" and tpl["apiVersion"] == "agents.proompteng.ai/v1alpha1"
    assert tpl["spec"]["idempotencyKey"] == SCHEDULE_DELIVERY_PLACEHOLDER
    assert tpl["spec"]["agentRef"] == {"name": "coder"} and tpl["spec"]["runtime"] == {"type": "job"}
    labels = tpl["metadata"]["labels"]
    assert labels[LABEL_SCHEDULE] == "nightly" and labels["team"] == "a"
    assert labels[LABEL_DELIVERY_ID] == SCHEDULE_DELIVERY_PLACEHOLDER
    # the 0.9.29 label: the target's own value is not copied, the template carries the placeholder in it too
    assert labels["agents.proompteng.ai/delivery-id"] == SCHEDULE_DELIVERY_PLACEHOLDER
    assert "agents.proompteng.ai/agent-run" not in labels
    assert tpl["metadata"]["generateName"] == "nightly-"
    assert target["spec"]["idempotencyKey"] == "the-original"  # the target is not changed


def test_a_template_target_makes_runs_that_do_run() -> None:
    """A 0.9.29 template AgentRun (never run itself) is copied without its template annotation."""
    target = agentrun(annotations={"agents.proompteng.ai/template": "true", "team/owner": "a"})
    meta = build_template(schedule(), target)["metadata"]
    assert meta["annotations"] == {"team/owner": "a"}


def test_an_orchestration_run_template_uses_delivery_id() -> None:
    target = {
        "kind": "OrchestrationRun",
        "metadata": {"name": "t"},
        "spec": {"orchestrationRef": {"name": "o"}, "parameters": {"a": "1"}},
    }
    tpl = build_template(schedule(targetRef={"kind": "OrchestrationRun", "name": "t"}), target)
    assert tpl["spec"]["deliveryId"] == SCHEDULE_DELIVERY_PLACEHOLDER
    run = run_for_tick(tpl, "agents", "nightly", TICK)
    assert run["spec"]["deliveryId"] == delivery_id("agents", "nightly", TICK)
    assert run["apiVersion"] == "orchestration.proompteng.ai/v1alpha1"


def test_run_for_tick_is_valid_and_deterministic() -> None:
    tpl = parse_template(json.dumps(build_template(schedule(), agentrun())))
    run = run_for_tick(tpl, "agents", "nightly", TICK)
    did = delivery_id("agents", "nightly", TICK)
    meta = run["metadata"]
    assert meta["name"] == "nightly-202601020200" and meta["namespace"] == "agents"
    assert "generateName" not in meta
    assert run["spec"]["idempotencyKey"] == did
    assert run["spec"]["parameters"]["tag"] == f"run-{did}"  # placeholders in the spec are substituted
    assert meta["labels"][LABEL_DELIVERY_ID] == label_value(did)
    assert meta["labels"]["agents.proompteng.ai/delivery-id"] == label_value(did)
    assert meta["labels"][LABEL_SCHEDULE] == "nightly"
    assert meta["annotations"][ANNOTATION_SCHEDULED_TIME] == "2026-01-02T02:00:00Z"
    assert SCHEDULE_DELIVERY_PLACEHOLDER not in json.dumps(run)  # the reference's bug: never left behind
    assert run_for_tick(tpl, "agents", "nightly", TICK) == run
    other = run_for_tick(tpl, "agents", "nightly", TICK.replace(minute=5))
    assert other["metadata"]["name"] != meta["name"]
    assert other["spec"]["idempotencyKey"] != did


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "has no run.json"),
        ("{", "not JSON"),
        ('{"kind": "Pod", "spec": {}}', "AgentRun or OrchestrationRun"),
        ('{"kind": "AgentRun"}', "has no spec"),
    ],
)
def test_bad_templates(text: str | None, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(text)


# -- the CronJob -------------------------------------------------------------------------------------


def test_cronjob_shape() -> None:
    owner = {"apiVersion": "schedules.proompteng.ai/v1alpha1", "kind": "Schedule", "name": "nightly"}
    cron = build_cronjob(
        schedule(timezone="Europe/Berlin"), CronJobInputs("img:1", "schedule-runner", {**owner, "uid": "u"})
    )
    spec = cron["spec"]
    assert cron["metadata"]["name"] == "nightly-cron"
    assert cron["metadata"]["labels"][LABEL_SCHEDULE] == "nightly"
    assert cron["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert spec["schedule"] == "0 2 * * *" and spec["timeZone"] == "Europe/Berlin"
    assert spec["concurrencyPolicy"] == "Forbid" and spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 1
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "schedule-runner" and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["name"] == "schedule-runner" and container["image"] == "img:1"
    assert [*container["command"], *container["args"]] == [
        "jangar",
        "schedule",
        "fire",
        "--schedule",
        "agents/nightly",
    ]
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['job-name']"
    assert spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"][LABEL_SCHEDULE] == "nightly"


def test_cronjob_options_from_the_schedule() -> None:
    cron = build_cronjob(
        schedule(
            suspend=True,
            concurrencyPolicy="Replace",
            startingDeadlineSeconds=120,
            successfulJobsHistoryLimit=0,
            failedJobsHistoryLimit=5,
        ),
        CronJobInputs("img", None, None),
    )
    spec = cron["spec"]
    assert spec["suspend"] is True and spec["concurrencyPolicy"] == "Replace"
    assert spec["startingDeadlineSeconds"] == 120
    assert spec["successfulJobsHistoryLimit"] == 0 and spec["failedJobsHistoryLimit"] == 5
    assert "timeZone" not in spec and "ownerReferences" not in cron["metadata"]
    assert "serviceAccountName" not in spec["jobTemplate"]["spec"]["template"]["spec"]
