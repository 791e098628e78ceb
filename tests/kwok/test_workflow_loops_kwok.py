"""0.9.29 workflow run features on the kwok cluster (issue 13): step loops and per-step timeouts, driven by
the real Job controller and kwok's fake kubelet.

Loop-control data travels as it does in a real pod: the step's container terminates with a termination
message holding `"loopControl": {...}` (what jangar-runner reports from the control file). On kwok the
`OUTPUTS_IMAGE` Pods terminate with their `KWOK_TERMINATION_MESSAGE` env value, rendered by the controller
from the provider's `envTemplate`, which sees `{{ step.iteration }}`: so each iteration reports its own
number, and the CEL condition `control.iteration < 3` turns false after the third. A timed-out attempt is
one whose Pod never starts (`PULL_BACKOFF_IMAGE`), so the deadline always wins: for an AgentRun step the Job
controller's own activeDeadlineSeconds, for an Orchestration step the OrchestrationRun controller's deadline."""

from __future__ import annotations

from typing import Any

from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS, TOOLS
from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, EVENTS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import OUTPUTS_IMAGE, PULL_BACKOFF_IMAGE, SLOW_IMAGE, TERMINATION_MESSAGE_ENV
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)

LOOPS_ON = {"JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED": "true"}


async def _reporter(client: Client, ns: str, name: str, message: str | None) -> None:
    """An AgentProvider (and Agent of the same name) whose step containers end with `message`."""
    spec: dict[str, Any] = {"binary": "/usr/local/bin/agent", "argsTemplate": ["{{ parameters.prompt }}"]}
    if message is not None:
        spec["envTemplate"] = {TERMINATION_MESSAGE_ENV: message}
    await client.create(AGENTPROVIDERS, {"metadata": {"name": name, "namespace": ns}, "spec": spec})
    await client.create(
        AGENTS, {"metadata": {"name": name, "namespace": ns}, "spec": {"providerRef": {"name": name}}}
    )


def _workflow(ns: str, name: str, agent: str, steps: list[dict[str, Any]], image: str = OUTPUTS_IMAGE) -> Any:
    return run(
        ns,
        name,
        agent_name=agent,
        runtime={"type": "workflow"},
        workflow={"steps": steps},
        workload={"image": image},
    )


async def _step_jobs(client: Client, ns: str, run_name: str) -> list[str]:
    return sorted(
        j["metadata"]["name"]
        for j in (await client.list(JOBS, ns)).items
        if j["metadata"]["name"].startswith(f"{run_name}-step-")
    )


async def test_a_fixed_loop_runs_one_job_per_iteration_and_records_each(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns, **LOOPS_ON)):
        await apply_basics(client, ns)
        await _reporter(client, ns, "looper", None)
        steps = [{"name": "work", "loop": {"maxIterations": 3}}, {"name": "after"}]
        await client.create(AGENTRUNS, _workflow(ns, "fixed", "looper", steps))
        done = await wait_phase(client, ns, "fixed", "Succeeded", "Failed", timeout=120)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        work, after = done["status"]["workflow"]["steps"]
        loop = work["loop"]
        assert (loop["iteration"], loop["stopReason"], loop["retained"], loop["pruned"]) == (
            3,
            "MaxIterationsReached",
            3,
            0,
        )
        assert [(i["index"], i["phase"]) for i in loop["iterations"]] == [(k, "Succeeded") for k in (1, 2, 3)]
        assert [i["jobRef"]["name"] for i in loop["iterations"]] == [
            f"fixed-step-1-iter-{k}-attempt-1" for k in (1, 2, 3)
        ]
        assert all(i["jobRef"].get("uid") for i in loop["iterations"])
        assert after["phase"] == "Succeeded" and "loop" not in after
        assert await _step_jobs(client, ns, "fixed") == [
            "fixed-step-1-iter-1-attempt-1",
            "fixed-step-1-iter-2-attempt-1",
            "fixed-step-1-iter-3-attempt-1",
            "fixed-step-2-attempt-1",
        ]


