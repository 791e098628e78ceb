"""Admission decisions: examples pinning the behaviour, and properties over random snapshots."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jangar.admission import AdmissionLedger, AdmissionLimits, Admit, Rejection, RunRecord, Waiting, decide
from jangar.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OFF = AdmissionLimits(
    per_namespace=0,
    per_agent=0,
    cluster=0,
    queue_per_namespace=0,
    queue_per_repo=0,
    queue_cluster=0,
    rate_per_namespace=0,
    rate_per_repo=0,
    rate_cluster=0,
)


def rec(
    name: str, t: int, ns: str = "a", agent: str = "x", repo: str | None = None, **kw: object
) -> RunRecord:
    return RunRecord(ns, name, NOW - timedelta(seconds=1000 - t), agent=agent, repository=repo, **kw)  # type: ignore[arg-type]


def running(name: str, t: int = 0, **kw: Any) -> RunRecord:
    return rec(name, t, phase="Running", admitted_at=NOW - timedelta(hours=1), **kw)


def test_from_settings_and_from_run() -> None:
    limits = AdmissionLimits.from_settings(Settings())
    assert (limits.per_namespace, limits.per_agent, limits.cluster) == (10, 5, 100)
    run = {
        "metadata": {"name": "r", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"agentRef": {"name": "ag"}, "parameters": {"repo": "Acme/Demo"}},
        "status": {"phase": "Queued", "queue": {"admittedAt": None}},
    }
    record = RunRecord.from_run(run)
    assert (record.key, record.agent, record.repository, record.queued, record.waiting) == (
        ("ns", "r"),
        "ag",
        "acme/demo",
        True,
        True,
    )


def test_concurrency_limits_hold_runs_with_the_reference_messages() -> None:
    limits = replace(OFF, per_agent=1)
    d = decide([running("r0"), rec("r1", 1)], limits, NOW)
    assert d.admitted == ()
    w = d.waiting[("a", "r1")]
    assert (w.scope, w.key, w.limit, w.position) == ("agent", "a/x", 1, 1)
    assert "agent x reached its concurrency limit" in w.message
    assert w.reason == "ConcurrencyLimit"

    limits = replace(OFF, per_namespace=2)
    d = decide([running("r0"), rec("r1", 1), rec("r2", 2), rec("r3", 3)], limits, NOW)
    assert d.admitted == (("a", "r1"),)
    assert [(d.waiting[k].scope, d.waiting[k].position) for k in [("a", "r2"), ("a", "r3")]] == [
        ("namespace", 1),
        ("namespace", 2),
    ]


def test_repository_limit_spans_namespaces() -> None:
    limits = replace(OFF, repo_enabled=True, repo_default=1, repo_overrides={"big/repo": 2})
    runs = [
        running("r0", ns="b", repo="acme/demo"),
        rec("r1", 1, repo="acme/demo"),
        rec("r2", 2, repo="big/repo"),
    ]
    d = decide(runs, limits, NOW)
    assert d.admitted == (("a", "r2"),)
    assert d.waiting[("a", "r1")].scope == "repository"


def test_fifo_within_namespace_but_other_agents_may_pass_a_held_run() -> None:
    limits = replace(OFF, per_agent=1, per_namespace=3)
    runs = [
        running("r0", agent="x"),
        rec("r1", 1, agent="x"),
        rec("r2", 2, agent="y"),
        rec("r3", 3, agent="y"),
    ]
    d = decide(runs, limits, NOW)
    assert d.admitted == (("a", "r2"),)
    assert d.waiting[("a", "r1")].scope == "agent"
    assert d.waiting[("a", "r3")].scope == "agent"


def test_round_robin_across_namespaces() -> None:
    limits = replace(OFF, cluster=4)
    runs = [rec(f"a{i}", i, ns="a") for i in range(5)] + [rec(f"b{i}", 10 + i, ns="b") for i in range(5)]
    d = decide(runs, limits, NOW)
    assert Counter(ns for ns, _ in d.admitted) == {"a": 2, "b": 2}
    assert d.admitted[:2] == (("a", "a0"), ("b", "b0"))
    assert d.waiting[("a", "a2")].scope == "cluster"


def test_queue_limit_rejects_the_newest_new_runs_only() -> None:
    limits = replace(OFF, per_namespace=1, queue_per_namespace=2)
    runs = [
        running("r0"),
        rec("q1", 1, phase="Queued", queued=True),
        rec("q2", 2, phase="Queued", queued=True),
        rec("q3", 3, phase="Queued", queued=True),  # over the limit already (limit lowered): kept
        rec("n1", 4),
    ]
    d = decide(runs, limits, NOW)
    assert set(d.rejected) == {("a", "n1")}
    assert d.rejected[("a", "n1")].reason == "QueueLimitExceeded"
    assert [d.waiting[("a", n)].position for n in ("q1", "q2", "q3")] == [1, 2, 3]
    assert d.depths[("namespace", "a")] == 3


def test_new_run_admitted_directly_needs_no_queue_place() -> None:
    limits = replace(OFF, per_namespace=5, queue_per_namespace=1)
    d = decide([rec("q1", 1, queued=True, phase="Queued"), rec("n1", 2)], limits, NOW)
    assert d.admitted == (("a", "q1"), ("a", "n1"))
    assert d.rejected == {}


def test_rate_limit_uses_admitted_at_window_and_says_when() -> None:
    limits = replace(OFF, rate_per_namespace=2, rate_window_seconds=60)
    done = [
        rec("d1", 0, phase="Succeeded", admitted_at=NOW - timedelta(seconds=50)),
        rec("d2", 1, phase="Succeeded", admitted_at=NOW - timedelta(seconds=10)),
        rec("old", 2, phase="Succeeded", admitted_at=NOW - timedelta(seconds=600)),
    ]
    d = decide([*done, rec("n1", 5)], limits, NOW)
    w = d.waiting[("a", "n1")]
    assert (w.scope, w.key) == ("rate", "namespace/a")
    assert w.requeue_after == 10  # the admission 50 s ago leaves the window in 10 s
    assert w.reason == "RateLimited"
    d = decide([*done, rec("n1", 5)], limits, NOW + timedelta(seconds=11))
    assert d.admitted == (("a", "n1"),)


def test_zero_turns_limits_off() -> None:
    d = decide([rec(f"r{i}", i) for i in range(50)], OFF, NOW)
    assert len(d.admitted) == 50


def test_ledger_prevents_over_admission_before_the_cache_catches_up() -> None:
    limits = replace(OFF, per_namespace=2)
    ledger = AdmissionLedger(limits)
    stale = [rec(f"r{i}", i) for i in range(5)]  # the cache never sees the admissions
    verdicts = [ledger.admit(r.key, stale, NOW) for r in stale]
    assert [type(v).__name__ for v in verdicts] == ["Admit", "Admit", "Waiting", "Waiting", "Waiting"]
    # A retried reconcile of an admitted run is told to proceed, not re-decided.
    assert isinstance(ledger.admit(("a", "r0"), stale, NOW), Admit)
    # Once the cache shows the admissions the reservations are dropped, with the same decisions.
    caught_up = [replace(r, admitted_at=NOW) if r.name in ("r0", "r1") else r for r in stale]
    assert ledger.decide(caught_up, NOW) == AdmissionLedger(limits).decide(caught_up, NOW)
    assert ledger.reservations == {}
    # Releasing a reservation frees the slot.
    ledger2 = AdmissionLedger(limits)
    ledger2.admit(("a", "r0"), stale, NOW)
    ledger2.release(("a", "r0"))
    assert ledger2.reservations == {}


def test_ledger_rejection_and_finished_runs() -> None:
    limits = replace(OFF, per_namespace=1, queue_per_namespace=1)
    ledger = AdmissionLedger(limits)
    runs = [running("r0"), rec("q1", 1, phase="Queued", queued=True), rec("n1", 2)]
    assert isinstance(ledger.admit(("a", "n1"), runs, NOW), Rejection)
    assert isinstance(ledger.admit(("a", "q1"), runs, NOW), Waiting)
    assert ledger.admit(("a", "gone"), runs, NOW) is None
    assert ledger.admit(("a", "done"), [rec("done", 1, phase="Succeeded")], NOW) is None


# ---- properties -----------------------------------------------------------------------------------

NAMESPACES = ["a", "b", "c"]
AGENTS = ["x", "y"]
REPOS = [None, "r1", "r2"]


@st.composite
def snapshots(draw: st.DrawFn) -> list[RunRecord]:
    count = draw(st.integers(0, 20))
    runs = []
    for i in range(count):
        kind = draw(st.sampled_from(["new", "queued", "active", "done"]))
        admitted = NOW - timedelta(seconds=draw(st.integers(0, 300))) if kind in ("active", "done") else None
        runs.append(
            RunRecord(
                namespace=draw(st.sampled_from(NAMESPACES)),
                name=f"r{i}",
                created_at=NOW - timedelta(seconds=draw(st.integers(0, 1000))),
                phase={"new": "", "queued": "Queued", "active": "Running", "done": "Succeeded"}[kind],
                agent=draw(st.sampled_from(AGENTS)),
                repository=draw(st.sampled_from(REPOS)),
                admitted_at=admitted,
                queued=kind == "queued",
            )
        )
    return runs


small = st.integers(0, 4)
limits_strategy = st.builds(
    AdmissionLimits,
    per_namespace=small,
    per_agent=small,
    cluster=st.integers(0, 8),
    repo_enabled=st.booleans(),
    repo_default=small,
    queue_per_namespace=small,
    queue_per_repo=small,
    queue_cluster=st.integers(0, 8),
    rate_window_seconds=st.integers(1, 120),
    rate_per_namespace=small,
    rate_per_repo=small,
    rate_cluster=st.integers(0, 8),
)


def check_limits(runs: list[RunRecord], admitted: set[tuple[str, str]], limits: AdmissionLimits) -> None:
    """No limit that an admission counted against is exceeded after the admissions."""
    final = [replace(r, admitted_at=NOW) if r.key in admitted else r for r in runs]
    active = [r for r in final if r.active]
    new = [r for r in final if r.key in admitted]
    window = NOW - timedelta(seconds=limits.rate_window_seconds)
    recent = [r for r in final if r.admitted_at is not None and window < r.admitted_at <= NOW]
    for r in new:
        same_ns = [a for a in active if a.namespace == r.namespace]
        if limits.per_namespace:
            assert len(same_ns) <= limits.per_namespace
        if limits.per_agent:
            assert sum(1 for a in same_ns if a.agent == r.agent) <= limits.per_agent
        if limits.cluster:
            assert len(active) <= limits.cluster
        if r.repository and limits.repo_limit(r.repository):
            assert sum(1 for a in active if a.repository == r.repository) <= limits.repo_limit(r.repository)
        if limits.rate_per_namespace:
            assert sum(1 for a in recent if a.namespace == r.namespace) <= limits.rate_per_namespace
        if limits.rate_cluster:
            assert len(recent) <= limits.rate_cluster
        if r.repository and limits.rate_per_repo:
            assert sum(1 for a in recent if a.repository == r.repository) <= limits.rate_per_repo


@settings(max_examples=150, deadline=None)
@given(snapshots(), limits_strategy)
def test_never_more_admitted_than_any_limit(runs: list[RunRecord], limits: AdmissionLimits) -> None:
    d = decide(runs, limits, NOW)
    check_limits(runs, set(d.admitted), limits)
    # Every waiting run is accounted for exactly once.
    waiting = {r.key for r in runs if r.waiting}
    assert set(d.admitted) | set(d.waiting) | set(d.rejected) == waiting
    assert not (set(d.admitted) & set(d.waiting)) and not (set(d.waiting) & set(d.rejected))


@settings(max_examples=150, deadline=None)
@given(snapshots(), limits_strategy)
def test_fifo_within_namespace(runs: list[RunRecord], limits: AdmissionLimits) -> None:
    """Runs no run-level limit tells apart (same namespace, agent, repository) are admitted strictly in
    creation order, and a run held by a namespace or cluster limit is passed by no younger run."""
    d = decide(runs, limits, NOW)
    by_key = {r.key: r for r in runs}
    for key in d.admitted:
        b = by_key[key]
        for a in runs:
            if a.key not in d.waiting or a.namespace != b.namespace or not a.order < b.order:
                continue
            assert (a.agent, a.repository) != (b.agent, b.repository), (a, b)
            assert d.waiting[a.key].scope not in ("namespace", "cluster"), (a, b)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(NAMESPACES), st.integers(0, 1000)), max_size=30), st.integers(0, 10)
)
def test_fair_across_namespaces(items: list[tuple[str, int]], cluster: int) -> None:
    runs = [RunRecord(ns, f"r{i}", NOW - timedelta(seconds=t)) for i, (ns, t) in enumerate(items)]
    d = decide(runs, replace(OFF, cluster=cluster), NOW)
    counts = Counter(ns for ns, _ in d.admitted)
    still_waiting = {ns for ns, _ in d.waiting}
    for ns in still_waiting:
        assert all(counts[ns] >= other - 1 for other in counts.values())


@settings(max_examples=100, deadline=None)
@given(snapshots(), limits_strategy, st.randoms(use_true_random=False))
def test_decision_independent_of_input_order(
    runs: list[RunRecord], limits: AdmissionLimits, rnd: random.Random
) -> None:
    shuffled = list(runs)
    rnd.shuffle(shuffled)
    assert decide(shuffled, limits, NOW) == decide(runs, limits, NOW)


@settings(max_examples=100, deadline=None)
@given(snapshots(), limits_strategy)
def test_queue_limits_only_reject_new_runs_and_never_overfill(
    runs: list[RunRecord], limits: AdmissionLimits
) -> None:
    d = decide(runs, limits, NOW)
    by_key = {r.key: r for r in runs}
    assert all(not by_key[k].queued for k in d.rejected)
    newly = [by_key[k] for k in d.waiting if not by_key[k].queued]
    queued = [by_key[k] for k in d.waiting]
    for r in newly:
        if limits.queue_per_namespace:
            assert sum(1 for q in queued if q.namespace == r.namespace) <= max(
                limits.queue_per_namespace, sum(1 for q in queued if q.namespace == r.namespace and q.queued)
            )
        if limits.queue_cluster:
            assert len(queued) <= max(limits.queue_cluster, sum(1 for q in queued if q.queued))


@settings(max_examples=100, deadline=None)
@given(snapshots(), limits_strategy, st.randoms(use_true_random=False))
def test_ledger_with_stale_cache_and_restart(
    runs: list[RunRecord], limits: AdmissionLimits, rnd: random.Random
) -> None:
    """Workers admit one run at a time from a cache that never catches up: limits (queue limits included)
    still hold. A restart (fresh ledger over the caught-up snapshot: admitted runs with `admittedAt`, waiting
    ones Queued, rejected ones Failed) then reaches the same decision as the old ledger."""
    ledger = AdmissionLedger(limits)
    keys = [r.key for r in runs if r.waiting]
    rnd.shuffle(keys)
    admitted: set[tuple[str, str]] = set()
    last: dict[tuple[str, str], object] = {}
    for _ in range(3):  # a few passes, as requeues would do
        for key in keys:
            verdict = ledger.admit(key, runs, NOW)
            if isinstance(verdict, Admit):
                admitted.add(key)
            if key in last and not isinstance(last[key], Admit):
                # a verdict is stable until the cache catches up, except that a waiting run may start
                assert isinstance(verdict, Admit) or verdict == last[key] or isinstance(verdict, Waiting)
            last[key] = verdict
    check_limits(runs, admitted, limits)
    assert set(ledger.reservations) == admitted
    check_queue_limits(runs, last, limits)
    before = ledger.decide(runs, NOW)

    def caught(r: RunRecord) -> RunRecord:
        verdict = last.get(r.key)
        if isinstance(verdict, Admit):
            return replace(r, admitted_at=NOW)
        if isinstance(verdict, Waiting):
            return replace(r, phase="Queued", queued=True)
        if isinstance(verdict, Rejection):
            return replace(r, phase="Failed")
        return r

    caught_up = [caught(r) for r in runs]
    after = AdmissionLedger(limits).decide(caught_up, NOW)
    assert after.admitted == before.admitted
    assert after.waiting == before.waiting
    assert after.rejected == {}  # the rejected runs are Failed now


def check_queue_limits(
    runs: list[RunRecord], verdicts: dict[tuple[str, str], object], limits: AdmissionLimits
) -> None:
    """Runs the ledger told to wait never exceed a queue limit, unless they already held their place."""
    by_key = {r.key: r for r in runs}
    waiting = [by_key[k] for k, v in verdicts.items() if isinstance(v, Waiting)]
    held_ns = Counter(r.namespace for r in runs if r.queued and r.waiting)
    if limits.queue_per_namespace:
        for ns, count in Counter(r.namespace for r in waiting).items():
            assert count <= max(limits.queue_per_namespace, held_ns[ns])
    if limits.queue_cluster:
        assert len(waiting) <= max(limits.queue_cluster, sum(held_ns.values()))


def test_same_second_burst_keeps_numeric_name_order() -> None:
    created = NOW - timedelta(minutes=1)
    burst = [RunRecord("a", f"run-{i}", created) for i in (10, 2, 1, 11, 3)]
    d = decide(burst, replace(OFF, per_namespace=5), NOW)
    assert [name for _, name in d.admitted] == ["run-1", "run-2", "run-3", "run-10", "run-11"]


def test_submission_rejection_matches_the_controller() -> None:
    from jangar.admission import submission_rejection

    limits = replace(OFF, per_namespace=1, queue_per_namespace=1, queue_per_repo=1)
    runs = [running("r0"), rec("q1", 1, phase="Queued", queued=True, repo="acme/demo")]
    full = submission_rejection(runs, limits, namespace="a", agent="x", repository=None, now=NOW)
    assert full is not None and full.reason == "QueueLimitExceeded" and full.scope == "namespace"
    # Namespace b has room to run it at once: no queue place needed.
    assert (
        submission_rejection(runs, limits, namespace="b", agent="x", repository="acme/demo", now=NOW) is None
    )
    runs.append(running("r1", ns="b"))
    assert submission_rejection(runs, limits, namespace="b", agent="x", repository=None, now=NOW) is None
    repo = submission_rejection(runs, limits, namespace="b", agent="x", repository="ACME/demo", now=NOW)
    assert repo is not None and repo.scope == "repository"
