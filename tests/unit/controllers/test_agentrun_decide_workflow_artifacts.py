"""Workflow runs record their steps' artifacts like single-Job runs: `status.artifacts` entries named
`<step>/<artifact>`, Artifact objects owned by the run, the same cap and `ArtifactsTruncated`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from jangar.api.contract import ANNOTATION_ARTIFACT_NAME, ANNOTATION_ARTIFACT_STEP
from jangar.controllers.agentrun.decide import decide
from tests.unit.controllers.agentrun_objects import SETTINGS, conditions, ended_pod, job, snapshot
from tests.unit.controllers.test_agentrun_decide_workflow import STEP1, running, step, steps_of

STEP2 = "run-1-step-2-attempt-1"
DIGEST = "c" * 64


def report(*names: str, present: bool = True) -> str:
    return json.dumps(
        {
            "outputs": {"ok": True},
            "artifacts": [
                {"name": n, "path": f"/tmp/{n}", "present": present, "size": 4, "sha256": DIGEST}
                for n in names
            ],
        }
    )


def pods(job_name: str, message: str, exit_code: int = 0) -> dict[str, list[dict[str, Any]]]:
    return {job_name: [ended_pod(job_name, exit_code=exit_code, message=message)]}


def capped(limit: int) -> Any:
    return dataclasses.replace(SETTINGS, artifacts=dataclasses.replace(SETTINGS.artifacts, max_per_run=limit))


def with_uid(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["uid"] = "uid-run-1"
    return obj


def test_a_step_that_succeeds_records_its_artifacts_named_per_step() -> None:
    obj = with_uid(running(step("plan", "Running"), step("build", "Pending")))
    plan = decide(snapshot(obj, jobs=(job(STEP1, complete=True),), pods=pods(STEP1, report("plan.md"))))
    assert plan.status is not None and plan.status.phase == "Running"
    assert plan.create is not None  # the next step starts in the same pass
    entries = plan.status.status["artifacts"]
    assert [e["name"] for e in entries] == ["plan/plan.md"] and entries[0]["size"] == 4
    [artifact] = plan.artifacts
    meta = artifact["metadata"]
    assert meta["name"] == "run-1-plan-plan-md"
    assert meta["annotations"][ANNOTATION_ARTIFACT_STEP] == "plan"
    assert meta["annotations"][ANNOTATION_ARTIFACT_NAME] == "plan.md"
    assert meta["ownerReferences"][0]["uid"] == "uid-run-1" and meta["ownerReferences"][0]["controller"]
    assert artifact["spec"]["checksum"] == f"sha256:{DIGEST}" and artifact["spec"]["sizeBytes"] == 4
    assert conditions(plan.status.status)["ArtifactsTruncated"] == ("False", "AllRecorded")


def test_the_last_steps_artifacts_join_the_earlier_ones_when_the_run_succeeds() -> None:
    earlier = [{"name": "plan/plan.md", "path": "/tmp/plan.md", "present": True}]
    obj = with_uid(running(step("plan", "Succeeded"), step("build", "Running")))
    obj["status"]["artifacts"] = earlier
    jobs = (job(STEP1, complete=True, ttl=600), job(STEP2, complete=True))
    plan = decide(snapshot(obj, jobs=jobs, pods=pods(STEP2, report("out.patch", "log"))))
    assert plan.status is not None and plan.status.phase == "Succeeded"
    names = [e["name"] for e in plan.status.status["artifacts"]]
    assert names == ["plan/plan.md", "build/out.patch", "build/log"]
    assert [a["metadata"]["name"] for a in plan.artifacts] == ["run-1-build-out-patch", "run-1-build-log"]


def test_a_later_pass_records_nothing_again() -> None:
    obj = with_uid(running(step("plan", "Running"), step("build", "Pending")))
    first = decide(snapshot(obj, jobs=(job(STEP1, complete=True),), pods=pods(STEP1, report("plan.md"))))
    assert first.status is not None
    after = with_uid(running())
    after["status"] = first.status.status
    again = decide(
        snapshot(after, jobs=(job(STEP1, complete=True, ttl=600),), pods=pods(STEP1, report("plan.md")))
    )
    assert again.artifacts == ()
    assert again.status is None or again.status.status.get("artifacts") == first.status.status["artifacts"]


def test_an_attempt_that_will_be_retried_records_nothing_the_final_failure_does() -> None:
    spec = [{"name": "plan", "retries": 1, "retryBackoffSeconds": 10}]
    obj = with_uid(running(step("plan", "Running"), spec_steps=spec))
    failing = pods(STEP1, report("trace"), exit_code=1)
    retried = decide(snapshot(obj, jobs=(job(STEP1, failed="BackoffLimitExceeded"),), pods=failing))
    assert steps_of(retried)["plan"]["phase"] == "Retrying"
    assert retried.artifacts == () and "artifacts" not in (retried.status.status if retried.status else {})
    last = "run-1-step-1-attempt-2"
    final = with_uid(running(step("plan", "Running", attempt=2), spec_steps=spec))
    failed = decide(
        snapshot(
            final,
            jobs=(job(last, failed="BackoffLimitExceeded"),),
            pods=pods(last, report("trace"), exit_code=1),
        )
    )
    assert failed.status is not None and failed.status.phase == "Failed"
    assert [e["name"] for e in failed.status.status["artifacts"]] == ["plan/trace"]
    assert [a["metadata"]["name"] for a in failed.artifacts] == ["run-1-plan-trace"]


def test_the_cap_counts_every_steps_artifacts_and_truncation_stays_stated() -> None:
    obj = with_uid(running(step("plan", "Running"), step("build", "Pending")))
    plan = decide(
        snapshot(
            obj,
            jobs=(job(STEP1, complete=True),),
            pods=pods(STEP1, report("a", "b", "c")),
            settings=capped(2),
        )
    )
    assert plan.status is not None
    assert [e["name"] for e in plan.status.status["artifacts"]] == ["plan/a", "plan/b"]
    assert len(plan.artifacts) == 2
    cond = next(c for c in plan.status.status["conditions"] if c["type"] == "ArtifactsTruncated")
    assert (cond["status"], cond["reason"]) == ("True", "TooManyArtifacts") and "2 of 3" in cond["message"]
    # the next step has no room left: nothing recorded, still truncated
    later = with_uid(running())
    later["status"] = plan.status.status
    later["status"]["workflow"]["steps"] = [step("plan", "Succeeded"), step("build", "Running")]
    jobs = (job(STEP1, complete=True, ttl=600), job(STEP2, complete=True))
    done = decide(snapshot(later, jobs=jobs, pods=pods(STEP2, report("x")), settings=capped(2)))
    assert done.status is not None and done.status.phase == "Succeeded" and done.artifacts == ()
    assert conditions(done.status.status)["ArtifactsTruncated"] == ("True", "TooManyArtifacts")
    assert len(done.status.status["artifacts"]) == 2


def test_absent_files_are_listed_but_get_no_artifact_object() -> None:
    obj = with_uid(running(step("plan", "Running"), step("build", "Pending")))
    plan = decide(
        snapshot(obj, jobs=(job(STEP1, complete=True),), pods=pods(STEP1, report("gone", present=False)))
    )
    assert plan.status is not None
    assert plan.status.status["artifacts"][0]["name"] == "plan/gone" and plan.artifacts == ()
