"""Reservations: exact admission counts before the cache catches up.

After a worker admits a run it writes `status.queue.admittedAt`, but the informer cache shows that write only
later. Without a reservation, a second worker deciding in that gap would see the old counts and admit past a
limit (the reference's burst over-admission, §12.7). `AdmissionLedger.admit()` decides and reserves under one
lock, for all three outcomes:

* **admitted**: until the cache shows the run as admitted (or finished, or gone) the reservation counts as an
  admission made at the reservation time, and the admission is stamped in the rate window (`RateWindow`);
* **queued**: a run told to wait holds its queue place from that moment (as if its `Queued` phase were already
  in the cache), so two workers cannot both give the last place of a queue cap away;
* **rejected**: the verdict is kept until the cache shows the run finished, so a retried reconcile gets the
  same answer and the run never counts as waiting meanwhile.

Reservations are in-process: across replicas only the leader reconciles, so one ledger decides for the whole
cluster. A restarted (or newly elected) controller has no reservations, but by then the cache holds the
status writes, and the rate window is reloaded from its durable record, so it reaches the same decisions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from jangar.admission.decide import AdmissionDecision, Rejection, Waiting, decide
from jangar.admission.model import AdmissionLimits, RunKey, RunRecord
from jangar.admission.window import RateWindow, Stamp

__all__ = ["AdmissionLedger", "Admit", "Verdict"]


@dataclass(frozen=True)
class Admit:
    admitted_at: datetime


Verdict = Admit | Waiting | Rejection | None


class AdmissionLedger:
    """In-process reservations on top of the cluster snapshot. Safe to share between workers and threads."""

    def __init__(
        self,
        limits: AdmissionLimits,
        *,
        reservation_ttl_seconds: float = 300.0,
        window: RateWindow | None = None,
    ) -> None:
        self.limits = limits
        self.window = window or RateWindow(limits.rate_window_seconds)
        self._ttl = timedelta(seconds=reservation_ttl_seconds)
        self._reserved: dict[RunKey, tuple[datetime, str]] = {}  # admitted: (at, window id)
        self._queued: dict[RunKey, tuple[datetime, str]] = {}  # told to wait (at, window id), not yet Queued
        self._rejected: dict[RunKey, tuple[datetime, Rejection, str]] = {}  # (at, verdict, window id)
        self._lock = threading.Lock()

    @property
    def reservations(self) -> dict[RunKey, datetime]:
        with self._lock:
            return {k: at for k, (at, _) in self._reserved.items()}

    @property
    def queue_reservations(self) -> dict[RunKey, datetime]:
        with self._lock:
            return {k: at for k, (at, _) in self._queued.items()}

    def _apply(self, runs: Iterable[RunRecord], now: datetime) -> list[RunRecord]:
        """The snapshot with live reservations applied. Reservations are reconciled against the snapshot on
        every pass (level-triggered): one is dropped as soon as the cache has caught up with it (the run shows
        as admitted, Queued or finished), when its run is no longer in the snapshot (deleted — also a delete
        seen only through a relist —, or held out of the queue), or when the run under its name is another
        one (a different uid: deleted and created again). The TTL is only a backstop for a status write that
        the cache never shows. Cost: O(len(runs) + reservations)."""
        merged: list[RunRecord] = []
        seen: set[RunKey] = set()
        for original in runs:
            run, key = original, original.key
            seen.add(key)
            wid = run.window_id
            rejected = self._rejected.get(key)
            if rejected is not None:
                if run.terminal or rejected[2] != wid or now - rejected[0] > self._ttl:
                    del self._rejected[key]
                else:
                    continue  # being failed: not waiting, holds nothing
            reserved = self._reserved.get(key)
            if reserved is not None:
                if (
                    run.terminal
                    or run.admitted_at is not None
                    or reserved[1] != wid
                    or now - reserved[0] > self._ttl
                ):
                    del self._reserved[key]
                else:
                    run = replace(run, admitted_at=reserved[0])
            queued = self._queued.get(key)
            if queued is not None:
                if run.queued or not run.waiting or queued[1] != wid or now - queued[0] > self._ttl:
                    del self._queued[key]
                else:
                    run = replace(run, queued=True)
            merged.append(run)
        for table in (self._reserved, self._queued, self._rejected):
            for key in [k for k in table if k not in seen]:  # deleted runs free their reservation
                del table[key]
        return merged

    def with_reservations(self, runs: Iterable[RunRecord], now: datetime) -> list[RunRecord]:
        """The snapshot as `decide`/`admit` see it: runs reserved here count as admitted at the reservation
        time (for a submission surface in the same process, so its early refusal sees what admission sees)."""
        with self._lock:
            return self._apply(runs, now)

    def admissions(self, now: datetime) -> dict[str, Stamp]:
        """The rate window ending at `now`."""
        return self.window.stamps(now)

    def decide(self, runs: Iterable[RunRecord], now: datetime) -> AdmissionDecision:
        """The decision for the snapshot plus reservations, without reserving anything."""
        with self._lock:
            return decide(self._apply(runs, now), self.limits, now, self.window.stamps(now))

    def admit(self, key: RunKey, runs: Iterable[RunRecord], now: datetime) -> Verdict:
        """Decide for one run and reserve what the verdict gives it before returning.

        Returns `Admit` (write `status.queue.admittedAt = admitted_at`, then create the Job; also returned again
        for a run admitted earlier, so a retried reconcile proceeds), `Waiting` (its queue place is reserved),
        `Rejection` (QueueLimitExceeded; returned again until the run is finished), or `None` when the run is
        finished or not in the snapshot.
        """
        with self._lock:
            rejected = self._rejected.get(key)
            merged = self._apply(runs, now)
            if rejected is not None and key in self._rejected:
                return rejected[1]
            current = next((r for r in merged if r.key == key), None)
            if current is None or current.terminal:
                return None
            if current.active:  # admitted earlier: reserved here or admittedAt already in the cache
                return Admit(current.admitted_at or now)
            decision = decide(merged, self.limits, now, self.window.stamps(now))
            outcome = decision.for_run(key)
            if outcome == "admit":
                self._reserved[key] = (now, current.window_id)
                self._queued.pop(key, None)
                self.window.record(current.window_id, Stamp(current.namespace, current.repository, now))
                return Admit(now)
            if outcome == "reject":
                self._rejected[key] = (now, decision.rejected[key], current.window_id)
                return decision.rejected[key]
            if not current.queued:
                self._queued[key] = (now, current.window_id)
            return decision.waiting[key]

    def release(self, key: RunKey, *, unstarted: bool = False) -> None:
        """Give a reservation back. `unstarted`: the admitted run could not be started and will be decided
        again, so its admission is withdrawn from the rate window too (a run cancelled or deleted after its
        admission keeps its rate slot)."""
        with self._lock:
            reserved = self._reserved.pop(key, None)
            self._queued.pop(key, None)
            if unstarted and reserved is not None:
                self.window.withdraw(reserved[1])