async def test_a_conditional_loop_stops_when_the_cel_condition_turns_false(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns, **LOOPS_ON)):
        await apply_basics(client, ns)
        await _reporter(client, ns, "counter", '{"loopControl": {"iteration": {{ step.iteration }}}}')
        loop = {"maxIterations": 10, "condition": {"cel": "control.iteration < 3"}, "historyLimit": 2}
        await client.create(AGENTRUNS, _workflow(ns, "cond", "counter", [{"name": "work", "loop": loop}]))
        done = await wait_phase(client, ns, "cond", "Succeeded", "Failed", timeout=120)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        state = done["status"]["workflow"]["steps"][0]["loop"]
        assert (state["iteration"], state["stopReason"]) == (3, "ConditionFalse")
        assert [i["index"] for i in state["iterations"]] == [2, 3]  # historyLimit 2
        assert (state["pruned"], state["retained"]) == (1, 2)
        assert len(await _step_jobs(client, ns, "cond")) == 3


async def test_missing_or_invalid_control_data_stops_or_fails_the_run_per_policy(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns, **LOOPS_ON)):
        await apply_basics(client, ns)
        await _reporter(client, ns, "silent", None)
        await _reporter(client, ns, "garbled", '{"loopControl": "not an object"}')
        loop = {"maxIterations": 5, "condition": {"cel": "control.more"}}
        # missing data, default policy stop: the loop ends, the run goes on and succeeds
        await client.create(
            AGENTRUNS, _workflow(ns, "quiet", "silent", [{"name": "work", "loop": loop}, {"name": "next"}])
        )
        # invalid data, default policy fail: the run fails
        await client.create(AGENTRUNS, _workflow(ns, "bad", "garbled", [{"name": "work", "loop": loop}]))
        quiet = await wait_phase(client, ns, "quiet", "Succeeded", "Failed", timeout=120)
        bad = await wait_phase(client, ns, "bad", "Succeeded", "Failed", timeout=120)
        assert quiet["status"]["phase"] == "Succeeded", quiet["status"]
        assert quiet["status"]["workflow"]["steps"][0]["loop"]["stopReason"] == "ControlMissing"
        assert [s["phase"] for s in quiet["status"]["workflow"]["steps"]] == ["Succeeded", "Succeeded"]
        assert bad["status"]["phase"] == "Failed", bad["status"]
        assert cond(bad, "Failed")["reason"] == "WorkflowLoopControlInvalid"
        step = bad["status"]["workflow"]["steps"][0]
        assert (step["phase"], step["reason"], step["loop"]["stopReason"]) == (
            "Failed",
            "WorkflowLoopControlInvalid",
            "ControlInvalid",
        )
        assert "must be a JSON object" in step["message"]


async def test_loops_disabled_and_a_bad_condition_fail_the_run_before_any_job(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):  # loops off (the default)
        await apply_basics(client, ns)
        await _reporter(client, ns, "looper", None)
        await client.create(
            AGENTRUNS, _workflow(ns, "off", "looper", [{"name": "w", "loop": {"maxIterations": 2}}])
        )
        off = await wait_phase(client, ns, "off", "Failed", timeout=60)
        assert cond(off, "InvalidSpec")["reason"] == "WorkflowLoopsDisabled"
        assert "JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED" in cond(off, "InvalidSpec")["message"]
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns, **LOOPS_ON)):
        loop = {"maxIterations": 2, "condition": {"cel": "control.more &&"}}
        await client.create(AGENTRUNS, _workflow(ns, "typo", "looper", [{"name": "w", "loop": loop}]))
        typo = await wait_phase(client, ns, "typo", "Failed", timeout=60)
        assert cond(typo, "InvalidSpec")["reason"] == "InvalidLoopCondition"
        assert await _step_jobs(client, ns, "off") == [] and await _step_jobs(client, ns, "typo") == []


