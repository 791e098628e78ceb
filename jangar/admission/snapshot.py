"""The admission snapshot built from the informer cache: one `RunRecord` per AgentRun, as admission sees it.

The controller's `AdmissionGate` and the submission surfaces (`jangar.services.runs`) both call `snapshot`,
so the early refusal of a submission counts exactly the runs the controller's admission counts. On top of
`RunRecord.from_run` it adds what only the cluster knows:

* a run whose Job already exists holds capacity even before its status says so (a crash between creating the
  Job and writing the status must not let a restarted controller admit one run too many);
* runs held for an invalid spec or an exceeded Budget, and runs being deleted, do not wait in the queue (they would block the FIFO
  head), so they are left out.

A process without a Job informer (the API alone, controllers disabled) sees no Jobs: the runs it counts then
rely on `status.queue.admittedAt`, which the controller writes before it creates a Job.

**Cost.** The snapshot reads only the runs that are not finished, through the cache index `ADMISSION_INDEX`
(value `LIVE`), which the informer keeps current on every add, update and delete. So a pass costs
O(runs waiting + runs active), whatever the number of finished runs retained (30 days of them by default):
finished runs count only through the rate window (`jangar.admission.window`), never by being walked.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from jangar.admission.model import RunRecord
from jangar.api.contract import CONDITION_BUDGET_EXCEEDED, is_resting_template, is_terminal
from jangar.api.refs import AGENTRUNS
from jangar.conditions import is_true, parse_time
from jangar.runtime import CacheReader, InformerNotRegistered, JsonObject
from jangar.runtime.resources import JOBS
from jangar.runtime.store import CONTROLLER_UID_INDEX

__all__ = [
    "ADMISSION_INDEX",
    "LIVE",
    "RecordMemo",
    "ensure_admission_index",
    "held_for_admission",
    "live_index",
    "run_record",
    "snapshot",
]

Clock = Callable[[], datetime]

ADMISSION_INDEX = "agentrun-admission"
LIVE = "live"


def live_index(run: JsonObject) -> list[str]:
    """`[LIVE]` for a run that is not finished (waiting or holding capacity), else nothing; an unstarted
    template (a copy source that never runs) is not live either."""
    if is_terminal((run.get("status") or {}).get("phase")) or is_resting_template(run):
        return []
    return [LIVE]


def ensure_admission_index(cache: object) -> None:
    """Add `ADMISSION_INDEX` to the AgentRun informer of `cache` (a `Cache` or a `FakeCache`) unless it is
    there already; a reader without `add_index` is left alone (its `snapshot` then fails loudly)."""
    add_index = getattr(cache, "add_index", None)
    if callable(add_index):
        with contextlib.suppress(ValueError):  # added already (the controllers and the API share a cache)
            add_index(AGENTRUNS, ADMISSION_INDEX, live_index)


def held_for_admission(run: Mapping[str, Any]) -> bool:
    """A run that is not waiting for capacity: held for an invalid spec or by its exceeded Budget, or being
    deleted."""
    meta = run.get("metadata") or {}
    conditions = (run.get("status") or {}).get("conditions")
    return (
        bool(meta.get("deletionTimestamp"))
        or is_true(conditions, "InvalidSpec")
        or is_true(conditions, CONDITION_BUDGET_EXCEEDED)
    )


def _jobs(cache: CacheReader, namespace: str, uid: str) -> list[JsonObject]:
    try:
        return cache.list(JOBS, namespace, index=(CONTROLLER_UID_INDEX, uid), copy=False)
    except InformerNotRegistered:
        return []


class RecordMemo:
    """`RunRecord`s by (uid, resourceVersion), so a run unchanged since the last pass is not parsed again
    (its record's cached properties, the FIFO order among them, are kept too). Each `snapshot` keeps only
    the entries it used, so the memo holds at most the unfinished runs. One per gate (event-loop use)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], RunRecord] = {}
        self._next: dict[tuple[str, str], RunRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def get(self, run: JsonObject) -> RunRecord:
        meta = run.get("metadata") or {}
        uid, rv = meta.get("uid"), meta.get("resourceVersion")
        if not uid or not rv:
            return RunRecord.from_run(run)
        key = (str(uid), str(rv))
        record = self._records.get(key) or self._next.get(key) or RunRecord.from_run(run)
        self._next[key] = record
        return record

    def rotate(self) -> None:
        """End of a snapshot: forget the records it did not use."""
        self._records, self._next = self._next, {}


def run_record(
    cache: CacheReader, run: JsonObject, clock: Clock, memo: RecordMemo | None = None
) -> RunRecord | None:
    """The record admission counts for `run`, or None for a run held out of the queue."""
    meta = run.get("metadata") or {}
    record = memo.get(run) if memo is not None else RunRecord.from_run(run)
    if record.terminal:
        return record
    if record.admitted_at is None and record.phase != "Running":
        jobs = _jobs(cache, record.namespace, str(meta.get("uid")))
        if jobs:
            created = min(parse_time(j["metadata"].get("creationTimestamp")) or clock() for j in jobs)
            return dataclasses.replace(record, admitted_at=created)
        if held_for_admission(run):
            return None
    return record


def snapshot(cache: CacheReader, clock: Clock, memo: RecordMemo | None = None) -> list[RunRecord]:
    """Every unfinished AgentRun the cache holds (all watched namespaces), as admission sees it. `memo`
    (the gate's) saves re-parsing the runs that did not change since the previous pass."""
    try:
        live = cache.list(AGENTRUNS, index=(ADMISSION_INDEX, LIVE), copy=False)
    except KeyError:  # a cache nobody added the index to yet (it is added once; events keep it current)
        ensure_admission_index(cache)
        live = cache.list(AGENTRUNS, index=(ADMISSION_INDEX, LIVE), copy=False)
    records = []
    for run in live:
        record = run_record(cache, run, clock, memo)
        if record is not None:
            records.append(record)
    if memo is not None:
        memo.rotate()
    return records
