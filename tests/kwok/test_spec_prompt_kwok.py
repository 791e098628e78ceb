"""issue 13 item 3 on the kwok cluster (real Job controller, scheduler, garbage collector, fake kubelet):
the Agent's system prompt reaches status and the Job (hash, run-owned ConfigMap or Secret volume), an edit
of an accepted run's spec stops it (SpecImmutableViolation, Job deleted) or only warns, the run's goal
reaches the pod, and the runner's termination message becomes `status.runner`."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS
from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, CONFIGMAPS, EVENTS, JOBS, SECRETS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import OUTPUTS_IMAGE, PULL_BACKOFF_IMAGE, TERMINATION_MESSAGE_ENV
from jangar.runtime import Client, NotFoundError
from jangar.settings import ControllerTuning
from tests.envtest.controllers_fixtures import (
    agent,
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)

PROMPT = "You are jangar's careful engineer. Never push to main."


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _env(job: dict[str, Any]) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or ()}


async def test_the_agents_prompt_is_hashed_into_status_and_delivered_to_the_job(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(AGENTS, agent(ns, "prompted", defaults={"systemPrompt": PROMPT}))
        secret_text = "secret system prompt"
        await client.create(
            SECRETS,
            {
                "metadata": {"name": "prompts", "namespace": ns},
                "data": {"system": base64.b64encode(secret_text.encode()).decode()},
            },
        )
        await client.create(
            AGENTS,
            agent(
                ns,
                "secretive",
                defaults={"systemPromptRef": {"kind": "Secret", "name": "prompts", "key": "system"}},
            ),
        )
        goal = {"objective": "ship the fix", "tokenBudget": 5000}
        await client.create(AGENTRUNS, run(ns, "inline", agent_name="prompted", parameters={}, goal=goal))
        await client.create(AGENTRUNS, run(ns, "fromsecret", agent_name="secretive", parameters={}))
        # a 0.9.1 run (prompt parameter, Agent without a prompt) runs unchanged next to them
        await client.create(AGENTRUNS, run(ns, "legacy"))

        done = await wait_phase(client, ns, "inline", "Succeeded", "Failed", timeout=60)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert done["status"]["systemPromptHash"] == _sha(PROMPT)
        assert done["status"]["specHash"].startswith("sha256:")
        job = await client.get(JOBS, "inline-job", ns)
        env = _env(job)
        assert env["JANGAR_SYSTEM_PROMPT_SHA256"] == env["AGENTS_SYSTEM_PROMPT_SHA256"] == _sha(PROMPT)
        assert env["JANGAR_GOAL_OBJECTIVE"] == "ship the fix" and env["JANGAR_GOAL_TOKEN_BUDGET"] == "5000"
        assert PROMPT not in json.dumps(job)  # the text is in the ConfigMap, never in the Job
        cm = await client.get(CONFIGMAPS, "inline-system-prompt", ns)
        assert cm["data"] == {"system-prompt.md": PROMPT}
        assert cm["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]
        run_json = json.loads((await client.get(CONFIGMAPS, "inline-spec", ns))["data"]["run.json"])
        assert run_json["goal"] == goal

        secret_run = await wait_phase(client, ns, "fromsecret", "Succeeded", "Failed", timeout=60)
        assert secret_run["status"]["phase"] == "Succeeded", secret_run["status"]
        assert secret_run["status"]["systemPromptHash"] == _sha(secret_text)
        secret_job = await client.get(JOBS, "fromsecret-job", ns)
        assert secret_text not in json.dumps(secret_job) and secret_text not in json.dumps(secret_run)
        volumes = secret_job["spec"]["template"]["spec"]["volumes"]
        assert any(v.get("secret", {}).get("secretName") == "prompts" for v in volumes)

        legacy = await wait_phase(client, ns, "legacy", "Succeeded", "Failed", timeout=60)
        assert legacy["status"]["phase"] == "Succeeded", legacy["status"]
        assert "systemPromptHash" not in legacy["status"]


async def test_prompt_policy_failures_are_conditions_with_reasons(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    settings = settings_for(ns, JANGAR_AGENT_SYSTEM_PROMPT_REQUIRED="true")
    async with running_controller(kwok_cluster.kubeconfig, settings):
        await apply_basics(client, ns)
        await client.create(AGENTS, agent(ns, "prompted", defaults={"systemPrompt": PROMPT}))
        await client.create(AGENTRUNS, run(ns, "withparam", agent_name="prompted"))  # parameters.prompt
        await client.create(AGENTRUNS, run(ns, "noprompt", parameters={}))  # Agent "coder" has none
        bad = await wait_phase(client, ns, "withparam", "Failed", timeout=30)
        assert bad["status"]["reason"] == "PromptParameterNotAllowed"
        assert "spec.text" in bad["status"]["message"]
        assert cond(bad, "InvalidSpec")["reason"] == "PromptParameterNotAllowed"
        missing = await wait_phase(client, ns, "noprompt", "Failed", timeout=30)
        assert cond(missing, "InvalidSpec")["reason"] == "MissingSystemPromptConfiguration"
        for name in ("withparam-job", "noprompt-job"):
            try:
                await client.get(JOBS, name, ns)
                raise AssertionError(f"{name} was created for an invalid run")
            except NotFoundError:
                pass


async def _running_stuck_run(client: Client, ns: str, name: str) -> dict[str, Any]:
    """A run whose Pod waits in ImagePullBackOff (within a long grace): Running with its Job."""
    await client.create(AGENTRUNS, run(ns, name, workload={"image": PULL_BACKOFF_IMAGE}))

    async def accepted() -> dict[str, Any] | None:
        obj: dict[str, Any] = await client.get(AGENTRUNS, name, ns)
        status = obj.get("status") or {}
        return obj if status.get("phase") == "Running" and status.get("specHash") else None

    found: dict[str, Any] = await eventually(accepted, timeout=30, what=f"{name} accepted")
    await client.get(JOBS, f"{name}-job", ns)
    return found


async def test_a_spec_edit_after_acceptance_stops_the_run(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    tuning = ControllerTuning(image_pull_grace_seconds=600.0, reference_grace_seconds=5.0)
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns), tuning):
        await apply_basics(client, ns)
        before = await _running_stuck_run(client, ns, "edited")
        # a metadata edit never trips it
        await client.patch(AGENTRUNS, "edited", {"metadata": {"labels": {"team": "x"}}}, namespace=ns)
        await client.patch(AGENTRUNS, "edited", {"spec": {"parameters": {"prompt": "other"}}}, namespace=ns)
        done = await wait_phase(client, ns, "edited", "Failed", timeout=30)
        assert done["status"]["reason"] == "SpecImmutableViolation"
        assert "spec.parameters" in done["status"]["message"]
        assert done["status"]["specHash"] == before["status"]["specHash"]
        assert done["status"]["observedGeneration"] == done["metadata"]["generation"]

        async def job_gone() -> bool:
            try:
                job = await client.get(JOBS, "edited-job", ns)
            except NotFoundError:
                return True
            return bool(job["metadata"].get("deletionTimestamp"))

        await eventually(job_gone, timeout=30, what="the edited run's Job deleted")


async def test_an_unenforced_spec_edit_only_warns(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    tuning = ControllerTuning(image_pull_grace_seconds=600.0, reference_grace_seconds=5.0)
    settings = settings_for(ns, JANGAR_AGENTRUN_SPEC_IMMUTABILITY_ENFORCED="false")
    async with running_controller(kwok_cluster.kubeconfig, settings, tuning):
        await apply_basics(client, ns)
        await _running_stuck_run(client, ns, "warned")
        await client.patch(AGENTRUNS, "warned", {"spec": {"parameters": {"prompt": "other"}}}, namespace=ns)

        async def warning() -> dict[str, Any] | None:
            obj: dict[str, Any] = await client.get(AGENTRUNS, "warned", ns)
            return obj if cond(obj, "Warning").get("reason") == "SpecChangedAfterAcceptance" else None

        obj = await eventually(warning, timeout=30, what="the spec-change Warning")
        assert obj["status"]["phase"] == "Running"
        job = await client.get(JOBS, "warned-job", ns)
        assert not job["metadata"].get("deletionTimestamp")

        async def event() -> list[dict[str, Any]] | None:
            items = (await client.list(EVENTS, ns)).items
            found = [e for e in items if e.get("reason") == "SpecChangedAfterAcceptance"]
            return found or None

        events = await eventually(event, timeout=30, what="the spec-change Event")
        assert events[0]["type"] == "Warning" and "spec.parameters" in events[0]["message"]


async def test_the_runners_report_becomes_status_runner(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    report = {
        "phase": "Succeeded",
        "reason": "Completed",
        "exitCode": 0,
        "model": "gpt-5",
        "threadId": "thread-42",
        "outputs": {"branch": "codex/42"},
        "artifacts": [{"name": "patch", "path": "/workspace/out.patch", "present": True, "size": 3}],
    }
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        await client.create(
            AGENTPROVIDERS,
            {
                "metadata": {"name": "reporting", "namespace": ns},
                "spec": {
                    "binary": "/bin/agent",
                    "envTemplate": {TERMINATION_MESSAGE_ENV: json.dumps(report)},
                },
            },
        )
        await client.create(AGENTS, agent(ns, "reporter", provider_name="reporting"))
        await client.create(
            AGENTRUNS, run(ns, "reported", agent_name="reporter", workload={"image": OUTPUTS_IMAGE})
        )
        done = await wait_phase(client, ns, "reported", "Succeeded", "Failed", timeout=60)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        runner = done["status"]["runner"]
        assert (runner["model"], runner["threadId"]) == ("gpt-5", "thread-42")
        assert runner["outputs"] == {"branch": "codex/42"} and runner["artifacts"] == ["patch"]
        assert runner["exitCode"] == 0
        assert done["status"]["reason"] == cond(done, "Succeeded")["reason"]


async def test_an_orchestration_step_passes_its_goal_to_the_agentrun_and_its_job(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    goal = {"objective": "implement the step", "tokenBudget": 1234}
    async with running_controller(kwok_cluster.kubeconfig, settings_for(ns)):
        await apply_basics(client, ns)
        step = {
            "name": "impl",
            "kind": "AgentRun",
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "with": {"prompt": "go"},
            "goal": goal,
        }
        await client.create(
            ORCHESTRATIONS, {"metadata": {"name": "goals", "namespace": ns}, "spec": {"steps": [step]}}
        )
        await client.create(
            ORCHESTRATIONRUNS,
            {
                "metadata": {"name": "goal-run", "namespace": ns},
                "spec": {"orchestrationRef": {"name": "goals"}},
            },
        )

        async def child() -> dict[str, Any] | None:
            runs = (await client.list(AGENTRUNS, ns)).items
            done = [r for r in runs if (r.get("status") or {}).get("phase") == "Succeeded"]
            return done[0] if done else None

        run_obj = await eventually(child, timeout=60, what="the step's AgentRun succeeded")
        assert run_obj["spec"]["goal"] == goal
        job = await client.get(JOBS, run_obj["status"]["jobRef"]["name"], ns)
        assert _env(job)["JANGAR_GOAL_OBJECTIVE"] == "implement the step"
