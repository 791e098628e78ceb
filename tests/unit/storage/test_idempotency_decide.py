"""The claim decision for durable idempotency keys (`decide_claim`), as a table."""

from __future__ import annotations

import pytest

from jangar.storage.idempotency import ClaimOutcome, ClaimRow, Holder, decide_claim

O, H = ClaimOutcome, Holder


def row(uid: str = "uid-a", *, started: bool = False, finished: bool = False) -> ClaimRow:
    return ClaimRow(run_uid=uid, run_name="run-a", started=started, finished=finished)


@pytest.mark.parametrize(
    ("existing", "holder", "expected"),
    [
        # no row: the first claimer wins
        (None, H.ABSENT, O.WON),
        # the row is this run's: a re-reconcile or a restarted controller, whatever the holder lookup says
        (row("uid-b"), H.ABSENT, O.OWN),
        (row("uid-b", started=True, finished=True), H.FINISHED, O.OWN),
        # another run holds it and is live, started or not: in use
        (row(), H.LIVE, O.IN_USE),
        (row(started=True), H.LIVE, O.IN_USE),
        # another run holds it and finished (it ran, or failed before starting): completed
        (row(started=True, finished=True), H.FINISHED, O.COMPLETED),
        (row(finished=True), H.FINISHED, O.COMPLETED),
        # the holder is gone: it consumed the key if it ever started ...
        (row(started=True), H.ABSENT, O.COMPLETED),
        (row(started=True, finished=True), H.ABSENT, O.COMPLETED),
        # ... and a claim that never started is stale: reclaimed
        (row(), H.ABSENT, O.RECLAIMED),
        (row(finished=True), H.ABSENT, O.RECLAIMED),
    ],
)
def test_decide_claim(existing: ClaimRow | None, holder: Holder, expected: ClaimOutcome) -> None:
    assert decide_claim(existing, "uid-b", holder) is expected


@pytest.mark.parametrize(
    ("outcome", "allowed"),
    [(O.WON, True), (O.OWN, True), (O.RECLAIMED, True), (O.IN_USE, False), (O.COMPLETED, False)],
)
def test_only_a_holder_may_go_on(outcome: ClaimOutcome, allowed: bool) -> None:
    assert outcome.allowed is allowed
