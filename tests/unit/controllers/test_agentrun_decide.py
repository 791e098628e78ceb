"""`decide(snapshot, verdict)`: every path of the AgentRun decision, without an API server."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from jangar.admission import WAIT_REQUEUE_SECONDS, Admit, Rejection, Waiting
from jangar.api.contract import ANNOTATION_CANCEL
from jangar.controllers.agentrun.decide import (
    FOREIGN_CHILD_REQUEUE_SECONDS,
    decide,
    on_foreign_child,
)
from jangar.controllers.agentrun.plan import RunPlan
from jangar.controllers.agentrun.snapshot import may_start_a_job
from jangar.settings import Settings
from tests.unit.controllers.agentrun_objects import (
    NOW,
    SETTINGS,
    ago,
    conditions,
    ended_pod,
    impl,
    job,
    pulling_pod,
    run,
    snapshot,
    tuned,
    workflow_run,
    world,
)
from tests.unit.validation.test_agentrun import binding

ADMIT = Admit(NOW)


def submitted(**status: Any) -> dict[str, Any]:
    """A `job` run whose Job run-1-job was created 5 s ago."""
    return run(
        "Running",
        status={
            "startedAt": ago(5),
            "jobRef": {"name": "run-1-job", "namespace": "agents"},
            "runtimeRef": {"type": "job", "name": "run-1-job", "namespace": "agents"},
            "queue": {"admittedAt": ago(5)},
        }
        | status,
    )


# -- deletion and the finalizer --------------------------------------------------------------------


def test_a_deleted_run_deletes_its_jobs_and_releases_the_finalizer() -> None:
    plan = decide(snapshot(run("Running", deleting=True), jobs=(job(), job("run-1-other"))))
    assert plan == RunPlan(
        release_admission=True, delete_jobs=("run-1-job", "run-1-other"), remove_finalizer=True
    )


def test_a_deleted_run_without_our_finalizer_only_gives_its_reservation_back() -> None:
    assert decide(snapshot(run(deleting=True, finalizer=False), jobs=(job(),))) == RunPlan(
        release_admission=True
    )


def test_the_finalizer_is_added_in_the_same_pass_as_the_decision() -> None:
    plan = decide(snapshot(run(finalizer=False)), ADMIT)
    assert plan.add_finalizer and plan.create is not None


def test_asking_for_admission_does_not_write_anything_yet() -> None:
    plan = decide(snapshot(run(finalizer=False)))
    assert plan.needs_admission and not plan.add_finalizer and plan.status is None and plan.create is None


# -- submission -----------------------------------------------------------------------------------


def test_an_admitted_job_run_gets_its_job_and_is_marked_running() -> None:
    plan = decide(snapshot(run()), ADMIT)
    assert plan.create is not None and plan.admitted
    assert plan.create.job_name == "run-1-job"
    assert [c["metadata"]["name"] for c in plan.create.configmaps] == ["run-1-spec"]
    assert plan.create.job["metadata"]["ownerReferences"][0]["uid"] == "uid-run-1"
    assert plan.status is not None and plan.status.phase == "Running"
    status = plan.status.status
    assert status["jobRef"] == {"name": "run-1-job", "namespace": "agents"}
    assert status["runtimeRef"] == {"type": "job", "name": "run-1-job", "namespace": "agents"}
    assert status["queue"] == {"admittedAt": "2026-06-01T12:00:00Z"}
    assert status["startedAt"] == "2026-06-01T12:00:00Z" and status["observedGeneration"] == 1
    conds = conditions(status)
    assert conds["Accepted"] == ("True", "Submitted") and conds["InProgress"] == ("True", "Running")
    assert conds["Succeeded"][0] == "Unknown" and conds["InvalidSpec"] == ("False", "Valid")
    assert plan.requeue_after is None and not plan.delete_jobs


@pytest.mark.parametrize(
    ("verdict", "reason", "requeue"),
    [
        (
            Waiting("namespace", "agents", 1, 3, "namespace agents is at its limit of 1 running runs"),
            "ConcurrencyLimit",
            WAIT_REQUEUE_SECONDS,
        ),
        (Waiting("rate", "agents", 5, 1, "rate limit", requeue_after=12.0), "RateLimited", 12.0),
    ],
)
def test_a_waiting_run_is_queued_with_its_limit_and_position(
    verdict: Waiting, reason: str, requeue: float
) -> None:
    plan = decide(snapshot(run()), verdict)
    assert plan.status is not None and plan.status.phase == "Queued" and plan.create is None
    queue = plan.status.status["queue"]
    assert queue == {
        "enqueuedAt": "2026-06-01T12:00:00Z",
        "scope": verdict.scope,
        "key": "agents",
        "limit": verdict.limit,
        "position": verdict.position,
    }
    assert conditions(plan.status.status)["Blocked"] == ("True", reason)
    assert f"position {verdict.position} in the queue" in plan.status.details.message
    assert plan.requeue_after == requeue


def test_a_queued_run_keeps_its_enqueue_time() -> None:
    obj = run("Queued", status={"queue": {"enqueuedAt": ago(100), "position": 4}})
    plan = decide(snapshot(obj), Waiting("agent", "agent-1", 1, 2, "agent at limit"))
    assert plan.status is not None and plan.status.status["queue"]["enqueuedAt"] == ago(100)
    assert plan.status.status["queue"]["position"] == 2


def test_a_full_queue_fails_the_run() -> None:
    plan = decide(snapshot(run()), Rejection("QueueLimitExceeded", "queue full", "namespace", 2))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["Failed"] == ("True", "QueueLimitExceeded")
    assert plan.status.status["finishedAt"] == "2026-06-01T12:00:00Z"


def test_a_run_admission_no_longer_knows_is_left_alone() -> None:
    assert decide(snapshot(run()), None) == RunPlan()


def test_a_missing_agent_holds_the_run_pending_within_the_grace() -> None:
    plan = decide(snapshot(run(created_ago=100), lookup=world().__class__()))
    assert plan.status is not None and plan.status.phase == "Pending"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "MissingAgent")
    assert "waiting until 2026-06-01T12:03:20Z" in plan.status.details.message
    assert plan.requeue_after == pytest.approx(200.0)


def test_a_missing_agent_fails_the_run_after_the_grace() -> None:
    settings = tuned(reference_grace_seconds=50)
    plan = decide(snapshot(run(created_ago=100), lookup=world().__class__(), settings=settings))
    assert plan.status is not None and plan.status.phase == "Failed" and plan.requeue_after is None
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "MissingAgent")


def test_any_other_problem_fails_the_run_at_once() -> None:
    plan = decide(snapshot(run(created_ago=1, parameters={"n": 1})))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "ParameterNotString")
    assert plan.status.status["finishedAt"] == "2026-06-01T12:00:00Z"


def test_the_contract_status_is_reported_even_for_an_invalid_run() -> None:
    lookup = world(impl(contract={"requiredKeys": ["repository"]}))
    plan = decide(snapshot(run(), lookup=lookup))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert plan.status.status["contract"] == {"requiredKeys": ["repository"], "missingKeys": ["repository"]}


def test_an_unsupported_runtime_fails_with_its_reason() -> None:
    plan = decide(snapshot(run(runtime="temporal")))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["InvalidSpec"][1] == "UnsupportedRuntime"


# -- version control -----------------------------------------------------------------------------

GITHUB = {
    "kind": "VersionControlProvider",
    "metadata": {"name": "github"},
    "spec": {
        "provider": "github",
        "auth": {"method": "token", "token": {"secretRef": {"name": "gh-token"}}},
        "defaults": {"baseBranch": "main"},
    },
}


def vcs_snapshot(keys: frozenset[str] | None, **spec: Any) -> Any:
    obj = run(vcsRef={"name": "github"}, **spec)
    return snapshot(
        obj, lookup=world(GITHUB, binding("gh-token")), secret_keys={"gh-token": keys}, keys_read=True
    )


def test_vcs_credentials_reach_the_job_by_reference_only() -> None:
    plan = decide(vcs_snapshot(frozenset({"token"}), parameters={"repository": "acme/demo"}), ADMIT)
    assert plan.create is not None and plan.status is not None
    env = plan.create.job["spec"]["template"]["spec"]["containers"][0]["env"]
    tokens = [e for e in env if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]]
    assert tokens and all(e["valueFrom"]["secretKeyRef"]["name"] == "gh-token" for e in tokens)
    assert plan.status.status["vcs"]["provider"] == "github"
    assert conditions(plan.status.status)["VcsSkipped"] == ("False", "NotSkipped")


def test_a_missing_token_key_skips_vcs_unless_it_is_required() -> None:
    plan = decide(vcs_snapshot(frozenset(), parameters={"repository": "acme/demo"}), ADMIT)
    assert plan.create is not None and plan.status is not None
    assert conditions(plan.status.status)["VcsSkipped"][0] == "True"
    required = decide(
        vcs_snapshot(None, parameters={"repository": "acme/demo"}, vcsPolicy={"required": True}), ADMIT
    )
    assert required.create is None and required.status is not None and required.status.phase == "Failed"


def test_keys_not_read_count_as_present() -> None:
    snap = snapshot(run(), keys_read=False)
    assert snap.secret_has_key("any", "key") and snap.configmap_has_key("any", "key")
    assert not dataclasses.replace(snap, keys_read=True).secret_has_key("any", "key")


# -- observation of a `job` run ------------------------------------------------------------------------


def test_a_running_job_is_observed_once_and_its_uid_recorded() -> None:
    plan = decide(snapshot(submitted(), jobs=(job(active=1),)))
    assert plan.status is not None and plan.status.phase == "Running"
    status = plan.status.status
    assert status["runtimeRef"]["jobObservedAt"] == "2026-06-01T12:00:00Z"
    assert status["runtimeRef"]["uid"] == "uid-run-1-job" and status["jobRef"]["uid"] == "uid-run-1-job"
    assert "is running" in plan.status.details.message and plan.requeue_after is None


def test_a_job_without_pods_waits_then_fails_as_pods_not_created() -> None:
    waiting = decide(snapshot(submitted(), jobs=(job(started_ago=None, created_ago=10),)))
    assert waiting.status is not None and "waiting to start" in waiting.status.details.message
    assert waiting.requeue_after == pytest.approx(590.0)
    late = decide(snapshot(submitted(), jobs=(job(started_ago=None, created_ago=601),)))
    assert late.status is not None and late.status.phase == "Failed"
    assert conditions(late.status.status)["Failed"] == ("True", "PodsNotCreated")
    assert late.delete_jobs == ("run-1-job",)


def test_a_completed_job_succeeds_the_run_then_sets_the_job_ttl_and_leaves_retention_to_the_sweep() -> None:
    plan = decide(snapshot(submitted(), jobs=(job(complete=True),)))
    assert plan.status is not None and plan.status.phase == "Succeeded"
    assert conditions(plan.status.status)["Succeeded"] == ("True", "Completed")
    assert plan.status.status["finishedAt"] == ago(1)
    assert plan.job_ttls == (("run-1-job", 600),) and not plan.delete_jobs
    assert plan.requeue_after is None  # retention is the sweep's (jangar.controllers.sweep)


def test_a_failed_job_fails_the_run_with_the_jobs_reason() -> None:
    plan = decide(snapshot(submitted(), jobs=(job(failed="DeadlineExceeded"),)))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert conditions(plan.status.status)["Failed"] == ("True", "DeadlineExceeded")


def test_the_agents_termination_message_becomes_status_runner_and_artifacts() -> None:
    message = (
        '{"phase":"Succeeded","exitCode":0,"outputs":{"branch":"codex/7"},'
        '"artifacts":[{"name":"patch","path":"/workspace/out.patch","present":true,"size":3,"sha256":"ab"},'
        '{"path":"nameless"}]}'
    )
    pods = {"run-1-job": [ended_pod("run-1-job", exit_code=0, message=message)]}
    plan = decide(snapshot(submitted(), jobs=(job(complete=True),), pods=pods))
    assert plan.status is not None and plan.status.phase == "Succeeded"
    assert plan.status.status["runner"] == {
        "exitCode": 0,
        "reason": "Completed",
        "outputs": {"branch": "codex/7"},
        "artifacts": ["patch"],  # issue 13 item 3: the summary names them; details in status.artifacts
    }
    assert plan.status.status["artifacts"] == [
        {"name": "patch", "path": "/workspace/out.patch", "present": True, "size": 3, "sha256": "ab"}
    ]


def test_a_failed_agents_log_tail_is_the_failure_detail_and_runner_message() -> None:
    pods = {"run-1-job": [ended_pod("run-1-job", exit_code=3, message="fatal: no such repo\n")]}
    plan = decide(snapshot(submitted(), jobs=(job(failed="BackoffLimitExceeded"),), pods=pods))
    assert plan.status is not None and plan.status.phase == "Failed"
    _, reason = conditions(plan.status.status)["Failed"]
    assert (
        reason == "BackoffLimitExceeded"
        and "exited with code 3: fatal: no such repo" in plan.status.details.message
    )
    assert plan.status.status["runner"] == {
        "exitCode": 3,
        "reason": "Error",
        "message": "fatal: no such repo",
    }
    assert "artifacts" not in plan.status.status


def test_a_run_whose_container_never_ended_has_no_runner_status() -> None:
    plan = decide(snapshot(submitted(), jobs=(job(failed="DeadlineExceeded"),)))
    assert plan.status is not None and "runner" not in plan.status.status


def test_an_image_pull_warns_within_its_grace_then_fails_and_stops_the_job() -> None:
    pods = {"run-1-job": [pulling_pod("run-1-job", created_ago=10)]}
    early = decide(snapshot(submitted(), jobs=(job(active=1),), pods=pods))
    assert early.status is not None and early.status.phase == "Running"
    assert conditions(early.status.status)["Warning"] == ("True", "ImagePullBackOff")
    assert early.requeue_after == pytest.approx(290.0)
    late = decide(
        snapshot(submitted(), jobs=(job(active=1),), pods=pods, settings=tuned(image_pull_grace_seconds=5))
    )
    assert late.status is not None and late.status.phase == "Failed" and late.delete_jobs == ("run-1-job",)
    assert late.job_ttls == ()


def test_a_submission_warning_is_kept_while_the_job_runs() -> None:
    warn = {"type": "Warning", "status": "True", "reason": "DeprecatedAuth", "message": "use an app"}
    plan = decide(snapshot(submitted(conditions=[warn]), jobs=(job(active=1),)))
    assert plan.status is not None and conditions(plan.status.status)["Warning"] == ("True", "DeprecatedAuth")


def test_a_job_missing_right_after_submission_is_waited_for() -> None:
    plan = decide(snapshot(submitted()))
    assert plan == RunPlan(requeue_after=pytest.approx(55.0))


def test_a_job_that_never_appeared_is_recreated_once() -> None:
    obj = submitted(startedAt=ago(120))
    plan = decide(snapshot(obj))
    assert plan.create is not None and plan.create.job_name == "run-1-job" and not plan.admitted
    assert plan.status is not None and plan.status.status["runtimeRef"]["recreated"] is True
    assert plan.status.status["runtimeRef"]["submittedAt"] == "2026-06-01T12:00:00Z"
    assert plan.status.status["startedAt"] == ago(120) and plan.notes
    again = submitted(
        startedAt=ago(300), runtimeRef={"name": "run-1-job", "recreated": True, "submittedAt": ago(90)}
    )
    lost = decide(snapshot(again))
    assert lost.create is None and lost.status is not None and lost.status.phase == "Failed"
    assert conditions(lost.status.status)["Failed"] == ("True", "JobLost")
    assert "never appeared" in lost.status.details.message


def test_a_job_deleted_after_it_was_seen_fails_the_run() -> None:
    obj = submitted(runtimeRef={"name": "run-1-job", "jobObservedAt": ago(3)})
    plan = decide(snapshot(obj))
    assert plan.status is not None and conditions(plan.status.status)["Failed"] == ("True", "JobLost")
    assert "deleted while the run was in progress" in plan.status.details.message


def test_a_job_being_deleted_before_it_finished_counts_as_gone() -> None:
    obj = submitted(runtimeRef={"name": "run-1-job", "jobObservedAt": ago(3)})
    plan = decide(snapshot(obj, jobs=(job(active=1, deleting=True),)))
    assert plan.status is not None and plan.status.phase == "Failed"
    assert plan.delete_jobs == ("run-1-job",)  # a finished run owns no unfinished Job


def test_a_taken_child_name_holds_the_run_and_gives_its_admission_back() -> None:
    """A deterministic child name held by another run's object: wait for garbage collection (Pending,
    Warning=ChildNameTaken), never adopt it."""
    plan = on_foreign_child(
        snapshot(run()), "Job agents/run-1-job exists but is controlled by another object"
    )
    assert plan.release_admission and plan.requeue_after == FOREIGN_CHILD_REQUEUE_SECONDS
    assert plan.status is not None and plan.status.phase == "Pending"
    assert conditions(plan.status.status)["Warning"] == ("True", "ChildNameTaken")


# -- finished runs -------------------------------------------------------------------------------------


def test_a_finished_run_deletes_unfinished_jobs_and_patches_only_changed_ttls() -> None:
    obj = run("Failed", status={"finishedAt": ago(30)})
    jobs = (job("a", complete=True, ttl=600), job("b", failed="BackoffLimitExceeded"), job("c", active=1))
    plan = decide(snapshot(obj, jobs=jobs))
    assert plan.delete_jobs == ("c",) and plan.job_ttls == (("b", 600),) and plan.status is None
    assert plan.requeue_after is None


def test_a_succeeded_job_awaiting_its_condition_is_not_deleted() -> None:
    obj = run("Succeeded", status={"finishedAt": ago(30)})
    plan = decide(snapshot(obj, jobs=(job(succeeded=1),)))
    assert plan.delete_jobs == () and plan.job_ttls == ()


def test_a_run_past_its_retention_is_left_to_the_sweep() -> None:
    old = run("Succeeded", status={"finishedAt": ago(120)}, ttlSecondsAfterFinished=60)
    assert decide(snapshot(old)) == RunPlan()  # plan_retention (tests/unit/scheduler/test_retention.py)


def test_the_job_ttl_of_a_run_overrides_the_controllers_and_zero_disables_it() -> None:
    obj = run("Succeeded", status={"finishedAt": ago(1)}, config={"ttlSecondsAfterFinished": 45})
    assert decide(snapshot(obj, jobs=(job(complete=True),))).job_ttls == (("run-1-job", 45),)
    off = Settings.from_env(
        {"JANGAR_AGENT_RUNNER_IMAGE": "runner:1", "JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": "0"}
    )
    assert (
        decide(
            snapshot(
                run("Succeeded", status={"finishedAt": ago(1)}), jobs=(job(complete=True),), settings=off
            )
        ).job_ttls
        == ()
    )


# -- cancellation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "accepted"), [(run(), "False"), (submitted(), "True")])
def test_the_cancel_annotation_cancels_deletes_the_jobs_and_releases_admission(
    obj: dict[str, Any], accepted: str
) -> None:
    obj["metadata"]["annotations"] = {ANNOTATION_CANCEL: "TRUE"}
    plan = decide(snapshot(obj, jobs=(job(active=1),)))
    assert plan.status is not None and plan.status.phase == "Cancelled"
    assert plan.release_admission and plan.delete_jobs == ("run-1-job",)
    conds = conditions(plan.status.status)
    assert conds["Failed"] == ("True", "Cancelled") and conds["Accepted"][0] == accepted
    assert plan.status.status["finishedAt"] == "2026-06-01T12:00:00Z"


def test_a_cancelled_run_is_finished_and_not_cancelled_again() -> None:
    obj = run("Cancelled", status={"finishedAt": ago(5)}, annotations={ANNOTATION_CANCEL: "true"})
    plan = decide(snapshot(obj))
    assert plan.status is None and not plan.release_admission


# -- the snapshot reader's gate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "jobs", "expected"),
    [
        (run(), {}, True),
        (submitted(), {"run-1-job": job()}, False),
        (submitted(), {"run-1-job": job(active=1, deleting=True)}, True),  # as good as gone: recreate path
        (submitted(), {}, True),
        (workflow_run("Running"), {}, True),  # the first step starts
        (
            workflow_run(
                "Running",
                status={
                    "workflow": {
                        "steps": [
                            {
                                "name": "plan",
                                "phase": "Running",
                                "attempt": 1,
                                "startedAt": ago(5),
                                "jobRef": {"name": "run-1-step-1-attempt-1"},
                            }
                        ]
                    }
                },
            ),
            {"run-1-step-1-attempt-1": job("run-1-step-1-attempt-1", active=1)},
            False,  # a step is running: no Secret reads on every Pod event
        ),
        (run("Succeeded"), {}, False),
        (run(deleting=True), {}, False),
        (run(annotations={ANNOTATION_CANCEL: "true"}), {}, False),
    ],
)
def test_vcs_keys_are_read_only_when_a_job_may_start(
    obj: dict[str, Any], jobs: dict[str, Any], expected: bool
) -> None:
    assert may_start_a_job(obj, jobs, {}, NOW, SETTINGS.tuning) is expected


def test_a_stale_now_is_never_in_the_future() -> None:
    """Grace arithmetic with a clock behind the creation time still holds the run (no negative waits)."""
    plan = decide(snapshot(run(created_ago=-30), lookup=world().__class__()))
    assert plan.status is not None and plan.status.phase == "Pending" and plan.requeue_after is not None
    assert plan.requeue_after >= 1.0


_ = timedelta


def test_a_failed_job_not_yet_counted_is_kept() -> None:
    """FailureTarget=True before the Job controller counts the failed pod (pod finalizers): the Job has an
    outcome and must not be deleted as a stray."""
    obj = run("Failed", status={"finishedAt": ago(1)})
    target = job(active=0)
    target["status"]["conditions"] = [
        {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"}
    ]
    target["status"]["uncountedTerminatedPods"] = {"failed": ["pod-uid"]}
    plan = decide(snapshot(obj, jobs=(target,)))
    assert plan.delete_jobs == ()


def test_a_held_run_writes_the_same_status_on_every_pass() -> None:
    """The hold's message states a deadline, not a countdown, so a re-reconcile changes nothing."""
    from jangar.controllers.status import status_changed

    first = decide(snapshot(run(created_ago=100), lookup=world().__class__()))
    assert first.status is not None
    held = run(created_ago=100, status=first.status.status)
    later = decide(snapshot(held, lookup=world().__class__(), now=NOW + timedelta(seconds=7)))
    assert later.status is not None and not status_changed(first.status.status, later.status.status)


def test_cancelling_a_workflow_cancels_its_workflow_status() -> None:
    obj = workflow_run(
        "Running",
        status={"workflow": {"phase": "Running", "steps": []}},
        annotations={ANNOTATION_CANCEL: "true"},
    )
    plan = decide(snapshot(obj))
    assert plan.status is not None and plan.status.status["workflow"]["phase"] == "Cancelled"
