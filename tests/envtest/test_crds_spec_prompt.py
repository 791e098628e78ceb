"""issue 13 item 3 on a real API server: 0.9.29-style manifests (system prompts, goal, the intake provider
allow-list, the new status fields) round-trip through the generated CRDs, the CEL rules reject what
0.9.29 rejects with an actionable message, and a 0.9.1 run with `parameters.prompt` is still accepted."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.envtest.test_crds import _write_status, create, rejection
from tests.unit.api.samples import sample

PROMPT_REF = {"kind": "Secret", "name": "agent-prompts", "key": "codex"}


def agent_0929(**defaults: Any) -> dict[str, Any]:
    manifest = sample("Agent")
    manifest["spec"]["defaults"] |= defaults
    manifest["spec"]["security"]["allowedImplementationSourceProviders"] = ["github", "linear"]
    return manifest


def run_0929(**spec: Any) -> dict[str, Any]:
    manifest = sample("AgentRun")
    manifest["spec"]["parameters"] = {"repository": "proompteng/lab"}
    manifest["spec"] |= spec
    return manifest


@pytest.mark.parametrize(
    "manifest",
    [
        agent_0929(systemPrompt="You are careful."),
        agent_0929(systemPromptRef=PROMPT_REF),
        agent_0929(systemPrompt="x" * 16384),
        run_0929(goal={"objective": "Ship issue 13", "tokenBudget": 200000}),
        run_0929(goal={"objective": "Only an objective"}),
    ],
    ids=["inline", "ref", "inline-at-limit", "goal", "goal-objective-only"],
)
async def test_0_9_29_manifests_round_trip(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str, manifest: dict[str, Any]
) -> None:
    created = await create(kube_client, namespace, manifest)
    assert created["spec"] == manifest["spec"]


async def test_an_orchestration_agentrun_step_keeps_its_goal(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    manifest = sample("Orchestration")
    manifest["spec"]["steps"][0]["goal"] = {"objective": "implement it", "tokenBudget": 1000}
    created = await create(kube_client, namespace, manifest)
    assert created["spec"]["steps"][0]["goal"] == {"objective": "implement it", "tokenBudget": 1000}


async def test_a_0_9_1_run_with_a_prompt_parameter_is_still_accepted(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    manifest = run_0929(parameters={"prompt": "Fix the bug", "repository": "proompteng/lab"})
    created = await create(kube_client, namespace, manifest)
    assert created["spec"]["parameters"]["prompt"] == "Fix the bug"


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        (
            agent_0929(systemPrompt="x", systemPromptRef=PROMPT_REF),
            "systemPrompt or spec.defaults.systemPromptRef, not both",
        ),
        (agent_0929(systemPrompt="x" * 16385), "16384"),
        (agent_0929(systemPromptRef={"kind": "Pod", "name": "p"}), "Unsupported value"),
        (run_0929(systemPrompt="override"), "cannot override its Agent's system prompt"),
        (run_0929(systemPromptRef=PROMPT_REF), "cannot override its Agent's system prompt"),
        (run_0929(goal={"tokenBudget": 5}), "objective"),
        (run_0929(goal={"objective": "x", "tokenBudget": 0}), "tokenBudget"),
    ],
    ids=["both", "too-long", "bad-kind", "run-prompt", "run-prompt-ref", "goal-no-objective", "zero-budget"],
)
async def test_rejected_combinations_say_what_to_fix(
    envtest_crds: LocalCluster,
    kube_client: k8s.ApiClient,
    namespace: str,
    manifest: dict[str, Any],
    words: str,
) -> None:
    assert words in await rejection(kube_client, namespace, manifest)


async def test_the_new_status_fields_survive(
    envtest_crds: LocalCluster, kube_client: k8s.ApiClient, namespace: str
) -> None:
    await create(kube_client, namespace, sample("AgentRun"))
    status = {
        "phase": "Failed",
        "reason": "SpecImmutableViolation",
        "message": "spec.parameters changed after the run was accepted",
        "specHash": "sha256:" + "a" * 64,
        "specFieldHashes": {"parameters": "0123456789abcdef"},
        "systemPromptHash": "b" * 64,
        "runner": {
            "exitCode": 0,
            "reason": "Completed",
            "model": "gpt-5",
            "threadId": "thread-1",
            "artifacts": ["patch"],
            "systemPromptVerified": True,
            "outputs": {"branch": "codex/1"},
        },
    }
    stored = await _write_status(kube_client, namespace, "AgentRun", status)
    assert {k: stored["status"][k] for k in status} == status
