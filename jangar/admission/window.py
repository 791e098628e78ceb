"""The admission rate window: every admission inside the window, kept independently of the runs.

Rate limits count admissions, not surviving runs: a run admitted 10 s ago and deleted 5 s ago still used a
slot of the last minute. So the window is a map `run uid → Stamp(namespace, repository, admitted_at)`
fed from three sources, and an entry leaves only when it falls out of the window:

* the admission itself (`AdmissionLedger.admit` records the stamp under the lock that reserves the run);
* every AgentRun the informer delivers with `status.queue.admittedAt` inside the window (a restart re-reads
  surviving runs, terminal ones included);
* the durable record: one ConfigMap per namespace (`jangar-admissions`, label
  `agents.proompteng.ai/admission-window`) holding that namespace's stamps, written by the controller shortly
  after each admission and read back when a controller starts, so runs deleted before a restart or a
  leader handover still count (docs/admission.md).

`RateWindow` is the pure in-memory part (thread-safe, no I/O); `jangar.controllers.admission_gate` does the
ConfigMap reads and writes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from jangar.conditions import parse_time

__all__ = ["WINDOW_DATA_KEY", "RateWindow", "Stamp", "parse_stamps", "serialize_stamps"]

WINDOW_DATA_KEY = "admissions.json"
"""The ConfigMap data key holding `{uid: [admittedAt, repository or null]}`."""


@dataclass(frozen=True)
class Stamp:
    """One admission: where it counts (namespace, repository) and when."""

    namespace: str
    repository: str | None
    at: datetime


def serialize_stamps(stamps: Mapping[str, Stamp]) -> str:
    """The ConfigMap payload for `stamps` (sorted, so an unchanged window writes identical bytes)."""
    body = {uid: [s.at.isoformat(), s.repository] for uid, s in sorted(stamps.items())}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def parse_stamps(namespace: str, payload: str | None) -> dict[str, Stamp]:
    """Stamps from a ConfigMap payload; malformed entries (or a malformed payload) are skipped."""
    try:
        body = json.loads(payload or "{}")
    except ValueError:
        return {}
    out: dict[str, Stamp] = {}
    if not isinstance(body, dict):
        return out
    for uid, value in body.items():
        if not isinstance(value, list) or not value:
            continue
        at = parse_time(value[0]) if isinstance(value[0], str) else None
        repo = value[1] if len(value) > 1 and isinstance(value[1], str) else None
        if at is not None:
            out[str(uid)] = Stamp(namespace, repo, at)
    return out


class RateWindow:
    """Admissions inside the last `window_seconds`, by run uid. Safe to share between threads.

    `dirty` tracks the namespaces whose durable record is behind memory (a new stamp, a withdrawn one), so
    the writer rewrites only those.
    """

    def __init__(self, window_seconds: float) -> None:
        self.window = timedelta(seconds=window_seconds)
        self._stamps: dict[str, Stamp] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._stamps)

    def _prune(self, now: datetime) -> None:
        start = now - self.window
        for uid in [u for u, s in self._stamps.items() if s.at <= start]:
            del self._stamps[uid]

    def record(self, uid: str, stamp: Stamp, *, durable: bool = False) -> bool:
        """Add (or move) an admission; returns whether memory changed. `durable`: it comes from the record,
        so the record need not be rewritten for it. The earliest time seen for a uid wins."""
        with self._lock:
            current = self._stamps.get(uid)
            if current is not None and current.at <= stamp.at:
                return False
            self._stamps[uid] = stamp
            if not durable:
                self._dirty.add(stamp.namespace)
            return True

    def withdraw(self, uid: str) -> None:
        """Forget an admission that did not happen after all (the run could not be started)."""
        with self._lock:
            stamp = self._stamps.pop(uid, None)
            if stamp is not None:
                self._dirty.add(stamp.namespace)

    def stamps(self, now: datetime) -> dict[str, Stamp]:
        """The admissions inside the window ending at `now` (a copy)."""
        with self._lock:
            self._prune(now)
            return dict(self._stamps)

    def namespace_stamps(self, namespace: str, now: datetime) -> dict[str, Stamp]:
        with self._lock:
            self._prune(now)
            return {u: s for u, s in self._stamps.items() if s.namespace == namespace}

    def take_dirty(self) -> set[str]:
        """The namespaces to rewrite (and mark them clean; `mark_dirty` again if the write fails)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            return dirty

    def mark_dirty(self, namespace: str) -> None:
        with self._lock:
            self._dirty.add(namespace)

    @property
    def has_dirty(self) -> bool:
        with self._lock:
            return bool(self._dirty)
