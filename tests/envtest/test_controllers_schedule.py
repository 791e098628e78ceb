"""The Schedule controller and `jangar schedule fire` (run as a process) against a real API server.

envtest has no CronJob or Job controller: the test creates the Job the CronJob controller would create for
a tick (its name and `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation) and runs the fire
command as that Job's pod would, with `--job`. The kwok tier runs the real CronJob controller.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jangar.api.contract import (
    ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP,
    ANNOTATION_SCHEDULED_TIME,
    LABEL_DELIVERY_ID,
    LABEL_SCHEDULE,
)
from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS, SCHEDULES
from jangar.controllers.kinds import AGENTRUNS, CONFIGMAPS, EVENTS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from jangar.scheduler.naming import label_value
from jangar.scheduler.schedules import CRONJOBS, delivery_id
from tests.envtest.controllers_fixtures import ControllerProcess, apply_basics, cond, eventually, run
from tests.support.commands import Completed, run_command


def schedule(ns: str, name: str = "every-minute", **spec: Any) -> dict[str, Any]:
    base = {"cron": "* * * * *", "targetRef": {"kind": "AgentRun", "name": "template-run"}}
    return {"metadata": {"name": name, "namespace": ns}, "spec": base | spec}


async def status_of(client: Client, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await client.get(SCHEDULES, name, ns)
    return obj


async def wait_schedule(client: Client, ns: str, name: str, phase: str, **fields: Any) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await status_of(client, ns, name)
        st = obj.get("status") or {}
        ok = st.get("phase") == phase and st.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if ok and all(st.get(k) == v for k, v in fields.items()) else None

    found: dict[str, Any] = await eventually(check, timeout=30, what=f"schedule {name} {phase} {fields}")
    return found


async def fire(kubeconfig: Path, ns: str, name: str, *extra: str) -> Completed:
    return await run_command(
        "jangar.cli",
        "schedule",
        "fire",
        "--schedule",
        f"{ns}/{name}",
        "--kubeconfig",
        str(kubeconfig),
        *extra,
    )


async def tick_job(client: Client, ns: str, cron_job: str, tick: datetime) -> str:
    """The Job the CronJob controller creates for `tick` (name `<cronjob>-<minutes>`, the annotation in the
    CronJob's zone, here +01:00 to show the offset is honoured)."""
    name = f"{cron_job}-{int(tick.timestamp()) // 60}"
    stamp = tick.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    body = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP: stamp},
        },
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }
        },
    }
    await client.create(JOBS, body)
    return name


async def scheduled_runs(client: Client, ns: str, name: str) -> list[dict[str, Any]]:
    items = (await client.list(AGENTRUNS, namespace=ns, label_selector=f"{LABEL_SCHEDULE}={name}")).items
    return sorted(items, key=lambda r: r["metadata"]["name"])


