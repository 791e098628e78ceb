"""The rerun decision (reference §6.10): when, which attempt, what delivery id and parameters, backoff."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.controllers.rerun import BACKOFF_SECONDS, MAX_ATTEMPTS, RerunConfig, decide

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CONFIG = RerunConfig("codex-rerun", "agents", "codex-improve", "ops")
OFF = RerunConfig(None, "agents", None, "agents")


def run(
    phase: str = "Failed",
    *,
    finished: datetime | None = NOW - timedelta(minutes=1),
    params: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    uid: str = "0123456789abcdef",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if finished is not None:
        status["finishedAt"] = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": "r1", "namespace": "agents", "uid": uid, "annotations": annotations or {}},
        "spec": {
            "parameters": params or {"repository": "o/r", "issueNumber": "5", "head": "h", "base": "main"}
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "config", "kinds"),
    [
        (run(), CONFIG, ["rerun"]),
        (run(), OFF, []),
        (run("Running", finished=None), CONFIG, []),
        (run("Succeeded"), CONFIG, []),
        (run("Succeeded", annotations={"jangar.proompteng.ai/rerun": "true"}), CONFIG, ["rerun"]),
        (run(annotations={"jangar.proompteng.ai/rerun": "false"}), CONFIG, []),
        (run("Cancelled"), CONFIG, []),
        (
            run("Succeeded", annotations={"jangar.proompteng.ai/system-improvement": "true"}),
            CONFIG,
            ["system-improvement"],
        ),
        (
            run(annotations={"jangar.proompteng.ai/system-improvement": "true"}),
            CONFIG,
            ["rerun", "system-improvement"],
        ),
    ],
)
def test_when_something_is_submitted(obj: dict[str, Any], config: RerunConfig, kinds: list[str]) -> None:
    assert [s.kind for s in decide(obj, config, prompt="p", now=NOW).submit] == kinds


def test_first_rerun_parameters_and_delivery_id() -> None:
    plan = decide(run(), CONFIG, prompt="the task", now=NOW)
    (sub,) = plan.submit
    assert sub.delivery_id == "jangar-0123456789abcdef-attempt-1"
    assert (sub.namespace, sub.orchestration) == ("agents", "codex-rerun")
    p = sub.parameters
    assert (p["repository"], p["base"], p["head"], p["prompt"], p["attempt"]) == (
        "o/r",
        "main",
        "h",
        "the task",
        "1",
    )
    assert p["issueNumber"] == p["issue_number"] == "5"
    assert p["parentRunUid"] == p["parent_run_uid"] == "0123456789abcdef"
    assert p["iterationCycle"] == p["iteration_cycle"] == "1"
    for key in ("judgePrompt", "judge_prompt", "implementationResumeKey", "implementation_changes_key"):
        assert key in p
    manifest = sub.manifest("orchestration.proompteng.ai/v1alpha1", "OrchestrationRun")
    assert manifest["spec"] == {
        "orchestrationRef": {"name": "codex-rerun"},
        "parameters": p,
        "deliveryId": sub.delivery_id,
    }
    assert manifest["metadata"]["labels"]["jangar.proompteng.ai/delivery-id"] == sub.delivery_id
    assert manifest["metadata"]["labels"]["agents.proompteng.ai/delivery-id"] == sub.delivery_id
    # deterministic: the same run gives the same name (AlreadyExists makes it idempotent)
    assert decide(run(), CONFIG, prompt="the task", now=NOW + timedelta(hours=1)).submit[0].name == sub.name


def test_a_failed_rerun_child_submits_the_next_attempt_of_the_root() -> None:
    child = run(params={"parentRunUid": "root-uid", "attempt": "1", "repository": "o/r"}, uid="child-uid")
    (sub,) = decide(child, CONFIG, prompt="", now=NOW).submit
    assert sub.delivery_id == "jangar-root-uid-attempt-2"
    assert sub.parameters["attempt"] == "2"
    assert sub.parameters["parentRunUid"] == "root-uid"
    last = run(params={"parentRunUid": "root-uid", "attempt": str(MAX_ATTEMPTS)}, uid="c3")
    plan = decide(last, CONFIG, prompt="", now=NOW)
    assert plan.submit == () and plan.exhausted


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_backoff_by_attempt(attempt: int) -> None:
    params = {"parentRunUid": "root", "attempt": str(attempt - 1)} if attempt > 1 else {}
    finished = NOW - timedelta(seconds=1)
    plan = decide(run(finished=finished, params=params, uid="u"), CONFIG, prompt="", now=NOW)
    assert plan.submit == ()
    assert plan.requeue_after == pytest.approx(BACKOFF_SECONDS[attempt - 1] - 1)
    later = NOW + timedelta(seconds=BACKOFF_SECONDS[attempt - 1])
    assert (
        len(decide(run(finished=finished, params=params, uid="u"), CONFIG, prompt="", now=later).submit) == 1
    )


def test_system_improvement_head_branch() -> None:
    obj = run("Succeeded", annotations={"jangar.proompteng.ai/system-improvement": "true"})
    (sub,) = decide(obj, CONFIG, prompt="", now=NOW).submit
    assert sub.delivery_id == "codex-system-improvement-0123456789abcdef"
    assert sub.parameters["head"] == "codex/system-improvement-5-01234567"
    assert sub.namespace == "ops"
