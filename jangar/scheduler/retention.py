"""Which finished AgentRuns the retention sweep deletes in one pass (issue 13; drift-0.9.29.md row 18).

One mechanism for every run: `retention_remaining` (`jangar.scheduler.ttl`) says when a run falls due (its
`spec.ttlSecondsAfterFinished`, the controller default, the zero-TTL safety cap, the retain and template
annotations); `plan_retention` takes the due runs of each namespace, most overdue first, up to
`JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE`, and says when the next pass is needed. The sweeper
(`jangar.controllers.sweep`) applies the plan with a uid precondition, so a run deleted and created again
under the same name is never the one deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jangar.scheduler.ttl import retention_remaining
from jangar.settings import Settings

__all__ = ["ObjectKey", "RetentionPlan", "capped", "key_of", "plan_retention"]


@dataclass(frozen=True, order=True)
class ObjectKey:
    """What a delete needs: the object's namespace and name, and its uid for the precondition."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class RetentionPlan:
    #: runs to delete in this pass, at most the cap per namespace, most overdue first within a namespace
    deletes: tuple[ObjectKey, ...] = ()
    #: due runs left for a later pass by the cap, per namespace
    held: Mapping[str, int] | None = None
    #: seconds until the earliest run that is not due yet falls due; None: no run will fall due on its own
    next_due: float | None = None


def key_of(obj: Mapping[str, Any]) -> ObjectKey | None:
    """The delete key of an object dict; None when it has no uid (never persisted, nothing to delete)."""
    meta = obj.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name")
    if not uid or not name:
        return None
    return ObjectKey(str(meta.get("namespace") or ""), str(name), str(uid))


def capped(due: Iterable[tuple[float, ObjectKey]], cap: int) -> tuple[tuple[ObjectKey, ...], dict[str, int]]:
    """The first `cap` keys of each namespace by (sort value, key) (0: no cap), and the count left over."""
    by_namespace: dict[str, list[tuple[float, ObjectKey]]] = defaultdict(list)
    for item in due:
        by_namespace[item[1].namespace].append(item)
    chosen: list[ObjectKey] = []
    held: dict[str, int] = {}
    for namespace in sorted(by_namespace):
        ordered = [key for _, key in sorted(by_namespace[namespace])]
        take = ordered if cap <= 0 else ordered[:cap]
        chosen.extend(take)
        if len(ordered) > len(take):
            held[namespace] = len(ordered) - len(take)
    return tuple(chosen), held


def plan_retention(runs: Iterable[Mapping[str, Any]], now: datetime, settings: Settings) -> RetentionPlan:
    """Pure: this pass's retention deletes among `runs` (the cached AgentRuns of every watched namespace)."""
    due: list[tuple[float, ObjectKey]] = []
    next_due: float | None = None
    for run in runs:
        if (run.get("metadata") or {}).get("deletionTimestamp"):
            continue  # already going: its finalizer does the rest
        remaining = retention_remaining(run, settings, now)
        key = key_of(run)
        if remaining is None or key is None:
            continue
        if remaining <= 0:
            due.append((remaining, key))
        elif next_due is None or remaining < next_due:
            next_due = remaining
    deletes, held = capped(due, settings.retention.max_deletes_per_namespace)
    return RetentionPlan(deletes=deletes, held=held or None, next_due=next_due)
