"""Schedules on the kwok cluster: the real CronJob controller (kube-controller-manager) creates the fire Job
on the tick, with the shape the Schedule controller gave it; a suspended Schedule creates none.

kwok completes Pods without running their containers, so the test plays each fire Job's pod: it runs
`jangar schedule fire` as a process with the Job's name in `$JANGAR_SCHEDULE_JOB_NAME` (what the downward
API gives the real pod), once per pod — twice for one Job, as a retried pod would. Each tick's run is created
once, with the tick's delivery id, and runs to Succeeded on kwok; the controller reports and counts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from jangar.api.contract import ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP, LABEL_SCHEDULE
from jangar.api.refs import SCHEDULES
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from jangar.scheduler.schedules import CRONJOBS, ENV_JOB_NAME, delivery_id, tick_from_job_name
from tests.envtest.controllers_fixtures import (
    apply_basics,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)
from tests.support.commands import run_command

EXAMPLES = Path(__file__).resolve().parents[2] / "charts" / "agents" / "examples"


def schedule(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    base = {"cron": "* * * * *", "targetRef": {"kind": "AgentRun", "name": "template-run"}}
    return {"metadata": {"name": name, "namespace": ns}, "spec": base | spec}


async def jobs_of(client: Client, ns: str, name: str) -> list[dict[str, Any]]:
    return (await client.list(JOBS, namespace=ns, label_selector=f"{LABEL_SCHEDULE}={name}")).items


async def test_the_cronjob_controller_fires_on_the_tick_and_not_when_suspended(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(ns, JANGAR_SCHEDULE_SERVICE_ACCOUNT="default", JANGAR_IMAGE="jangar:test")
    async with running_controller(kwok_cluster.kubeconfig, settings):
        await apply_basics(client, ns)
        await client.create(AGENTRUNS, run(ns, "template-run"))
        await client.create(SCHEDULES, schedule(ns, "ticking"))
        await client.create(SCHEDULES, schedule(ns, "paused", suspend=True))
        started = datetime.now(UTC)

        async def cronjobs() -> bool:
            try:
                a = await client.get(CRONJOBS, "ticking-cron", ns)
                b = await client.get(CRONJOBS, "paused-cron", ns)
            except NotFoundError:
                return False
            return a["spec"]["suspend"] is False and b["spec"]["suspend"] is True

        await eventually(cronjobs, timeout=60, what="both CronJobs")

        async def fired() -> dict[str, Any] | None:
            jobs = await jobs_of(client, ns, "ticking")
            return jobs[0] if jobs else None

        # the next minute boundary, with generous room for a loaded machine
        job: dict[str, Any] = await eventually(
            fired, timeout=150, interval=1.0, what="a Job from the CronJob"
        )
        meta = job["metadata"]
        assert meta["ownerReferences"][0]["kind"] == "CronJob"
        assert meta["ownerReferences"][0]["name"] == "ticking-cron"
        tick = tick_from_job_name(meta["name"], "ticking-cron")
        assert tick is not None and tick >= started - timedelta(minutes=1)
        stamp = datetime.fromisoformat(meta["annotations"][ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP])
        assert stamp == tick  # the annotation and the name agree: either gives the fire command its tick
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "jangar:test" and pod["serviceAccountName"] == "default"
        assert container["command"] + container["args"] == [
            "jangar",
            "schedule",
            "fire",
            "--schedule",
            f"{ns}/ticking",
        ]

        # the Schedule reports the CronJob's lastScheduleTime as its last run time (no run was created:
        # the container does not run on kwok)
        async def reported() -> dict[str, Any] | None:
            obj: dict[str, Any] = await client.get(SCHEDULES, "ticking", ns)
            st = obj.get("status") or {}
            return obj if st.get("lastScheduleTime") and st.get("lastRunTime") else None

        obj = await eventually(reported, timeout=60, what="lastScheduleTime in the Schedule's status")
        assert obj["status"]["phase"] == "Active"
        assert datetime.fromisoformat(obj["status"]["nextRunTime"]) > tick

        # a full minute boundary later the suspended Schedule still has no Job
        if datetime.now(UTC) < tick + timedelta(minutes=1, seconds=15):
            await eventually(
                lambda: _later_than(tick + timedelta(minutes=1, seconds=15)),
                timeout=120,
                interval=1.0,
                what="the next minute boundary",
            )
        assert await jobs_of(client, ns, "paused") == []
        paused: dict[str, Any] = await client.get(SCHEDULES, "paused", ns)
        assert paused["status"]["phase"] == "Suspended" and "lastScheduleTime" not in paused["status"]


async def _later_than(moment: datetime) -> bool:
    return datetime.now(UTC) >= moment


async def test_the_chart_schedule_sample_reconciles_truthfully(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    """schedule-sample.yaml names agentrun-sample.yaml's run: without it the Schedule is Invalid
    (MissingTarget) and has no CronJob; with it, Active with the sample's nightly cron."""
    ns = kwok_namespace
    sample: dict[str, Any] = yaml.safe_load((EXAMPLES / "schedule-sample.yaml").read_text())
    sample["metadata"]["namespace"] = ns
    target: dict[str, Any] = yaml.safe_load((EXAMPLES / "agentrun-sample.yaml").read_text())
    target["metadata"]["namespace"] = ns
    name = sample["metadata"]["name"]
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await client.create(SCHEDULES, sample)

        async def phase(want: str) -> dict[str, Any] | None:
            obj: dict[str, Any] = await client.get(SCHEDULES, name, ns)
            return obj if (obj.get("status") or {}).get("phase") == want else None

        invalid = await eventually(lambda: phase("Invalid"), timeout=60, what="Invalid")
        reasons = {c["type"]: c["reason"] for c in invalid["status"]["conditions"]}
        assert reasons["TargetResolved"] == "MissingTarget" and reasons["Ready"] == "MissingTarget"
        await client.create(AGENTRUNS, target)
        active = await eventually(lambda: phase("Active"), timeout=60, what="Active")
        cron = await client.get(CRONJOBS, f"{name}-cron", ns)
        assert cron["spec"]["schedule"] == "0 2 * * *" and cron["spec"]["timeZone"] == "UTC"
        next_run = datetime.fromisoformat(active["status"]["nextRunTime"])
        assert (next_run.hour, next_run.minute) == (2, 0)


