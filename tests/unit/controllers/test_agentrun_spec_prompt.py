"""issue 13 item 3: system prompts, spec immutability, goal and status.reason/message in `decide`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from jangar.admission import Admit, Waiting
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.agentrun.prompt_read import PROMPT_NOT_FOUND, PromptRead
from jangar.controllers.agentrun.prompting import prompt_problems
from jangar.controllers.agentrun.spec_hash import IMMUTABLE_FIELDS, spec_change, spec_hashes
from jangar.scheduler.system_prompt import PromptSource, SystemPrompt, agent_prompt_source, sha256_text
from jangar.settings import Settings
from jangar.validation import Problem
from tests.unit.controllers.agentrun_objects import (
    NOW,
    SETTINGS,
    conditions,
    ended_pod,
    job,
    run,
    snapshot,
    world,
)

ADMIT = Admit(NOW)
PROMPT = "You are a careful engineer."
INLINE = PromptSource("inline", inline=PROMPT)
RESOLVED = PromptRead(INLINE, SystemPrompt(INLINE, sha256_text(PROMPT), PROMPT))
SECRET_SOURCE = PromptSource("Secret", name="prompts", key="system")
SECRET_READ = PromptRead(SECRET_SOURCE, SystemPrompt(SECRET_SOURCE, sha256_text("secret text")))
REQUIRED = dataclasses.replace(
    SETTINGS, spec_policy=dataclasses.replace(SETTINGS.spec_policy, system_prompt_required=True)
)
UNENFORCED = dataclasses.replace(
    SETTINGS, spec_policy=dataclasses.replace(SETTINGS.spec_policy, spec_immutability_enforced=False)
)


def prompt_world() -> Any:
    return world(agent_spec={"defaults": {"systemPrompt": PROMPT}})


def accepted(**spec: Any) -> dict[str, Any]:
    """A Running `job` run accepted with the default spec, then given `spec` (an edit, if any)."""
    obj = run("Running", status={"jobRef": {"name": "run-1-job", "namespace": "agents"}, "startedAt": "x"})
    whole, fields = spec_hashes(obj["spec"])
    obj["status"] |= {"specHash": whole, "specFieldHashes": fields}
    obj["spec"].update(spec)
    return obj


def env_of(plan: Any) -> dict[str, str]:
    container = plan.create.job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


# -- the prompt source and policy (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({}, None),
        ({"systemPrompt": "hi"}, PromptSource("inline", inline="hi")),
        ({"systemPromptRef": {"kind": "ConfigMap", "name": "p"}}, PromptSource("ConfigMap", "p")),
        ({"systemPromptRef": {"kind": "Secret", "name": "s", "key": "k"}}, PromptSource("Secret", "s", "k")),
        ({"systemPromptRef": {"kind": "Pod", "name": "x"}}, None),
    ],
)
def test_the_agents_prompt_source(defaults: dict[str, Any], expected: PromptSource | None) -> None:
    assert agent_prompt_source({"spec": {"defaults": defaults}}) == expected


@pytest.mark.parametrize(
    ("read", "settings", "spec", "reasons"),
    [
        # a 0.9.1 Agent: a prompt parameter is the 0.9.1 way, nothing is refused
        (PromptRead(None), SETTINGS, {"parameters": {"prompt": "fix it"}}, []),
        (PromptRead(None), REQUIRED, {}, ["MissingSystemPromptConfiguration"]),
        (RESOLVED, SETTINGS, {}, []),
        (RESOLVED, SETTINGS, {"parameters": {"prompt": "fix it"}}, ["PromptParameterNotAllowed"]),
        (
            PromptRead(None),
            REQUIRED,
            {"parameters": {"prompt": "x"}},
            ["MissingSystemPromptConfiguration", "PromptParameterNotAllowed"],
        ),
        (
            RESOLVED,
            SETTINGS,
            {"workflow": {"steps": [{"name": "a", "parameters": {"prompt": "x"}}]}},
            ["PromptParameterNotAllowed"],
        ),
    ],
)
def test_the_system_prompt_policy(
    read: PromptRead, settings: Settings, spec: dict[str, Any], reasons: list[str]
) -> None:
    problems = prompt_problems(run(**spec), read, settings)
    assert [p.reason for p in problems] == reasons
    for p in problems:
        if p.reason == "PromptParameterNotAllowed":
            assert "spec.text" in p.message and "prompt" in (p.field or "")


# -- submission with a prompt ------------------------------------------------------------------------


def test_an_inline_prompt_is_delivered_as_a_run_owned_configmap_with_its_hash() -> None:
    plan = decide(snapshot(run(), lookup=prompt_world(), system_prompt=RESOLVED), ADMIT)
    assert plan.create is not None and plan.status is not None
    digest = sha256_text(PROMPT)
    assert plan.status.status["systemPromptHash"] == digest
    env = env_of(plan)
    assert env["JANGAR_SYSTEM_PROMPT_SHA256"] == digest == env["AGENTS_SYSTEM_PROMPT_SHA256"]
    assert all(PROMPT not in v for v in env.values())  # never an env literal
    cm = next(c for c in plan.create.configmaps if c["metadata"]["name"] == "run-1-system-prompt")
    assert cm["data"] == {"system-prompt.md": PROMPT}
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "uid-run-1"
    pod = plan.create.job["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == "run-1-system-prompt")
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": volume["name"], "mountPath": "/etc/jangar/system-prompt", "readOnly": True} in mounts
    assert env["JANGAR_SYSTEM_PROMPT_PATH"] == "/etc/jangar/system-prompt/system-prompt.md"


def test_a_secret_prompt_is_mounted_from_the_secret_and_never_copied() -> None:
    plan = decide(snapshot(run(), lookup=prompt_world(), system_prompt=SECRET_READ), ADMIT)
    assert plan.create is not None and plan.status is not None
    text = json.dumps([plan.create.job, plan.create.configmaps, plan.status.status])
    assert "secret text" not in text
    volumes = plan.create.job["spec"]["template"]["spec"]["volumes"]
    secret = [v["secret"] for v in volumes if v.get("secret", {}).get("secretName") == "prompts"]
    assert secret == [{"secretName": "prompts", "items": [{"key": "system", "path": "system-prompt.md"}]}]
    assert env_of(plan)["JANGAR_SYSTEM_PROMPT_SHA256"] == sha256_text("secret text")


def test_a_later_job_is_sent_the_hash_recorded_at_acceptance() -> None:
    obj = run(
        "Running",
        status={"jobRef": {"name": "run-1-job", "namespace": "agents"}, "systemPromptHash": "a" * 64},
    )
    obj["status"]["runtimeRef"] = {"type": "job", "name": "run-1-job", "submittedAt": "2026-06-01T11:00:00Z"}
    plan = decide(snapshot(obj, lookup=prompt_world(), system_prompt=RESOLVED))
    assert plan.create is not None, plan  # the lost Job is recreated
    assert env_of(plan)["JANGAR_SYSTEM_PROMPT_SHA256"] == "a" * 64


def test_a_prompt_parameter_fails_a_run_of_an_agent_with_a_prompt() -> None:
    obj = run(parameters={"prompt": "fix it"})
    plan = decide(snapshot(obj, lookup=prompt_world(), system_prompt=RESOLVED), ADMIT)
    assert plan.status is not None and plan.status.phase == "Failed" and plan.create is None
    assert plan.status.status["reason"] == "PromptParameterNotAllowed"
    assert "spec.parameters.prompt" in plan.status.status["message"]


def test_a_0_9_1_run_with_a_prompt_parameter_still_starts() -> None:
    plan = decide(snapshot(run(parameters={"prompt": "fix it"}), system_prompt=PromptRead(None)), ADMIT)
    assert plan.create is not None and plan.status is not None
    assert "systemPromptHash" not in plan.status.status
    assert "JANGAR_SYSTEM_PROMPT_SHA256" not in env_of(plan)


def test_required_prompts_fail_runs_of_agents_without_one() -> None:
    plan = decide(snapshot(run(), settings=REQUIRED, system_prompt=PromptRead(None)), ADMIT)
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "MissingSystemPromptConfiguration")


def test_a_missing_prompt_object_holds_the_run_for_the_grace() -> None:
    read = PromptRead(SECRET_SOURCE, problem=Problem(PROMPT_NOT_FOUND, "gone"))
    plan = decide(snapshot(run(), lookup=prompt_world(), system_prompt=read), ADMIT)
    assert plan.status is not None and plan.status.phase == "Pending" and plan.requeue_after
    assert plan.status.status["reason"] == PROMPT_NOT_FOUND


# -- spec immutability -------------------------------------------------------------------------------


def test_spec_hashes_cover_only_the_immutable_fields() -> None:
    base = run()["spec"]
    assert spec_hashes(base) == spec_hashes({**base, "ttlSecondsAfterFinished": 60, "idempotencyKey": "k"})
    assert spec_hashes(base) != spec_hashes({**base, "parameters": {"a": "b"}})
    assert set(spec_hashes(base)[1]) <= set(IMMUTABLE_FIELDS)


@pytest.mark.parametrize(
    ("edit", "changed"),
    [
        ({"parameters": {"a": "b"}}, ("spec.parameters",)),
        ({"goal": {"objective": "x"}}, ("spec.goal",)),
        ({"agentRef": {"name": "other"}, "workload": {"image": "i"}}, ("spec.agentRef", "spec.workload")),
        ({"ttlSecondsAfterFinished": 5}, None),
        ({}, None),
    ],
)
def test_spec_change_names_the_changed_fields(edit: dict[str, Any], changed: tuple[str, ...] | None) -> None:
    found = spec_change(accepted(**edit))
    assert (found.fields if found else None) == changed


def test_an_edit_of_an_accepted_run_stops_its_job_and_fails_it() -> None:
    obj = accepted(parameters={"a": "b"})
    plan = decide(snapshot(obj, jobs=(job(active=1),)))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert plan.delete_jobs == ("run-1-job",)
    assert plan.status.status["reason"] == "SpecImmutableViolation"
    assert "spec.parameters" in plan.status.status["message"]
    assert conditions(plan.status.status)["Failed"] == ("True", "SpecImmutableViolation")
    assert plan.status.status["specHash"] == obj["status"]["specHash"]  # the accepted hash is kept


def test_unenforced_immutability_warns_once_and_keeps_running() -> None:
    obj = accepted(parameters={"a": "b"})
    plan = decide(snapshot(obj, jobs=(job(active=1),), settings=UNENFORCED))
    assert plan.status is not None and plan.status.phase == "Running" and not plan.delete_jobs
    assert conditions(plan.status.status)["Warning"] == ("True", "SpecChangedAfterAcceptance")
    assert [e[1] for e in plan.events] == ["SpecChangedAfterAcceptance"]
    again = decide(
        snapshot({**obj, "status": plan.status.status}, jobs=(job(active=1),), settings=UNENFORCED)
    )
    assert again.events == ()  # the Event is for the transition only


def test_a_finished_run_is_never_failed_over_its_hash() -> None:
    obj = accepted(parameters={"a": "b"})
    obj["status"]["phase"] = "Succeeded"
    plan = decide(snapshot(obj))
    assert plan.status is None and not plan.delete_jobs


def test_metadata_and_status_edits_never_trip_it() -> None:
    obj = accepted()
    obj["metadata"]["labels"] = {"team": "x"}
    obj["status"]["queue"] = {"position": 3}
    plan = decide(snapshot(obj, jobs=(job(active=1),)))
    assert plan.status is not None and plan.status.phase == "Running"


def test_a_run_accepted_before_the_upgrade_adopts_its_hash() -> None:
    obj = run("Running", status={"jobRef": {"name": "run-1-job", "namespace": "agents"}, "startedAt": "x"})
    plan = decide(snapshot(obj, jobs=(job(active=1),)))
    assert plan.status is not None and plan.status.phase == "Running"
    assert plan.status.status["specHash"] == spec_hashes(obj["spec"])[0]


def test_acceptance_records_the_spec_hash() -> None:
    plan = decide(snapshot(run()), ADMIT)
    assert plan.status is not None and plan.create is not None
    assert plan.status.status["specHash"].startswith("sha256:")
    assert plan.status.status["specFieldHashes"].keys() == {"agentRef", "implementationSpecRef", "runtime"}


def test_a_queued_run_has_no_spec_hash_yet() -> None:
    plan = decide(snapshot(run()), Waiting("agent", "agent-1", 1, 2, "agent at limit"))
    assert plan.status is not None and "specHash" not in plan.status.status


# -- goal, status.reason/message, status.runner ------------------------------------------------------


def test_the_goal_reaches_run_json_and_the_env() -> None:
    plan = decide(snapshot(run(goal={"objective": "ship it", "tokenBudget": 5000})), ADMIT)
    assert plan.create is not None
    spec_cm = plan.create.configmaps[0]
    assert json.loads(spec_cm["data"]["run.json"])["goal"] == {"objective": "ship it", "tokenBudget": 5000}
    env = env_of(plan)
    assert env["JANGAR_GOAL_OBJECTIVE"] == env["AGENTS_GOAL_OBJECTIVE"] == "ship it"
    assert env["JANGAR_GOAL_TOKEN_BUDGET"] == "5000"


def test_status_reason_and_message_follow_the_phase() -> None:
    queued = decide(snapshot(run()), Waiting("agent", "agent-1", 1, 2, "agent at limit"))
    assert queued.status is not None and queued.status.status["reason"] == "ConcurrencyLimit"
    started = decide(snapshot({**run(), "status": queued.status.status}), ADMIT)
    assert started.status is not None and started.status.status["reason"] == "Submitted"
    assert "position" not in started.status.status["message"]  # the queue's message is gone


def test_status_runner_summarises_the_runners_report() -> None:
    message = json.dumps(
        {
            "phase": "Succeeded",
            "exitCode": 0,
            "model": "gpt-5",
            "threadId": "th-1",
            "systemPromptSha256": "f" * 64,
            "outputs": {"k": "v"},
            "artifacts": [{"name": "patch", "path": "/workspace/p", "present": True}],
        }
    )
    obj = run(
        "Running",
        status={"jobRef": {"name": "run-1-job", "namespace": "agents"}, "systemPromptHash": "f" * 64},
    )
    pods = {"run-1-job": [ended_pod("run-1-job", exit_code=0, message=message)]}
    plan = decide(snapshot(obj, jobs=(job(complete=True),), pods=pods))
    assert plan.status is not None and plan.status.phase == "Succeeded"
    assert plan.status.status["runner"] == {
        "exitCode": 0,
        "reason": "Completed",
        "outputs": {"k": "v"},
        "model": "gpt-5",
        "threadId": "th-1",
        "artifacts": ["patch"],
        "systemPromptVerified": True,
    }


def test_a_workflows_steps_share_the_prompt_configmap_and_the_accepted_hash() -> None:
    from tests.unit.controllers.agentrun_objects import workflow_run

    first = decide(snapshot(workflow_run(), lookup=prompt_world(), system_prompt=RESOLVED), ADMIT)
    assert first.create is not None and first.status is not None
    assert first.status.status["systemPromptHash"] == sha256_text(PROMPT)
    assert "run-1-system-prompt" in {c["metadata"]["name"] for c in first.create.configmaps}
    assert first.status.status["specHash"]
    # the prompt changed since: the next step is still sent the accepted hash, and a step's `prompt`
    # parameter is refused at its start
    changed = PromptSource("inline", inline="another prompt")
    later = PromptRead(changed, SystemPrompt(changed, sha256_text("another prompt"), "another prompt"))
    obj = {**workflow_run(), "status": first.status.status}
    done_job = job(first.create.job_name, complete=True)
    pods = {first.create.job_name: [ended_pod(first.create.job_name, exit_code=0)]}
    second = decide(snapshot(obj, jobs=(done_job,), pods=pods, lookup=prompt_world(), system_prompt=later))
    assert second.create is not None, second.status
    assert env_of(second)["JANGAR_SYSTEM_PROMPT_SHA256"] == sha256_text(PROMPT)


def test_a_running_workflow_accepted_without_a_prompt_keeps_its_prompt_parameter() -> None:
    """An admin adds a system prompt to the Agent while a 0.9.1 workflow (task in `parameters.prompt`) runs:
    its later steps are not failed; a new run of the Agent is."""
    from jangar.scheduler.context import StepRef

    spec = {"workflow": {"steps": [{"name": "a"}, {"name": "b"}]}, "parameters": {"prompt": "x"}}
    step = StepRef(name="b", index=1, attempt=1, spec={"name": "b"})
    running = run("Running", **spec)
    assert prompt_problems(running, RESOLVED, SETTINGS, step) == []
    accepted_with_prompt = run("Running", status={"systemPromptHash": "a" * 64}, **spec)
    assert [p.reason for p in prompt_problems(accepted_with_prompt, RESOLVED, SETTINGS, step)] == [
        "PromptParameterNotAllowed"
    ]
    assert [p.reason for p in prompt_problems(run(**spec), RESOLVED, SETTINGS)] == [
        "PromptParameterNotAllowed"
    ]
