"""Reservations under a stale cache (queue places, rejections, admissions) and the rate window.

Each table row is a sequence of steps against one `AdmissionLedger` whose snapshot is whatever the row says
the cache shows at that step: the cache never sees the ledger's own verdicts unless a step says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from jangar.admission import AdmissionLedger, AdmissionLimits, Admit, Rejection, RunRecord, Waiting
from jangar.admission.window import RateWindow, Stamp, parse_stamps, serialize_stamps

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


def rec(name: str, t: int, **kw: object) -> RunRecord:
    return RunRecord("a", name, NOW - timedelta(seconds=100 - t), uid=f"uid-{name}", **kw)  # type: ignore[arg-type]


RUNNING = rec("r0", 0, phase="Running", admitted_at=NOW - timedelta(hours=1))


def outcome(verdict: object) -> str:
    if isinstance(verdict, Admit):
        return "admit"
    if isinstance(verdict, Waiting):
        return f"wait:{verdict.scope}"
    if isinstance(verdict, Rejection):
        return f"reject:{verdict.reason}"
    return "none"


@dataclass(frozen=True)
class Step:
    run: str  # the run asking
    cache: tuple[RunRecord, ...]  # what the cache shows
    expect: str
    at: timedelta = timedelta()


B, C, D = rec("b", 1), rec("c", 2), rec("d", 3)
QUEUE_CAP_1 = replace(OFF, per_namespace=1, queue_per_namespace=1)

QUEUE_CASES = {
    # The cap-1 race: two workers decide before either's Queued write reaches the cache.
    "second worker sees the first's queue place": (
        QUEUE_CAP_1,
        [
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("c", (RUNNING, B, C), "reject:QueueLimitExceeded"),
        ],
    ),
    "the place is the run's own on a retried pass": (
        QUEUE_CAP_1,
        [
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("c", (RUNNING, B, C), "reject:QueueLimitExceeded"),
        ],
    ),
    "cache caught up: the Queued phase holds the place": (
        QUEUE_CAP_1,
        [
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("c", (RUNNING, replace(B, phase="Queued", queued=True), C), "reject:QueueLimitExceeded"),
        ],
    ),
    "a deleted queued run frees its place": (
        QUEUE_CAP_1,
        [
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("c", (RUNNING, C), "wait:namespace"),
        ],
    ),
    "a younger run's place holds against an older newcomer": (
        QUEUE_CAP_1,
        [
            Step("c", (RUNNING, C), "wait:namespace"),
            Step("b", (RUNNING, B, C), "reject:QueueLimitExceeded"),
        ],
    ),
    "a reservation outliving its TTL is dropped": (
        QUEUE_CAP_1,
        [
            Step("c", (RUNNING, C), "wait:namespace"),
            Step("b", (RUNNING, B, C), "wait:namespace", at=timedelta(seconds=301)),
        ],
    ),
    "a rejection sticks until the cache shows the run Failed": (
        QUEUE_CAP_1,
        [
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("c", (RUNNING, B, C), "reject:QueueLimitExceeded"),
            Step("c", (RUNNING, C), "reject:QueueLimitExceeded"),  # b deleted: still rejected, not flapping
            Step("d", (RUNNING, C, D), "wait:namespace"),  # the rejected run does not hold a place
            Step("c", (RUNNING, replace(C, phase="Failed"), D), "none"),
        ],
    ),
    "two admissions before the cache shows the first": (
        replace(OFF, per_namespace=2, queue_per_namespace=1),
        [
            Step("b", (B, C, D), "admit"),
            Step("c", (B, C, D), "admit"),
            Step("d", (B, C, D), "wait:namespace"),
            Step("b", (B, C, D), "admit"),  # retried: admitted already
        ],
    ),
    # Reconciled against the cache on every pass (the API-server gap of docs/reliability.md): no TTL needed.
    "an admitted run deleted in a gap (seen only through a relist) frees its slot": (
        replace(OFF, per_namespace=1),
        [
            Step("b", (B, C), "admit"),
            Step("c", (B, C), "wait:namespace"),
            Step("c", (C,), "admit"),  # b left the cache by a relist's synthesized delete
        ],
    ),
    "an admitted run that finished frees its slot before its admittedAt is seen": (
        replace(OFF, per_namespace=1),
        [
            Step("b", (B, C), "admit"),
            Step("c", (replace(B, phase="Failed"), C), "admit"),
        ],
    ),
    "a run created again under the same name does not inherit the old reservation": (
        replace(OFF, per_namespace=1),
        [
            Step("b", (B, C), "admit"),
            Step("c", (replace(B, uid="uid-b2", created_at=NOW), C), "admit"),  # the old b held the slot
            Step(
                "b", (replace(B, uid="uid-b2", created_at=NOW), replace(C, admitted_at=NOW)), "wait:namespace"
            ),
        ],
    ),
    "a run created again under the same name does not inherit the old rejection": (
        QUEUE_CAP_1,
        [
            Step("b", (RUNNING, B, C), "wait:namespace"),
            Step("c", (RUNNING, B, C), "reject:QueueLimitExceeded"),
            Step("c", (RUNNING, replace(C, uid="uid-c2")), "wait:namespace"),  # b gone, a new c
        ],
    ),
    "a run created again under the same name does not inherit the old queue place": (
        QUEUE_CAP_1,
        [
            Step("c", (RUNNING, C), "wait:namespace"),
            Step("b", (RUNNING, B, replace(C, uid="uid-c2", created_at=NOW)), "wait:namespace"),
        ],
    ),
    "an admitted run leaves the queue": (
        replace(OFF, per_namespace=1, queue_per_namespace=1),
        [
            Step("b", (B, C, D), "admit"),
            Step("c", (B, C, D), "wait:namespace"),
            Step("d", (B, C, D), "reject:QueueLimitExceeded"),
        ],
    ),
}


@pytest.mark.parametrize("case", list(QUEUE_CASES), ids=list(QUEUE_CASES))
def test_reservations(case: str) -> None:
    limits, steps = QUEUE_CASES[case]
    ledger = AdmissionLedger(limits)
    got = [outcome(ledger.admit(("a", s.run), s.cache, NOW + s.at)) for s in steps]
    assert got == [s.expect for s in steps]


RATE_2 = replace(OFF, rate_per_namespace=2, rate_window_seconds=60)
FINISHED = replace(rec("f", 0, phase="Succeeded"), admitted_at=NOW - timedelta(seconds=30))


@dataclass(frozen=True)
class RateCase:
    window: dict[str, Stamp]
    cache: tuple[RunRecord, ...]
    expect: str
    after: float | None = None  # requeue_after of a rate-limited run


def stamp(seconds_ago: float, ns: str = "a", repo: str | None = None) -> Stamp:
    return Stamp(ns, repo, NOW - timedelta(seconds=seconds_ago))


RATE_CASES = {
    "deleted finished runs still count": RateCase(
        {"uid-x": stamp(40), "uid-y": stamp(10)}, (B,), "wait:rate", after=20.0
    ),
    "stamps older than the window do not": RateCase({"uid-x": stamp(61), "uid-y": stamp(10)}, (B,), "admit"),
    "another namespace's stamps do not": RateCase(
        {"uid-x": stamp(40, ns="z"), "uid-y": stamp(10)}, (B,), "admit"
    ),
    "a surviving run and its stamp count once": RateCase({"uid-f": stamp(30)}, (FINISHED, B), "admit"),
    "a surviving run the window lacks counts": RateCase({"uid-x": stamp(5)}, (FINISHED, B), "wait:rate"),
    "empty window, no runs": RateCase({}, (B,), "admit"),
}


@pytest.mark.parametrize("case", list(RATE_CASES), ids=list(RATE_CASES))
def test_rate_window(case: str) -> None:
    row = RATE_CASES[case]
    window = RateWindow(60)
    for uid, s in row.window.items():
        window.record(uid, s, durable=True)
    ledger = AdmissionLedger(RATE_2, window=window)
    verdict = ledger.admit(("a", "b"), row.cache, NOW)
    assert outcome(verdict) == row.expect
    if row.after is not None:
        assert isinstance(verdict, Waiting) and verdict.requeue_after == pytest.approx(row.after)


def test_an_admission_is_stamped_and_outlives_its_run() -> None:
    ledger = AdmissionLedger(RATE_2)
    assert outcome(ledger.admit(("a", "b"), (B, C, D), NOW)) == "admit"
    assert outcome(ledger.admit(("a", "c"), (B, C, D), NOW)) == "admit"
    assert set(ledger.window.stamps(NOW)) == {"uid-b", "uid-c"}
    assert ledger.window.take_dirty() == {"a"}  # the durable record is behind
    # b and c finish and are deleted: d still waits for the window
    verdict = ledger.admit(("a", "d"), (D,), NOW + timedelta(seconds=1))
    assert isinstance(verdict, Waiting) and verdict.reason == "RateLimited"
    assert verdict.requeue_after == pytest.approx(59.0)
    assert outcome(ledger.admit(("a", "d"), (D,), NOW + timedelta(seconds=61))) == "admit"


def test_release_keeps_the_stamp_unless_the_run_never_started() -> None:
    ledger = AdmissionLedger(RATE_2)
    ledger.admit(("a", "b"), (B, C), NOW)
    ledger.admit(("a", "c"), (B, C), NOW)
    ledger.release(("a", "b"))  # cancelled after admission: its slot stays used
    assert set(ledger.window.stamps(NOW)) == {"uid-b", "uid-c"}
    ledger.release(("a", "c"), unstarted=True)  # its Job could not be created: decided again later
    assert set(ledger.window.stamps(NOW)) == {"uid-b"}
    assert outcome(ledger.admit(("a", "c"), (replace(B, phase="Cancelled"), C), NOW)) == "admit"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"u1":["2026-01-01T11:59:30+00:00","acme/demo"]}', {"u1": stamp(30, repo="acme/demo")}),
        ('{"u1":["2026-01-01T11:59:30Z",null]}', {"u1": stamp(30)}),
        ('{"u1":["not a time",null],"u2":[],"u3":"x"}', {}),
        ("not json", {}),
        ("[1, 2]", {}),
        (None, {}),
    ],
)
def test_durable_record_parsing(payload: str | None, expected: dict[str, Stamp]) -> None:
    assert parse_stamps("a", payload) == expected


def test_durable_record_round_trip_and_earliest_wins() -> None:
    stamps = {"u2": stamp(10, repo="acme/demo"), "u1": replace(stamp(20.5))}
    text = serialize_stamps(stamps)
    assert parse_stamps("a", text) == stamps
    assert serialize_stamps(dict(reversed(list(stamps.items())))) == text  # stable bytes
    window = RateWindow(60)
    assert window.record("u1", stamp(20), durable=True)
    assert not window.has_dirty
    assert not window.record("u1", stamp(10))  # a later time for the same admission changes nothing
    assert window.record("u1", stamp(25))  # an earlier one (the status' whole seconds) wins
    assert window.take_dirty() == {"a"} and not window.has_dirty
    window.withdraw("u1")
    assert window.take_dirty() == {"a"} and window.stamps(NOW) == {}


def test_the_snapshot_reads_only_unfinished_runs_and_follows_updates() -> None:
    from jangar.admission.snapshot import RecordMemo, snapshot
    from jangar.controllers.kinds import AGENTRUNS
    from jangar.runtime.testing import FakeCache

    def obj(name: str, phase: str, rv: str) -> dict[str, object]:
        meta = {"name": name, "namespace": "a", "uid": f"u-{name}", "resourceVersion": rv}
        return {"metadata": {**meta, "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": phase}}

    cache = FakeCache()
    cache.add(AGENTRUNS, *(obj(f"done-{i}", "Succeeded", "1") for i in range(50)))
    cache.add(AGENTRUNS, obj("w", "Queued", "1"), obj("r", "Running", "1"))
    memo = RecordMemo()
    first = snapshot(cache, lambda: NOW, memo)
    assert sorted(r.name for r in first) == ["r", "w"]
    assert len(memo) == 2  # finished runs are never parsed
    again = snapshot(cache, lambda: NOW, memo)
    assert {id(r) for r in again} == {id(r) for r in first}  # unchanged runs are not parsed again
    cache.add(AGENTRUNS, obj("w", "Succeeded", "2"))  # an update moves it out of the index
    assert [r.name for r in snapshot(cache, lambda: NOW, memo)] == ["r"]
    assert len(memo) == 1
    cache.add(AGENTRUNS, obj("done-0", "Queued", "2"))  # rerun-like: back in
    assert sorted(r.name for r in snapshot(cache, lambda: NOW, memo)) == ["done-0", "r"]
