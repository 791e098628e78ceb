"""GitHub App token refresh (issue 12): which runs need it, and when the Secret is re-minted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.api.contract import (
    ANNOTATION_TOKEN_EXPIRES_AT,
    ANNOTATION_TOKEN_REFRESH_AT,
    ANNOTATION_TOKEN_SOURCE,
)
from jangar.controllers.app_token_refresh import (
    RefreshDecision,
    decide_refresh,
    mounts_its_token_secret,
    token_secret_in_use,
)
from jangar.controllers.app_tokens import request_from_secret
from jangar.vcs import AppTokenRequest, InstallationToken, token_secret_manifest
from jangar.vcs.github_app import token_refresh_at

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REQUEST = AppTokenRequest(
    api_base_url="https://ghe.example.com/api/v3",
    app_id="12",
    installation_id="34",
    private_key_secret="app-key",
    private_key_key="privateKey",
    token_ttl_seconds=None,
    secret_name="r1-vcs-token",
)


def run(phase: str = "Running", *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r1", "namespace": "agents", "uid": "u1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-06-01T12:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


def job(*, secret: str = "r1-vcs-token", finished: bool = False, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r1-job", "namespace": "agents"}
    if deleting:
        meta["deletionTimestamp"] = "2026-06-01T12:00:00Z"
    status = {"conditions": [{"type": "Complete", "status": "True"}]} if finished else {}
    volumes = [{"name": "t", "secret": {"secretName": secret}}, {"name": "e", "emptyDir": {}}]
    return {"metadata": meta, "spec": {"template": {"spec": {"volumes": volumes}}}, "status": status}


@pytest.mark.parametrize(
    ("obj", "jobs", "expected"),
    [
        (run(), [job()], "r1-vcs-token"),
        (run("Pending"), [job()], "r1-vcs-token"),
        (run("Succeeded"), [job()], None),  # finished run: its token is not needed any more
        (run(deleting=True), [job()], None),
        (run(), [job(finished=True)], None),  # the Job ended
        (run(), [job(deleting=True)], None),
        (run(), [job(secret="other")], None),  # token auth or no VCS: nothing mounted
        (run(), [], None),
        (run(), [job(finished=True), job()], "r1-vcs-token"),  # a workflow's next step still mounts it
    ],
    ids=[
        "running",
        "pending",
        "finished",
        "deleting",
        "job-finished",
        "job-deleting",
        "other-secret",
        "no-job",
        "one-live-step",
    ],
)
def test_which_runs_need_their_token(
    obj: dict[str, Any], jobs: list[dict[str, Any]], expected: str | None
) -> None:
    assert token_secret_in_use(obj, jobs) == expected


def secret(token: InstallationToken, stored_at: datetime) -> dict[str, Any]:
    return token_secret_manifest(
        {"metadata": {"name": "r1", "namespace": "agents", "uid": "u1"}},
        token,
        source=dataclasses.asdict(REQUEST),
        now=stored_at,
    )


def test_the_secret_records_its_source_and_refresh_time_and_no_secret() -> None:
    s = secret(InstallationToken("ghs_x", T0 + timedelta(hours=1)), T0)
    annotations = s["metadata"]["annotations"]
    assert annotations[ANNOTATION_TOKEN_EXPIRES_AT] == "2026-06-01T13:00:00Z"
    assert annotations[ANNOTATION_TOKEN_REFRESH_AT] == "2026-06-01T12:55:00Z"  # 5 min before expiry
    assert "ghs_x" not in str(s["metadata"]) and "BEGIN" not in annotations[ANNOTATION_TOKEN_SOURCE]
    assert request_from_secret(s) == REQUEST
    assert s["metadata"]["ownerReferences"][0]["uid"] == "u1"


@pytest.mark.parametrize(
    ("lifetime", "stored_after", "refresh_before_expiry"),
    [
        (timedelta(hours=1), timedelta(0), timedelta(minutes=5)),  # capped at 5 min
        (timedelta(minutes=10), timedelta(0), timedelta(minutes=1)),  # 10 % of the rest
        (timedelta(minutes=2), timedelta(0), timedelta(seconds=30)),  # at least 30 s
        # a cached token reused for a later run: 10 % of what is left when it is stored
        (timedelta(hours=1), timedelta(minutes=50), timedelta(minutes=1)),
    ],
)
def test_refresh_time(lifetime: timedelta, stored_after: timedelta, refresh_before_expiry: timedelta) -> None:
    token = InstallationToken("t", T0 + lifetime)
    assert token_refresh_at(token, T0 + stored_after) == token.expires_at - refresh_before_expiry


def test_an_expired_token_is_refreshed_at_once() -> None:
    token = InstallationToken("t", T0 - timedelta(minutes=1))
    assert token_refresh_at(token, T0) == T0


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T0, RefreshDecision(requeue_after=55 * 60.0)),
        (T0 + timedelta(minutes=54, seconds=59), RefreshDecision(requeue_after=1.0)),
        (T0 + timedelta(minutes=55), RefreshDecision(mint=REQUEST)),
        (T0 + timedelta(hours=2), RefreshDecision(mint=REQUEST)),  # expired already (controller down)
    ],
)
def test_decide_refresh(at: datetime, expected: RefreshDecision) -> None:
    s = secret(InstallationToken("t", T0 + timedelta(hours=1)), T0)
    assert decide_refresh(s, at) == expected


def test_no_secret_or_no_source_means_nothing_to_refresh() -> None:
    assert decide_refresh(None, T0) == RefreshDecision()
    s = token_secret_manifest({"metadata": {"name": "r1", "namespace": "agents"}}, InstallationToken("t", T0))
    assert decide_refresh(s, T0) == RefreshDecision()  # written before the source was recorded
    s["metadata"]["annotations"][ANNOTATION_TOKEN_SOURCE] = "{not json"
    assert decide_refresh(s, T0) == RefreshDecision()


def test_a_secret_without_refresh_time_is_refreshed_at_its_expiry() -> None:
    s = secret(InstallationToken("t", T0 + timedelta(hours=1)), T0)
    del s["metadata"]["annotations"][ANNOTATION_TOKEN_REFRESH_AT]
    assert decide_refresh(s, T0) == RefreshDecision(requeue_after=3600.0)


def owned(
    obj: dict[str, Any], kind: str = "AgentRun", name: str = "r1", controller: bool = True
) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = [{"kind": kind, "name": name, "uid": "u1", "controller": controller}]
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (owned(job()), True),  # the run's Job mounts the run's token Secret
        (owned(job(finished=True)), True),  # its finishing is the event that stops the refresh
        (owned(job(secret="other")), False),  # no GitHub App: the refresher has nothing to do with it
        (owned(job(), name="r2"), False),  # mounts another run's Secret name
        (owned(job(), kind="OrchestrationRun"), False),
        (owned(job(), controller=False), False),
        (job(), False),  # no owner
    ],
    ids=["mounts", "finished", "other-secret", "other-run", "other-owner", "not-controller", "no-owner"],
)
def test_only_jobs_that_mount_their_runs_token_secret_wake_the_refresher(
    obj: dict[str, Any], expected: bool
) -> None:
    assert mounts_its_token_secret(obj) is expected


def test_the_refresher_ignores_agentrun_events_and_filters_job_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed on a manager: run events never enqueue, Job events only through the filter above."""
    from jangar.controllers import app_token_refresh
    from jangar.controllers.kinds import AGENTRUNS, JOBS

    calls: dict[str, Any] = {}

    class FakeBuilder:
        def __init__(self, _manager: Any) -> None:
            pass

        def for_(self, ref: Any, *predicates: Any) -> FakeBuilder:
            calls["for"] = (ref, predicates)
            return self

        def owns(self, ref: Any, *predicates: Any) -> FakeBuilder:
            calls["owns"] = (ref, predicates)
            return self

        def with_options(self, **_: Any) -> FakeBuilder:
            return self

        def named(self, _name: str) -> FakeBuilder:
            return self

        def complete(self, _reconciler: Any) -> None:
            calls["complete"] = True

    class FakeManager:
        client = cache = None

    monkeypatch.setattr(app_token_refresh, "Builder", FakeBuilder)
    app_token_refresh.install_app_token_refresh(FakeManager(), None, None)  # type: ignore[arg-type]
    ref, (run_filter,) = calls["for"]
    assert ref == AGENTRUNS
    r = owned(run())
    assert not run_filter.create(r) and not run_filter.update(r, r) and not run_filter.delete(r)
    ref, (job_filter,) = calls["owns"]
    assert ref == JOBS
    assert job_filter.create(owned(job())) and not job_filter.create(owned(job(secret="other")))
    assert job_filter.update(owned(job()), owned(job(finished=True)))