async def test_schedule_becomes_active_with_its_children(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "template-run"))
    created = await client.create(SCHEDULES, schedule(namespace, timezone="Europe/Berlin"))
    obj = await wait_schedule(client, namespace, "every-minute", "Active")
    st = obj["status"]
    assert st["cronJobName"] == "every-minute-cron" and st["templateName"] == "every-minute-template"
    assert cond(obj, "Ready")["status"] == "True" and cond(obj, "TargetResolved")["status"] == "True"
    next_run = datetime.fromisoformat(st["nextRunTime"])
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(seconds=61)
    cron = await client.get(CRONJOBS, "every-minute-cron", namespace)
    assert cron["spec"]["schedule"] == "* * * * *" and cron["spec"]["timeZone"] == "Europe/Berlin"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["suspend"] is False
    owner = cron["metadata"]["ownerReferences"][0]
    assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True
    cm = await client.get(CONFIGMAPS, "every-minute-template", namespace)
    assert cm["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert '"agentRef"' in cm["data"]["run.json"]

    # a deleted CronJob is recreated (owner-reference watch)
    await client.delete(CRONJOBS, "every-minute-cron", namespace)

    async def recreated() -> dict[str, Any] | None:
        try:
            again: dict[str, Any] = await client.get(CRONJOBS, "every-minute-cron", namespace)
        except NotFoundError:
            return None
        return again if again["metadata"]["uid"] != cron["metadata"]["uid"] else None

    await eventually(recreated, timeout=30, what="CronJob recreated")

    # suspend: the CronJob is suspended, no next run
    await client.patch(SCHEDULES, "every-minute", {"spec": {"suspend": True}}, namespace=namespace)
    obj = await wait_schedule(client, namespace, "every-minute", "Suspended")
    assert "nextRunTime" not in obj["status"]
    assert (await client.get(CRONJOBS, "every-minute-cron", namespace))["spec"]["suspend"] is True

    # the target goes: Invalid, MissingTarget, the CronJob removed
    await client.patch(SCHEDULES, "every-minute", {"spec": {"suspend": False}}, namespace=namespace)
    await wait_schedule(client, namespace, "every-minute", "Active")
    await client.delete(AGENTRUNS, "template-run", namespace)
    obj = await wait_schedule(client, namespace, "every-minute", "Invalid")
    assert cond(obj, "TargetResolved")["reason"] == "MissingTarget"

    async def cron_gone() -> bool | None:
        try:
            await client.get(CRONJOBS, "every-minute-cron", namespace)
        except NotFoundError:
            return True
        return None

    await eventually(cron_gone, timeout=30, what="CronJob deleted")
    events = (await client.list(EVENTS, namespace)).items
    reasons = {e["reason"] for e in events if e["involvedObject"]["kind"] == "Schedule"}
    assert {"Active", "Suspended", "Resumed", "MissingTarget"} <= reasons


async def test_invalid_cron_says_so(controller: ControllerProcess, client: Client, namespace: str) -> None:
    await client.create(SCHEDULES, schedule(namespace, "bad", cron="0 0 0 * * *"))
    obj = await wait_schedule(client, namespace, "bad", "Invalid")
    assert cond(obj, "InvalidSpec") == {**cond(obj, "InvalidSpec"), "status": "True", "reason": "InvalidCron"}
    try:
        await client.get(CRONJOBS, "bad-cron", namespace)
        raise AssertionError("an invalid Schedule has no CronJob")
    except NotFoundError:
        pass


async def test_fire_is_idempotent_per_tick_with_a_delivery_id_per_tick(
    envtest: LocalCluster, controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "template-run", parameters={"prompt": "nightly"}))
    await client.create(SCHEDULES, schedule(namespace))
    await wait_schedule(client, namespace, "every-minute", "Active")

    tick = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    job = await tick_job(client, namespace, "every-minute-cron", tick)
    first = await fire(envtest.kubeconfig, namespace, "every-minute", "--job", job)
    assert first.returncode == 0, first.stderr
    assert "every-minute-202603040506 created" in first.stdout
    again = await fire(envtest.kubeconfig, namespace, "every-minute", "--job", job)
    assert again.returncode == 0, again.stderr
    assert "unchanged (already created for this tick)" in again.stdout
    runs = await scheduled_runs(client, namespace, "every-minute")
    assert [r["metadata"]["name"] for r in runs] == ["every-minute-202603040506"]
    (created,) = runs
    did = delivery_id(namespace, "every-minute", tick)
    assert created["spec"]["idempotencyKey"] == did
    assert created["spec"]["parameters"] == {"prompt": "nightly"}
    assert created["metadata"]["labels"][LABEL_DELIVERY_ID] == label_value(did)
    assert created["metadata"]["annotations"][ANNOTATION_SCHEDULED_TIME] == "2026-03-04T05:06:00Z"

    # the next tick: a second run with its own delivery id
    job2 = await tick_job(client, namespace, "every-minute-cron", tick + timedelta(minutes=1))
    second = await fire(envtest.kubeconfig, namespace, "every-minute", "--job", job2)
    assert second.returncode == 0, second.stderr
    runs = await scheduled_runs(client, namespace, "every-minute")
    assert [r["metadata"]["name"] for r in runs] == ["every-minute-202603040506", "every-minute-202603040507"]
    assert len({r["spec"]["idempotencyKey"] for r in runs}) == 2

    # a Job name the fire command can parse but no Job (no access, or gone): the name's minute is used
    later = tick + timedelta(minutes=2)
    third = await fire(
        envtest.kubeconfig,
        namespace,
        "every-minute",
        "--job",
        f"every-minute-cron-{int(later.timestamp()) // 60}",
    )
    assert third.returncode == 0, third.stderr
    assert "every-minute-202603040508 created" in third.stdout

    # the controller reports the newest run
    obj = await wait_schedule(client, namespace, "every-minute", "Active", lastRunTime="2026-03-04T05:08:00Z")
    assert obj["status"]["lastRun"]["name"] == "every-minute-202603040508"