async def test_a_step_timeout_is_retried_then_fails_the_run_as_workflow_step_timed_out(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        step = {"name": "slow", "timeoutSeconds": 1, "retries": 1, "retryBackoffSeconds": 1}
        await client.create(AGENTRUNS, _workflow(ns, "late", "coder", [step], image=PULL_BACKOFF_IMAGE))
        done = await wait_phase(client, ns, "late", "Succeeded", "Failed", timeout=120)
        assert done["status"]["phase"] == "Failed", done["status"]
        assert cond(done, "Failed")["reason"] == "WorkflowStepTimedOut"
        entry = done["status"]["workflow"]["steps"][0]
        assert (entry["phase"], entry["reason"], entry["attempt"]) == ("Failed", "WorkflowStepTimedOut", 2)
        assert "timeoutSeconds=1" in entry["message"]
        jobs = {j["metadata"]["name"]: j for j in (await client.list(JOBS, ns)).items}
        for name in ("late-step-1-attempt-1", "late-step-1-attempt-2"):
            assert jobs[name]["spec"]["activeDeadlineSeconds"] == 1
            # the controller acts on FailureTarget, which the Job controller sets before Failed (after the
            # pods are gone): the last Job may not have its Failed condition yet
            ended = [
                c
                for c in jobs[name]["status"].get("conditions") or ()
                if c["type"] in ("Failed", "FailureTarget") and c["status"] == "True"
            ]
            assert ended and {c["reason"] for c in ended} == {"DeadlineExceeded"}, jobs[name]["status"]

        async def timed_out_events() -> list[str] | None:
            items = (await client.list(EVENTS, ns)).items
            said = [e["message"] for e in items if e.get("reason") == "WorkflowStepTimedOut"]
            return said if len(said) >= 2 else None

        said = await eventually(timed_out_events, timeout=30, what="two WorkflowStepTimedOut events")
        assert any(m.endswith("retrying") for m in said) and any(m.endswith("no attempt left") for m in said)


async def test_an_orchestration_step_timeout_is_retried_then_fails_as_step_timed_out(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        body = {"image": PULL_BACKOFF_IMAGE, "command": ["sleep", "10"]}
        await client.create(TOOLS, {"metadata": {"name": "sleeper", "namespace": ns}, "spec": body})
        step = {
            "name": "t",
            "kind": "ToolRun",
            "toolRef": {"name": "sleeper"},
            "timeoutSeconds": 1,
            "retries": 1,
            "retryBackoffSeconds": 1,
        }
        await client.create(
            ORCHESTRATIONS, {"metadata": {"name": "slow", "namespace": ns}, "spec": {"steps": [step]}}
        )
        await client.create(
            ORCHESTRATIONRUNS,
            {"metadata": {"name": "o", "namespace": ns}, "spec": {"orchestrationRef": {"name": "slow"}}},
        )

        async def finished() -> dict[str, Any] | None:
            obj: dict[str, Any] = await client.get(ORCHESTRATIONRUNS, "o", ns)
            return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

        done = await eventually(finished, timeout=120, interval=0.5, what="o finished")
        assert done["status"]["phase"] == "Failed", done["status"]
        (entry,) = done["status"]["stepStatuses"]
        assert (entry["reason"], entry["attempt"]) == ("StepTimedOut", 2)
        assert entry["message"].startswith("failed after 2 attempts; last: StepTimedOut")


async def test_a_controller_restart_mid_loop_duplicates_no_iteration(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(ns, **LOOPS_ON)
    async with running_controller(kwok_cluster.kubeconfig, settings):
        await apply_basics(client, ns)
        await _reporter(client, ns, "looper", None)
        steps = [{"name": "work", "loop": {"maxIterations": 3}}]
        await client.create(AGENTRUNS, _workflow(ns, "again", "looper", steps, image=SLOW_IMAGE))

        async def second_iteration() -> bool:
            obj = await client.get(AGENTRUNS, "again", ns)
            entries = ((obj.get("status") or {}).get("workflow") or {}).get("steps") or [{}]
            return ((entries[0].get("loop") or {}).get("iteration") or 0) >= 2

        await eventually(second_iteration, timeout=60, what="iteration 2 started")
    # the controller is gone while iteration 2 runs; a new one adopts it and finishes the loop
    async with running_controller(kwok_cluster.kubeconfig, settings):
        done = await wait_phase(client, ns, "again", "Succeeded", "Failed", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert await _step_jobs(client, ns, "again") == [f"again-step-1-iter-{k}-attempt-1" for k in (1, 2, 3)]
    loop = done["status"]["workflow"]["steps"][0]["loop"]
    assert [i["index"] for i in loop["iterations"]] == [1, 2, 3] and loop[
        "stopReason"
    ] == "MaxIterationsReached"
