"""Reservations: exact admission counts before the cache catches up.

After a worker admits a run it writes `status.queue.admittedAt`, but the informer cache shows that write only
later. Without a reservation, a second worker deciding in that gap would see the old counts and admit past a
limit (the reference's burst over-admission, §12.7). `AdmissionLedger.admit()` decides and reserves under one
lock; until the cache shows the run as admitted (or finished, or gone) the reservation counts as an admission
made at the reservation time. A restarted controller has no reservations, but by then the cache holds the
`admittedAt` writes, so it reaches the same decisions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from jangar.admission.decide import AdmissionDecision, Rejection, Waiting, decide
from jangar.admission.model import AdmissionLimits, RunKey, RunRecord

__all__ = ["AdmissionLedger", "Admit", "Verdict"]


@dataclass(frozen=True)
class Admit:
    admitted_at: datetime


Verdict = Admit | Waiting | Rejection | None


class AdmissionLedger:
    """In-process reservations on top of the cluster snapshot. Safe to share between workers and threads."""

    def __init__(self, limits: AdmissionLimits, *, reservation_ttl_seconds: float = 300.0) -> None:
        self.limits = limits
        self._ttl = timedelta(seconds=reservation_ttl_seconds)
        self._reserved: dict[RunKey, datetime] = {}
        self._lock = threading.Lock()

    @property
    def reservations(self) -> dict[RunKey, datetime]:
        with self._lock:
            return dict(self._reserved)

    def _apply(self, runs: Iterable[RunRecord], now: datetime) -> list[RunRecord]:
        """The snapshot with live reservations applied; reservations the cache has caught up with are dropped."""
        merged: list[RunRecord] = []
        seen: set[RunKey] = set()
        for run in runs:
            seen.add(run.key)
            at = self._reserved.get(run.key)
            if at is None:
                merged.append(run)
            elif run.terminal or run.admitted_at is not None or now - at > self._ttl:
                del self._reserved[run.key]
                merged.append(run)
            else:
                merged.append(replace(run, admitted_at=at))
        for key in [k for k in self._reserved if k not in seen]:  # deleted runs free their reservation
            del self._reserved[key]
        return merged

    def with_reservations(self, runs: Iterable[RunRecord], now: datetime) -> list[RunRecord]:
        """The snapshot as `decide`/`admit` see it: runs reserved here count as admitted at the reservation
        time (for a submission surface in the same process, so its early refusal sees what admission sees)."""
        with self._lock:
            return self._apply(runs, now)

    def decide(self, runs: Iterable[RunRecord], now: datetime) -> AdmissionDecision:
        """The decision for the snapshot plus reservations, without reserving anything."""
        with self._lock:
            return decide(self._apply(runs, now), self.limits, now)

    def admit(self, key: RunKey, runs: Iterable[RunRecord], now: datetime) -> Verdict:
        """Decide for one run and, if admitted, reserve its capacity before returning.

        Returns `Admit` (write `status.queue.admittedAt = admitted_at`, then create the Job; also returned again
        for a run admitted earlier, so a retried reconcile proceeds), `Waiting`, `Rejection`
        (QueueLimitExceeded), or `None` when the run is finished or not in the snapshot.
        """
        with self._lock:
            merged = self._apply(runs, now)
            current = next((r for r in merged if r.key == key), None)
            if current is None or current.terminal:
                return None
            if current.active:  # admitted earlier: reserved here or admittedAt already in the cache
                return Admit(current.admitted_at or now)
            decision = decide(merged, self.limits, now)
            outcome = decision.for_run(key)
            if outcome == "admit":
                self._reserved[key] = now
                return Admit(now)
            if outcome == "reject":
                return decision.rejected[key]
            return decision.waiting[key]

    def release(self, key: RunKey) -> None:
        """Give a reservation back (the admitted run could not be started and will be decided again)."""
        with self._lock:
            self._reserved.pop(key, None)
