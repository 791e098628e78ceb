"""`RunsService`: one namespace rule, idempotency (replay vs conflict), cancel, and an early queue refusal that
is exactly the controller's admission decision on the same snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jangar.admission import AdmissionLedger, AdmissionLimits, Rejection, RunRecord, decide
from jangar.admission.snapshot import snapshot
from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.refs import AGENTRUNS
from jangar.conditions import format_time
from jangar.controllers.admission_gate import AdmissionGate
from jangar.runtime.resources import JOBS
from jangar.runtime.testing import FakeCache
from jangar.services import (
    AlreadyExists,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    QueueFull,
    RunsService,
    ServiceError,
    Submission,
    build_agent_run,
)
from jangar.settings import Settings
from tests.unit.services.fakes import FakeClient

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
AC = "JANGAR_AGENTS_CONTROLLER_"
# Every limit off except those a case sets, so each case isolates one limit.
OFF = {
    f"{AC}CONCURRENCY_NAMESPACE": "0",
    f"{AC}CONCURRENCY_AGENT": "0",
    f"{AC}CONCURRENCY_CLUSTER": "0",
    f"{AC}QUEUE_NAMESPACE": "0",
    f"{AC}QUEUE_REPO": "0",
    f"{AC}QUEUE_CLUSTER": "0",
    f"{AC}RATE_NAMESPACE": "0",
    f"{AC}RATE_REPO": "0",
    f"{AC}RATE_CLUSTER": "0",
}


def _settings(namespaces: str = "a,b,c", **env: str) -> Settings:
    base = {f"{AC}NAMESPACES": namespaces, **OFF, **{f"{AC}{k}": v for k, v in env.items()}}
    if namespaces == "*":
        base["JANGAR_RBAC_CLUSTER_SCOPED"] = "true"
    return Settings.from_env(base)


def _service(
    settings: Settings | None = None,
    cache: FakeCache | None = None,
    client: FakeClient | None = None,
    ledger: AdmissionLedger | None = None,
) -> RunsService:
    return RunsService(
        client or FakeClient(),  # type: ignore[arg-type]
        cache or FakeCache(),
        settings or _settings(),
        ledger=ledger,
        clock=lambda: NOW,
    )


def _run(
    name: str,
    ns: str = "a",
    *,
    phase: str = "",
    age: int = 60,
    repo: str | None = None,
    invalid: bool = False,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{ns}-{name}",
        "creationTimestamp": format_time(NOW - timedelta(seconds=age)),
    }
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    status: dict[str, Any] = {"phase": phase}
    if invalid:
        status["conditions"] = [{"type": "InvalidSpec", "status": "True"}]
    spec: dict[str, Any] = {"agentRef": {"name": "coder"}}
    if repo:
        spec["parameters"] = {"repository": repo}
    return {"metadata": meta, "spec": spec, "status": status}


def _job_for(run: dict[str, Any]) -> dict[str, Any]:
    meta = run["metadata"]
    return {
        "metadata": {
            "name": f"{meta['name']}-job",
            "namespace": meta["namespace"],
            "creationTimestamp": format_time(NOW - timedelta(seconds=5)),
            "ownerReferences": [{"kind": "AgentRun", "uid": meta["uid"], "controller": True}],
        }
    }


def _sub(ns: str = "a", repo: str | None = None, **kw: Any) -> Submission:
    return Submission("coder", ns, "impl", parameters={"repository": repo} if repo else {}, **kw)


# -- namespace scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespaces", "requested", "expected"),
    [
        ("team-a,team-b", "", "team-a"),
        ("team-a,team-b", "  ", "team-a"),
        ("team-a,team-b", "team-b", "team-b"),
        ("team-a,team-b", "team-c", NamespaceNotManaged),
        ("team-a,team-b", "*", InvalidRequest),
        ("*", "anything", "anything"),
        ("*", "", InvalidRequest),  # no sensible default when every namespace is watched
        ("*", "*", InvalidRequest),
    ],
)
def test_one_namespace_rule(namespaces: str, requested: str, expected: str | type[Exception]) -> None:
    svc = _service(_settings(namespaces))
    if isinstance(expected, str):
        assert svc.namespace(requested) == expected
    else:
        with pytest.raises(expected):
            svc.namespace(requested)


OPERATIONS: dict[str, Callable[[RunsService, str], Awaitable[Any]]] = {
    "submit": lambda svc, ns: svc.submit(_sub(ns)),
    "get": lambda svc, ns: svc.get(ns, "x"),
    "cancel": lambda svc, ns: svc.cancel(ns, "x"),
    "list": lambda svc, ns: svc.list(ns),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize(("requested", "error"), [("elsewhere", NamespaceNotManaged), ("*", InvalidRequest)])
async def test_every_operation_refuses_outside_the_scope_before_any_call(
    operation: str, requested: str, error: type[ServiceError]
) -> None:
    client = FakeClient()
    with pytest.raises(error):
        await OPERATIONS[operation](_service(client=client), requested)
    assert client.calls == []


async def test_list_without_a_namespace_covers_every_managed_namespace() -> None:
    client = FakeClient()
    for ns in ("a", "b", "outside"):
        client.put(_run(f"r-{ns}", ns))
    svc = _service(client=client)
    listed = await svc.list(None)
    assert [o["metadata"]["name"] for o in listed.items] == ["r-a", "r-b"]
    assert listed.resource_version == ""
    one = await svc.list("b")
    assert ([o["metadata"]["name"] for o in one.items], one.resource_version) == (["r-b"], "rv-b")
    assert [o["metadata"]["name"] for o in (await svc.list("")).items] == ["r-a"]  # the default namespace
    everywhere = await _service(_settings("*"), client=client).list(None)
    assert len(everywhere.items) == 3


async def test_list_filters_by_phase_and_runtime_and_strips_managed_fields() -> None:
    client = FakeClient()
    client.put({**_run("p", phase=""), "metadata": {**_run("p")["metadata"], "managedFields": [{}]}})
    client.put(_run("r", phase="Running", age=30))
    svc = _service(client=client)
    assert [o["metadata"]["name"] for o in (await svc.list("a", phase="pending")).items] == ["p"]
    assert [o["metadata"]["name"] for o in (await svc.list("a", phase="Running")).items] == ["r"]
    assert (await svc.list("a", runtime="workflow")).items == []
    assert all("managedFields" not in o["metadata"] for o in (await svc.list("a")).items)


# -- idempotency -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        ({"idempotency_key": "k"}, {"idempotency_key": "k"}, "replay"),
        ({"name": "fixed", "idempotency_key": "k"}, {"name": "fixed", "idempotency_key": "k"}, "replay"),
        ({"name": "fixed"}, {"name": "fixed"}, "conflict"),  # no key: not a replay
        ({"name": "fixed", "idempotency_key": "k1"}, {"name": "fixed", "idempotency_key": "k2"}, "conflict"),
        ({"name": "fixed"}, {"name": "fixed", "idempotency_key": "k"}, "conflict"),
        ({}, {}, "new"),  # generated names
    ],
)
async def test_idempotency_replay_vs_conflict(
    first: dict[str, str], second: dict[str, str], outcome: str
) -> None:
    svc = _service()
    created = await svc.submit(_sub(**first))
    assert not created.replayed
    if outcome == "conflict":
        with pytest.raises(AlreadyExists, match="already exists"):
            await svc.submit(_sub(**second))
        return
    again = await svc.submit(_sub(**second))
    assert again.replayed is (outcome == "replay")
    same = again.run["metadata"]["uid"] == created.run["metadata"]["uid"]
    assert same is (outcome == "replay")


async def test_a_replay_is_answered_even_when_the_queue_is_full() -> None:
    cache = FakeCache()
    svc = _service(_settings(CONCURRENCY_CLUSTER="1", QUEUE_NAMESPACE="1"), cache)
    cache.add(AGENTRUNS, _run("r0", phase="Running"))
    accepted = await svc.submit(_sub(idempotency_key="k"))
    cache.add(AGENTRUNS, accepted.run)  # it now holds the only queue place
    replay = await svc.submit(_sub(idempotency_key="k"))
    assert replay.replayed and replay.run["metadata"]["uid"] == accepted.run["metadata"]["uid"]
    with pytest.raises(QueueFull):
        await svc.submit(_sub(idempotency_key="other"))
    with pytest.raises(AlreadyExists):  # the name is taken by another key: a conflict, not a full queue
        await svc.submit(_sub(name=accepted.run["metadata"]["name"], idempotency_key="other"))


# -- cancel and get ----------------------------------------------------------------------------------------


async def test_cancel_sets_the_annotation_and_a_missing_run_is_not_found() -> None:
    client = FakeClient()
    client.put(_run("x"))
    svc = _service(client=client)
    cancelled = await svc.cancel("a", "x")
    assert cancelled["metadata"]["annotations"] == {ANNOTATION_CANCEL: "true"}
    with pytest.raises(NotFound, match="AgentRun a/missing not found"):
        await svc.cancel("a", "missing")
    with pytest.raises(NotFound):
        await svc.get("a", "missing")
    with pytest.raises(InvalidRequest, match="name is required"):
        await svc.cancel("a", "")
    assert (await svc.get("", "x"))["metadata"]["name"] == "x"


# -- early refusal = the controller's admission ------------------------------------------------------------


def _controller_rejects(cache: FakeCache, settings: Settings, sub: Submission) -> Rejection | None:
    """What the controller would decide for the run once created now: `decide` on the same snapshot plus the
    new run, and — the real code path — `AdmissionGate.admit` with the run in the cache."""
    limits = AdmissionLimits.from_settings(settings)
    run = build_agent_run(sub)
    run["metadata"] |= {"name": "zz-new", "uid": "uid-new", "creationTimestamp": format_time(NOW)}
    records = [*snapshot(cache, lambda: NOW), RunRecord.from_run(run)]
    by_decide = decide(records, limits, NOW).rejected.get((sub.namespace, "zz-new"))
    trial = FakeCache()
    for ref in (AGENTRUNS, JOBS):
        trial.add(ref, *cache.list(ref))
    trial.add(AGENTRUNS, run)
    verdict = AdmissionGate(trial, limits, clock=lambda: NOW).admit(run)
    assert isinstance(verdict, Rejection) is (by_decide is not None)
    return by_decide


CASES: list[tuple[str, dict[str, str], list[dict[str, Any]], Submission, str | None]] = [
    # (case, limits, existing runs, submission, expected rejection scope)
    (
        "namespace queue full",
        {"CONCURRENCY_CLUSTER": "1", "QUEUE_NAMESPACE": "2"},
        [_run("r0", phase="Running"), _run("q1", phase="Queued"), _run("q2", phase="Queued")],
        _sub("a"),
        "namespace",
    ),
    (
        "another namespace's queue has room",
        {"CONCURRENCY_CLUSTER": "1", "QUEUE_NAMESPACE": "2"},
        [_run("r0", phase="Running"), _run("q1", phase="Queued"), _run("q2", phase="Queued")],
        _sub("b"),
        None,
    ),
    (
        "repository queue full across namespaces (case-insensitive)",
        {"CONCURRENCY_CLUSTER": "1", "QUEUE_REPO": "2"},
        [
            _run("r0", "c", phase="Running"),
            _run("q1", "a", phase="Queued", repo="acme/x"),
            _run("q2", "b", phase="Queued", repo="acme/x"),
        ],
        _sub("c", repo="ACME/X"),
        "repository",
    ),
    (
        "another repository has room",
        {"CONCURRENCY_CLUSTER": "1", "QUEUE_REPO": "2"},
        [
            _run("r0", "c", phase="Running"),
            _run("q1", "a", phase="Queued", repo="acme/x"),
            _run("q2", "b", phase="Queued", repo="acme/x"),
        ],
        _sub("c", repo="acme/y"),
        None,
    ),
    (
        "cluster queue full",
        {"CONCURRENCY_CLUSTER": "1", "QUEUE_CLUSTER": "2"},
        [_run("r0", "a", phase="Running"), _run("q1", "a", phase="Queued"), _run("q2", "b", phase="Queued")],
        _sub("c"),
        "cluster",
    ),
    (
        "held, invalid, deleting and finished runs do not fill the queue",
        {"CONCURRENCY_CLUSTER": "1", "QUEUE_NAMESPACE": "2"},
        [
            _run("r0", phase="Running"),
            _run("q1", phase="Queued"),
            _run("invalid", phase="Pending", invalid=True),
            _run("deleting", deleting=True),
            _run("done", phase="Succeeded"),
        ],
        _sub("a"),
        None,
    ),
    (
        "a pending run the controller would admit at once takes no queue place",
        {"CONCURRENCY_CLUSTER": "2", "QUEUE_NAMESPACE": "1"},
        [_run("p1"), _run("p2")],
        _sub("a"),
        None,
    ),
    (
        "pending runs beyond capacity do take queue places",
        {"CONCURRENCY_CLUSTER": "2", "QUEUE_NAMESPACE": "1"},
        [_run("p1"), _run("p2"), _run("p3")],
        _sub("a"),
        "namespace",
    ),
    (
        "a queue limit of 0 is off",
        {"CONCURRENCY_CLUSTER": "1"},
        [_run("r0", phase="Running"), *[_run(f"q{i}", phase="Queued") for i in range(5)]],
        _sub("a"),
        None,
    ),
]


@pytest.mark.parametrize(("case", "limits", "runs", "sub", "scope"), CASES, ids=[c[0] for c in CASES])
async def test_early_refusal_is_the_controllers_decision(
    case: str, limits: dict[str, str], runs: list[dict[str, Any]], sub: Submission, scope: str | None
) -> None:
    settings = _settings(**limits)
    cache = FakeCache()
    for run in runs:
        cache.add(AGENTRUNS, run)
    controller = _controller_rejects(cache, settings, sub)
    assert (controller.scope if controller else None) == scope
    client = FakeClient()
    svc = _service(settings, cache, client)
    if scope is None:
        assert not (await svc.submit(sub)).replayed
        return
    with pytest.raises(QueueFull) as err:
        await svc.submit(sub)
    assert controller is not None
    assert (err.value.scope, err.value.limit, err.value.message) == (
        controller.scope,
        controller.limit,
        controller.message,
    )
    assert err.value.retry_after == 30 and err.value.reason == "QueueLimitExceeded"
    assert [c[0] for c in client.calls] == []  # refused before any write


async def test_a_run_whose_job_exists_holds_capacity_like_in_the_controller() -> None:
    settings = _settings(CONCURRENCY_CLUSTER="1", QUEUE_NAMESPACE="1")
    cache = FakeCache()
    p1 = _run("p1")
    cache.add(AGENTRUNS, p1)
    cache.add(AGENTRUNS, _run("p2"))
    # p1 admitted (p2 takes the only queue place): the new run is refused.
    assert _controller_rejects(cache, settings, _sub()) is not None
    with pytest.raises(QueueFull):
        await _service(settings, cache).submit(_sub())
    # Now r0 holds the cluster slot, and p1 has a Job but no admittedAt (a crash in between). Counted as
    # waiting, p1 would take the only queue place; like the controller, the service counts it as admitted.
    cache.add(JOBS, _job_for(p1))
    cache.delete(AGENTRUNS, "p2", "a")
    cache.add(AGENTRUNS, _run("r0", phase="Running", age=120))
    assert _controller_rejects(cache, settings, _sub()) is None
    assert not (await _service(settings, cache).submit(_sub())).replayed


async def test_the_controllers_reservations_count_when_it_runs_in_this_process() -> None:
    settings = _settings(CONCURRENCY_CLUSTER="1", QUEUE_NAMESPACE="1")
    limits = AdmissionLimits.from_settings(settings)
    cache = FakeCache()
    cache.add(AGENTRUNS, _run("p1"))
    # p1 is admitted and reserved in the ledger; its admittedAt has not reached the cache yet.
    ledger = AdmissionLedger(limits)
    assert ledger.admit(("a", "p1"), snapshot(cache, lambda: NOW), NOW) is not None
    cache.add(AGENTRUNS, _run("r0", phase="Running", age=120))  # seen as active from the cache
    # Without the ledger p1 looks like it waits (the cluster slot is r0's) and fills the queue; with it, p1
    # is admitted and the queue has room — what the controller's own decision sees.
    with pytest.raises(QueueFull):
        await _service(settings, cache).submit(_sub())
    assert not (await _service(settings, cache, ledger=ledger).submit(_sub())).replayed


async def test_no_agentrun_informer_means_no_early_refusal() -> None:
    class NoInformers(FakeCache):
        def list(self, ref: Any, *args: Any, **kwargs: Any) -> list[Any]:
            from jangar.runtime import InformerNotRegistered

            raise InformerNotRegistered(str(ref))

    svc = _service(_settings(CONCURRENCY_CLUSTER="1", QUEUE_NAMESPACE="1"), NoInformers())
    assert not (await svc.submit(_sub())).replayed


PHASES = st.sampled_from(["", "Pending", "Queued", "Running", "Succeeded", "Failed"])
RUNS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        PHASES,
        st.sampled_from([None, "acme/x", "acme/y"]),
        st.booleans(),  # held (InvalidSpec)
        st.integers(1, 300),  # age
    ),
    max_size=12,
)
LIMIT = st.sampled_from(["0", "1", "2", "3"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=RUNS,
    concurrency=st.sampled_from(["1", "2", "4"]),
    q_ns=LIMIT,
    q_repo=LIMIT,
    q_cluster=LIMIT,
    ns=st.sampled_from(["a", "b"]),
    repo=st.sampled_from([None, "acme/x", "ACME/Y"]),
)
def test_property_refuses_exactly_when_the_controller_rejects(
    runs: list[tuple[str, str, str | None, bool, int]],
    concurrency: str,
    q_ns: str,
    q_repo: str,
    q_cluster: str,
    ns: str,
    repo: str | None,
) -> None:
    import asyncio

    settings = _settings(
        CONCURRENCY_NAMESPACE=concurrency, QUEUE_NAMESPACE=q_ns, QUEUE_REPO=q_repo, QUEUE_CLUSTER=q_cluster
    )
    cache = FakeCache()
    for i, (run_ns, phase, run_repo, held, age) in enumerate(runs):
        cache.add(AGENTRUNS, _run(f"r{i}", run_ns, phase=phase, repo=run_repo, invalid=held, age=age))
    sub = _sub(ns, repo=repo)
    controller = _controller_rejects(cache, settings, sub)
    svc = _service(settings, cache)
    try:
        asyncio.run(svc.submit(dataclasses.replace(sub)))
        refused = None
    except QueueFull as err:
        refused = err
    assert (refused is None) == (controller is None)
    if refused is not None and controller is not None:
        assert (refused.scope, refused.message) == (controller.scope, controller.message)
