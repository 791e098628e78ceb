"""The reconciler's seam: run + cache → problems, or a context that builds a complete Job."""

from __future__ import annotations

import json
from typing import Any

from jangar.prepare import prepare_run
from jangar.scheduler import StepRef, build_job_plan
from jangar.settings import Settings
from tests.unit.scheduler.objects import agent, agent_run, provider
from tests.unit.validation.test_agentrun import FakeLookup, binding, kinded

SETTINGS = Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"})


def cache(*extra: dict[str, Any]) -> FakeLookup:
    vcs = {
        "kind": "VersionControlProvider",
        "metadata": {"name": "github"},
        "spec": {
            "provider": "github",
            "auth": {"method": "token", "token": {"secretRef": {"name": "gh-token"}}},
            "defaults": {"baseBranch": "main", "branchTemplate": "codex/{{issueNumber}}"},
        },
    }
    impl = {
        "kind": "ImplementationSpec",
        "metadata": {"name": "impl-1"},
        "spec": {"text": "Fix #7", "contract": {"requiredKeys": ["repository"]}},
    }
    return FakeLookup(kinded("Agent", agent()), kinded("AgentProvider", provider()), impl, vcs, *extra)


def test_prepared_run_builds_a_job_with_vcs_by_reference() -> None:
    run = agent_run(vcsRef={"name": "github"}, parameters={"repo": "acme/demo", "issue": "7"})
    prepared = prepare_run(run, cache(binding("gh-token")), SETTINGS)
    assert prepared.valid, prepared.problems
    assert prepared.contract is not None and prepared.contract.status["missingKeys"] == []
    assert prepared.vcs is not None and prepared.vcs.status is not None
    assert prepared.vcs.status["headBranch"] == "codex/7"
    plan = build_job_plan(prepared.context, SETTINGS)  # type: ignore[arg-type]
    env = {e["name"]: e for e in plan.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GITHUB_TOKEN"] == {
        "name": "GITHUB_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "gh-token", "key": "token"}},
    }
    run_json = json.loads(plan.configmaps[0]["data"]["run.json"])
    assert (run_json["base"], run_json["head"]) == ("main", "codex/7")
    assert run_json["vcs"]["repository"] == "acme/demo"


def test_vcs_secret_without_binding_skips_vcs_unless_required() -> None:
    run = agent_run(vcsRef={"name": "github"}, parameters={"repo": "acme/demo", "issue": "7"})
    prepared = prepare_run(run, cache(), SETTINGS)
    assert prepared.valid and prepared.context is not None and prepared.context.vcs is None
    assert prepared.vcs is not None and prepared.vcs.reason == "SecretNotBound"
    run["spec"]["vcsPolicy"] = {"required": True}
    failed = prepare_run(run, cache(), SETTINGS)
    assert not failed.valid and failed.problems[0].reason == "SecretNotBound"


def test_invalid_run_reports_problems() -> None:
    prepared = prepare_run(agent_run(), cache(), SETTINGS)
    assert not prepared.valid
    assert [p.reason for p in prepared.problems] == ["MissingRequiredMetadata"]


def test_workflow_step_context() -> None:
    step_spec = {
        "name": "review",
        "parameters": {"stage": "review"},
        "implementation": {"inline": {"text": "Review"}},
    }
    run = agent_run(
        runtime="workflow", workflow={"steps": [{"name": "plan"}, step_spec]}, parameters={"repo": "a/b"}
    )
    prepared = prepare_run(run, cache(), SETTINGS, step=StepRef("review", 2, 1, step_spec))
    assert prepared.valid and prepared.context is not None
    assert prepared.context.implementation == {"text": "Review"}
    assert prepared.context.parameters == {"repo": "a/b", "stage": "review"}
    assert build_job_plan(prepared.context, SETTINGS).job_name == "run-1-step-2-attempt-1"