async def test_each_tick_of_the_cronjob_creates_its_run_once_with_its_own_delivery_id(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(ns, JANGAR_SCHEDULE_SERVICE_ACCOUNT="default", JANGAR_IMAGE="jangar:test")
    async with running_controller(kwok_cluster.kubeconfig, settings) as controller:
        await apply_basics(client, ns)
        await client.create(AGENTRUNS, run(ns, "template-run"))
        await client.create(SCHEDULES, schedule(ns, "ticks"))

        async def play_pod(job: str) -> str:
            done = await run_command(
                "jangar.cli",
                "schedule",
                "fire",
                "--schedule",
                f"{ns}/ticks",
                "--kubeconfig",
                str(kwok_cluster.kubeconfig),
                env={ENV_JOB_NAME: job},
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        async def job_after(seen: set[str]) -> dict[str, Any] | None:
            fresh = [j for j in await jobs_of(client, ns, "ticks") if j["metadata"]["name"] not in seen]
            return sorted(fresh, key=lambda j: str(j["metadata"]["name"]))[0] if fresh else None

        ticks: list[datetime] = []
        runs: list[dict[str, Any]] = []
        seen: set[str] = set()
        for attempt in range(2):
            job = await eventually(
                lambda: job_after(seen), timeout=150, interval=1.0, what=f"fire Job {attempt + 1}"
            )
            name = job["metadata"]["name"]
            seen.add(name)
            tick = tick_from_job_name(name, "ticks-cron")
            assert tick is not None
            ticks.append(tick)
            out = await play_pod(name)
            assert "created" in out and delivery_id(ns, "ticks", tick) in out, out
            if attempt == 0:  # a second pod of the same Job (a retry) creates nothing more
                assert "unchanged (already created for this tick)" in await play_pod(name)
            run_name = f"ticks-{tick.strftime('%Y%m%d%H%M')}"
            runs.append(await wait_phase(client, ns, run_name, "Succeeded", "Failed", timeout=120))

        assert ticks[1] > ticks[0]
        scheduled = (await client.list(AGENTRUNS, ns, label_selector=f"{LABEL_SCHEDULE}=ticks")).items
        assert sorted(r["metadata"]["name"] for r in scheduled) == sorted(r["metadata"]["name"] for r in runs)
        assert [r["spec"]["idempotencyKey"] for r in runs] == [delivery_id(ns, "ticks", t) for t in ticks]
        assert all(r["status"]["phase"] == "Succeeded" for r in runs), [r["status"] for r in runs]

        async def reported() -> dict[str, Any] | None:
            obj: dict[str, Any] = await client.get(SCHEDULES, "ticks", ns)
            last = (obj.get("status") or {}).get("lastRun") or {}
            return obj if last.get("name") == runs[1]["metadata"]["name"] else None

        status = (await eventually(reported, timeout=60, what="lastRun is the second tick's run"))["status"]
        assert datetime.fromisoformat(status["lastRunTime"]) == ticks[1]
        assert controller.manager is not None
        registry = controller.manager.metrics.registry

        async def counted() -> bool:
            fires = registry.get_sample_value(
                "jangar_schedule_fires_total", {"namespace": ns, "result": "created"}
            )
            return fires == 2

        await eventually(counted, timeout=30, what="two created fires counted")
        stamp = registry.get_sample_value(
            "jangar_schedule_last_fire_timestamp_seconds", {"namespace": ns, "schedule": "ticks"}
        )
        assert stamp == ticks[1].timestamp()
