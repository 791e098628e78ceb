"""The claim decision for durable idempotency keys (`decide_claim`), as a table."""

from __future__ import annotations

import pytest

from jangar.storage.idempotency import ClaimOutcome, ClaimRow, Holder, decide_claim

C, H = ClaimOutcome, Holder


def row(uid: str = "uid-a", *, started: bool = False, finished: bool = False) -> ClaimRow:
    return ClaimRow(run_uid=uid, run_name="run-a", started=started, finished=finished)


@pytest.mark.parametrize(
    ("existing", "holder", "expected"),
    [
        # no row: the first claimer wins
        (None, H.ABSENT, C.WON),
        # the row is this run's: a re-reconcile or a restarted controller, whatever the holder lookup says
        (row("uid-b"), H.ABSENT, C.OWN),
        (row("uid-b", started=True, finished=True), H.FINISHED, C.OWN),
        # another run holds it and is live, started or not: in use
        (row(), H.LIVE, C.IN_USE),
        (row(started=True), H.LIVE, C.IN_USE),
        # another run holds it and finished (it ran, or failed before starting): completed
        (row(started=True, finished=True), H.FINISHED, C.COMPLETED),
        (row(finished=True), H.FINISHED, C.COMPLETED),
        # the holder is gone: it consumed the key if it ever started ...
        (row(started=True), H.ABSENT, C.COMPLETED),
        (row(started=True, finished=True), H.ABSENT, C.COMPLETED),
        # ... and a claim that never started is stale: reclaimed
        (row(), H.ABSENT, C.RECLAIMED),
        (row(finished=True), H.ABSENT, C.RECLAIMED),
    ],
)
def test_decide_claim(existing: ClaimRow | None, holder: Holder, expected: ClaimOutcome) -> None:
    assert decide_claim(existing, "uid-b", holder) is expected


@pytest.mark.parametrize(
    ("outcome", "allowed"),
    [(C.WON, True), (C.OWN, True), (C.RECLAIMED, True), (C.IN_USE, False), (C.COMPLETED, False)],
)
def test_only_a_holder_may_go_on(outcome: ClaimOutcome, allowed: bool) -> None:
    assert outcome.allowed is allowed