async def test_a_suspended_schedule_does_not_fire_unless_forced(
    envtest: LocalCluster, controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(AGENTRUNS, run(namespace, "template-run"))
    await client.create(SCHEDULES, schedule(namespace, suspend=True))
    await wait_schedule(client, namespace, "every-minute", "Suspended")
    skipped = await fire(envtest.kubeconfig, namespace, "every-minute")
    assert skipped.returncode == 0, skipped.stderr
    assert "not fired" in skipped.stdout and "suspended" in skipped.stdout
    assert await scheduled_runs(client, namespace, "every-minute") == []
    ctl = ("--kubeconfig", str(envtest.kubeconfig), "-n", namespace, "schedule")
    forced = await run_command("jangar.agentctl", *ctl, "fire", "every-minute", "--now")
    assert forced.returncode == 0, forced.stderr
    assert "agentrun.agents.proompteng.ai/every-minute-" in forced.stdout
    listed = await run_command("jangar.agentctl", *ctl, "list")
    assert listed.returncode == 0 and listed.stdout.split("\t")[:2] == ["every-minute", "Suspended"]
    got = await run_command("jangar.agentctl", *ctl, "get", "every-minute")
    assert got.returncode == 0 and '"suspend": true' in got.stdout
    (made,) = await scheduled_runs(client, namespace, "every-minute")
    stamp = made["metadata"]["annotations"][ANNOTATION_SCHEDULED_TIME]
    assert abs(datetime.fromisoformat(stamp) - datetime.now(UTC)) < timedelta(minutes=2)
    assert stamp.endswith(":00Z")  # now, truncated to the minute


async def test_fire_errors(envtest: LocalCluster, client: Client, namespace: str) -> None:
    missing = await fire(envtest.kubeconfig, namespace, "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr
    bad = await run_command("jangar.cli", "schedule", "fire", "--schedule", "no-namespace")
    assert bad.returncode == 2
    # a Schedule without its template (no controller running): says the Schedule is not Active
    await client.create(SCHEDULES, schedule(namespace))
    orphan = await fire(envtest.kubeconfig, namespace, "every-minute")
    assert orphan.returncode == 1 and "not Active" in orphan.stderr


async def test_an_orchestration_run_target(
    envtest: LocalCluster, controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(
        ORCHESTRATIONS,
        {
            "metadata": {"name": "o", "namespace": namespace},
            "spec": {"steps": [{"name": "c", "kind": "Checkpoint"}]},
        },
    )
    await client.create(
        ORCHESTRATIONRUNS,
        {
            "metadata": {"name": "o-template", "namespace": namespace},
            "spec": {"orchestrationRef": {"name": "o"}},
        },
    )
    await client.create(
        SCHEDULES, schedule(namespace, "orch", targetRef={"kind": "OrchestrationRun", "name": "o-template"})
    )
    await wait_schedule(client, namespace, "orch", "Active")
    done = await fire(envtest.kubeconfig, namespace, "orch")
    assert done.returncode == 0, done.stderr
    items = (
        await client.list(ORCHESTRATIONRUNS, namespace=namespace, label_selector=f"{LABEL_SCHEDULE}=orch")
    ).items
    (made,) = items
    assert made["spec"]["orchestrationRef"] == {"name": "o"}
    assert made["spec"]["deliveryId"].startswith(f"schedule:{namespace}/orch@")
